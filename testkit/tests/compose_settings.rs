//! `docker-compose.yml` and the local brokers run the same Apache Kafka:
//! every `KAFKA_*` variable of its `kafka` service is one of
//! `testkit::settings` (same value) or a placed one (addresses, node id,
//! directory), and every setting of the table is in the compose file.

use std::collections::BTreeMap;

use testkit::settings::{self, CLUSTER_ID, PLACED};

/// The compose file's `kafka` service environment, as `server.properties`
/// keys (`KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS` is
/// `group.initial.rebalance.delay.ms`), and its `CLUSTER_ID`.
fn compose_settings() -> (BTreeMap<String, String>, Option<String>) {
    let path = testkit::repo_root().join("docker-compose.yml");
    let text = std::fs::read_to_string(&path).expect("read docker-compose.yml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("docker-compose.yml is YAML");
    let env = doc["services"]["kafka"]["environment"]
        .as_mapping()
        .expect("services.kafka.environment is a mapping");
    let scalar = |v: &serde_yaml::Value| match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    };
    let mut kafka = BTreeMap::new();
    let mut cluster_id = None;
    for (k, v) in env {
        let k = k.as_str().expect("a string key");
        if k == "CLUSTER_ID" {
            cluster_id = Some(scalar(v));
        }
        if let Some(name) = k.strip_prefix("KAFKA_") {
            kafka.insert(name.to_lowercase().replace('_', "."), scalar(v));
        }
    }
    (kafka, cluster_id)
}

#[test]
fn docker_compose_sets_the_settings_of_the_local_brokers() {
    let (compose, cluster_id) = compose_settings();
    let ours: BTreeMap<String, String> = settings::settings(1).into_iter().collect();
    let mut wrong = Vec::new();
    for (key, value) in &compose {
        if PLACED.contains(&key.as_str()) {
            continue;
        }
        match ours.get(key) {
            Some(v) if v == value => {}
            Some(v) => wrong.push(format!("{key}: compose {value}, testkit::settings {v}")),
            None => wrong.push(format!(
                "{key}: in compose only (add it to testkit::settings)"
            )),
        }
    }
    for key in ours.keys().filter(|k| !compose.contains_key(*k)) {
        wrong.push(format!(
            "{key}: in testkit::settings only (add it to docker-compose.yml)"
        ));
    }
    for key in PLACED.iter().filter(|k| !compose.contains_key(**k)) {
        wrong.push(format!("{key}: placed, yet not set by docker-compose.yml"));
    }
    assert!(
        wrong.is_empty(),
        "the broker settings disagree:\n{}",
        wrong.join("\n")
    );
    assert_eq!(cluster_id.as_deref(), Some(CLUSTER_ID));
}

#[test]
fn both_kafka_images_are_the_version_testkit_reads() {
    let text = std::fs::read_to_string(testkit::repo_root().join("docker-compose.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let want = format!(
        "${{KAFKA_IMAGE:-apache/kafka:{}}}",
        settings::version().unwrap()
    );
    for service in ["kafka", "kafka-init"] {
        assert_eq!(
            doc["services"][service]["image"].as_str(),
            Some(want.as_str()),
            "{service}"
        );
    }
}
