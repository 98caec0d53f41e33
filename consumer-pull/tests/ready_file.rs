//! `--ready-file` of consumer-pull, on Apache Kafka: the file appears once
//! the partitions are assigned and positioned, replacing a stale one. The
//! check is written once, in `chaos::scenarios::ready`.

use chaos::scenarios::ready::ready_file_check;
use testkit::{Model, kafka};

#[test]
fn the_ready_file_is_written_after_the_assignment() {
    if let Err(why) = kafka::available() {
        testkit::skip(
            "the_ready_file_is_written_after_the_assignment",
            &format!("{why:#}"),
        );
        return;
    }
    ready_file_check(Model::Pull).unwrap_or_else(|e| panic!("{e:#}"));
}
