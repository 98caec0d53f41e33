//! consumer-pull end to end, on Apache Kafka: the fault suite's scenarios
//! about one consumer, `--ready-file` and the metrics. Written once for
//! both consumers in `chaos::consumer_tests!`; `scripts/chaos.sh` runs the
//! same scenarios with big numbers.

use testkit::Model;

chaos::consumer_tests!(Model::Pull);
