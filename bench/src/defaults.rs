//! librdkafka's own defaults, to tell the settings a process chose from
//! the ones it merely inherited (the consumers report every property in
//! force, a hundred or so).

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::sync::OnceLock;

use rdkafka::ClientConfig;

/// Every global property of an empty librdkafka configuration, as
/// `rd_kafka_conf_dump` shows it.
pub fn librdkafka_defaults() -> &'static BTreeMap<String, String> {
    static DEFAULTS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        let mut out = BTreeMap::new();
        let Ok(native) = ClientConfig::new().create_native_config() else {
            return out;
        };
        // SAFETY: rd_kafka_conf_dump returns `cnt` C strings (key, value,
        // key, value, ...) valid until rd_kafka_conf_dump_free, called once
        // they are copied; `native` outlives the call.
        unsafe {
            let mut cnt = 0usize;
            let arr = rdkafka::bindings::rd_kafka_conf_dump(native.ptr(), &mut cnt);
            if !arr.is_null() {
                for i in (0..cnt.saturating_sub(1)).step_by(2) {
                    let k = CStr::from_ptr(*arr.add(i)).to_string_lossy().into_owned();
                    let v = CStr::from_ptr(*arr.add(i + 1))
                        .to_string_lossy()
                        .into_owned();
                    out.insert(k, v);
                }
                rdkafka::bindings::rd_kafka_conf_dump_free(arr, cnt);
            }
        }
        out
    })
}

/// Whether `key=value` is just librdkafka's default. Keys librdkafka does
/// not know (the consumers' own knobs, topic-level properties) are never
/// defaults.
pub fn is_default(key: &str, value: &str) -> bool {
    librdkafka_defaults().get(key).is_some_and(|d| d == value)
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
