//! librdkafka's own defaults, to tell the settings a process chose from
//! the ones it merely inherited (the consumers report every property in
//! force, a hundred or so).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::kafka::conf_dump;
use rdkafka::ClientConfig;

/// Whether `key=value` is just librdkafka's default (as `rd_kafka_conf_dump`
/// shows an empty configuration). Keys librdkafka does not know (the
/// consumers' own knobs, topic-level properties) are never defaults.
pub fn is_default(key: &str, value: &str) -> bool {
    static DEFAULTS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    let defaults = DEFAULTS.get_or_init(|| conf_dump(&ClientConfig::new()).unwrap_or_default());
    defaults.get(key).is_some_and(|d| d == value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_a_few_defaults() {
        assert!(is_default("fetch.wait.max.ms", "500"));
        assert!(!is_default("fetch.wait.max.ms", "10"));
        assert!(!is_default("batch_size", "20000"));
    }
}
