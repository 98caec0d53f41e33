//! Kafka client settings from the command line.
//!
//! Every binary takes `--brokers` (env `KAFKA_BROKERS`) and any number of
//! `-X key=value` librdkafka properties, applied last so they override our
//! defaults, as kcat does. That is also how TLS and SASL are configured
//! (`-X security.protocol=SASL_SSL -X sasl.mechanism=SCRAM-SHA-512 ...`).
//! Values of secret properties never appear in logs: see [`redacted`].

use std::collections::BTreeMap;
use std::ffi::CStr;

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaConfRes;

/// The connection flags shared by the producer and both consumers
/// (serializable, so that a program starting one of them can build the
/// command line from this struct).
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated host:port pairs.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "localhost:9092", value_parser = parse_brokers)]
    pub brokers: String,

    /// Topic of the banking events.
    #[arg(long, default_value = "banking.events")]
    pub topic: String,

    /// Any librdkafka property as key=value, repeatable; applied after the
    /// built-in defaults so it overrides them (TLS/SASL settings go here,
    /// e.g. -X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN
    /// -X sasl.username=u -X sasl.password=p). Secret values are never logged.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,
}

impl KafkaArgs {
    /// A client configuration with `bootstrap.servers`, the given defaults,
    /// then the user's `-X` properties on top.
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config.set_log_level(RDKafkaLogLevel::Warning);
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }

    /// The `-X` properties as `key=value` with secrets masked, for logs and
    /// stats files.
    pub fn redacted_properties(&self) -> Vec<String> {
        self.properties
            .iter()
            .map(|(k, v)| format!("{k}={}", redacted(k, v)))
            .collect()
    }

    /// The value the user set for `key` with `-X`, else `default`.
    pub fn property_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or(default)
    }
}

/// Every global property librdkafka has in force for `config`, its own
/// defaults included, as `rd_kafka_conf_dump` lists them (values unredacted;
/// topic-level properties such as `auto.offset.reset` are not in it).
///
/// Fails when librdkafka refuses the configuration (an unknown property, a
/// bad value), which makes it the way to check `-X` before connecting.
pub fn conf_dump(config: &ClientConfig) -> KafkaResult<BTreeMap<String, String>> {
    let native = config.create_native_config().map_err(scrub_config_error)?;
    let mut out = BTreeMap::new();
    // SAFETY: rd_kafka_conf_dump returns `cnt` C strings (key, value, key,
    // value, ...) that stay valid until rd_kafka_conf_dump_free, which is
    // called once they are copied; `native` outlives both calls.
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
    Ok(out)
}

/// Parses one `-X key=value` argument.
pub fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// Checks a bootstrap list: comma-separated `host:port`, each port a number.
/// librdkafka would accept garbage here and then retry it forever; we refuse
/// it up front with a message that says what is wrong.
pub fn parse_brokers(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the broker list is empty".into());
    }
    for entry in s.split(',') {
        let entry = entry.trim();
        let addr = entry
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(entry);
        let Some((host, port)) = addr.rsplit_once(':') else {
            return Err(format!("{entry:?} is not host:port"));
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c));
        if !host_ok {
            return Err(format!("{entry:?} has an invalid host name"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(format!("{entry:?} has an invalid port {port:?}")),
        }
    }
    Ok(s.to_string())
}

/// librdkafka's configuration errors print the refused value; for an
/// unknown property (a mistyped `sasl.pasword=...`) or a secret one that
/// value may be a password. Returns the error with the value masked, in its
/// last field and in the description.
pub fn scrub_config_error(e: KafkaError) -> KafkaError {
    match e {
        KafkaError::ClientConfig(code, desc, key, value) => {
            let hide =
                code == RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN || redacted(&key, &value) != value;
            if hide && !value.is_empty() {
                let desc = desc.replace(&value, "[redacted]");
                KafkaError::ClientConfig(code, desc, key, "[redacted]".into())
            } else {
                KafkaError::ClientConfig(code, desc, key, value)
            }
        }
        other => other,
    }
}

/// The value to show for property `key`: `[redacted]` for anything that can
/// hold a secret (passwords, keys, tokens, JAAS/OAuth configs).
pub fn redacted<'a>(key: &str, value: &'a str) -> &'a str {
    const SECRET_MARKERS: [&str; 6] = ["password", "secret", "key", "token", "jaas", "oauthbearer"];
    let k = key.to_ascii_lowercase();
    if SECRET_MARKERS.iter().any(|m| k.contains(m)) && !k.ends_with(".location") {
        "[redacted]"
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_are_checked() {
        assert!(parse_brokers("localhost:9092").is_ok());
        assert!(parse_brokers("a:1, b.example.com:9093").is_ok());
        assert!(parse_brokers("PLAINTEXT://127.0.0.1:9092").is_ok());
        assert!(parse_brokers("").is_err());
        assert!(parse_brokers("localhost").is_err());
        assert!(parse_brokers("localhost:notaport").is_err());
        assert!(parse_brokers("localhost:0").is_err());
        assert!(parse_brokers("bad host:9092").is_err());
    }

    #[test]
    fn conf_dump_lists_defaults_and_overrides_and_refuses_unknown_keys() {
        let mut config = ClientConfig::new();
        config.set("fetch.wait.max.ms", "42");
        let dump = conf_dump(&config).unwrap();
        assert_eq!(dump["fetch.wait.max.ms"], "42");
        assert_eq!(dump["queued.min.messages"], "100000");
        config.set("no.such.property", "1");
        assert!(conf_dump(&config).is_err());
    }

    #[test]
    fn config_errors_never_show_the_value_of_a_mistyped_or_secret_property() {
        // Found by the chaos suite (bad-input): `-X sasl.pasword=...` echoed
        // the password in the error message.
        let mut config = ClientConfig::new();
        config.set("sasl.pasword", "hunter2");
        let e = conf_dump(&config).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("sasl.pasword"), "{e}");
        let e = scrub_config_error(KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"hunter2\" for configuration property \"ssl.key.password\"".into(),
            "ssl.key.password".into(),
            "hunter2".into(),
        ))
        .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        let mut config = ClientConfig::new();
        config.set("linger.ms", "abc");
        let e = conf_dump(&config).unwrap_err().to_string();
        assert!(
            e.contains("abc"),
            "a non-secret bad value is still shown: {e}"
        );
    }

    #[test]
    fn properties_parse_and_secrets_are_masked() {
        assert_eq!(
            parse_property("linger.ms=5").unwrap(),
            ("linger.ms".into(), "5".into())
        );
        assert_eq!(parse_property("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_property("novalue").is_err());
        assert!(parse_property("=x").is_err());
        assert_eq!(redacted("sasl.password", "hunter2"), "[redacted]");
        assert_eq!(redacted("ssl.key.pem", "-----BEGIN"), "[redacted]");
        assert_eq!(redacted("ssl.key.location", "/etc/k.pem"), "/etc/k.pem");
        assert_eq!(redacted("linger.ms", "5"), "5");
    }
}
