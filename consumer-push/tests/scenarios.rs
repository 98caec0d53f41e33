//! consumer-push end to end: the fault suite's scenarios about one
//! consumer, with small numbers, on Apache Kafka (one broker for this test
//! process, a topic and group per scenario). Each scenario is written once,
//! in `chaos::scenarios`; consumer-pull's tests and
//! `scripts/chaos.sh` (with big numbers) run the same code.

use chaos::{BrokerKind, Scenario, short_run};
use testkit::Model;

const MODEL: Model = Model::Push;

macro_rules! on_kafka {
    ($($test:ident: $scenario:ident),* $(,)?) => {$(
        #[test]
        fn $test() {
            short_run(stringify!($test), Scenario::$scenario, &[MODEL], BrokerKind::Kafka);
        }
    )*};
}

on_kafka! {
    stores_every_event_exactly: FullRun,
    kill_9_mid_run_then_restart_is_exact: Kill9,
    sigterm_commits_the_open_batch_and_restart_continues: Sigterm,
    two_instances_in_one_group_store_each_event_once: TwoInstances,
    bad_messages_go_to_dead_letters: BadMessages,
    waits_out_a_write_lock: DbLock,
    skipped_offsets_are_recorded_never_silent: OffsetGaps,
    start_positions_are_proven_or_refused: StartPositions,
}

/// The same full run on librdkafka's mock cluster hosted by this test: fast
/// and hermetic (no JVM), so the consumer is exercised end to end even
/// where Java is missing. Never the only proof: the run above is.
#[test]
fn stores_every_event_exactly_on_the_mock_cluster() {
    short_run(
        "stores_every_event_exactly_on_the_mock_cluster",
        Scenario::FullRun,
        &[MODEL],
        BrokerKind::Mock,
    );
}
