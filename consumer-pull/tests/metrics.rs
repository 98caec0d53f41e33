//! consumer-pull with `--metrics-addr` and `--log-format json`: scraped
//! over HTTP while events flow, its counters match its database (the check
//! is `testkit::metrics`, shared with consumer-push).

use testkit::Model;

#[test]
fn metrics_match_the_database_while_events_flow() {
    testkit::metrics::metrics_match_the_database(
        "metrics_match_the_database_while_events_flow",
        Model::Pull,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
}
