//! consumer-push end to end, against librdkafka's mock cluster hosted by
//! this test process. The scenarios themselves are shared with
//! consumer-pull: see `banking_testkit::scenarios`.

use std::path::Path;

use banking_testkit::scenarios;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_consumer-push"))
}

#[test]
fn stores_50k_events_exactly() {
    scenarios::full_run(bin());
}

#[test]
fn kill_9_mid_run_then_restart_is_exact() {
    scenarios::kill9_then_restart(bin());
}

#[test]
fn bad_messages_go_to_dead_letters() {
    scenarios::bad_messages(bin());
}

#[test]
fn sigterm_commits_the_open_batch_and_restart_continues() {
    scenarios::sigterm_then_restart(bin());
}

#[test]
fn waits_out_a_write_lock() {
    scenarios::write_lock_for_two_seconds(bin());
}

#[test]
fn two_instances_in_one_group_store_each_event_once() {
    scenarios::two_instances_one_group(bin());
}
