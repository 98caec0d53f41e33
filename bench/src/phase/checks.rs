//! A phase's verification: `bench check-phase` against the producer's
//! runs merged into one `producer.json`, or the `ledger` checks of a
//! group's databases.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{PhaseSpec, instance_name};
use crate::stats::ProducerStats;
use crate::verify::{self, Check};

/// A phase's checks: `bench check-phase` on its directory for single
/// instances, each group's databases as one ([`check_union`]) otherwise.
pub fn verify(
    spec: &PhaseSpec,
    dir: &Path,
    producer: &ProducerStats,
) -> anyhow::Result<Vec<Check>> {
    if spec.instances == 1 {
        return verify::phase_in_child(dir, Duration::from_secs(600));
    }
    let mut checks = vec![verify::check_producer(&spec.name, producer)];
    for &model in &spec.models {
        let dbs: Vec<PathBuf> = (0..spec.instances)
            .map(|i| dir.join(format!("{}.db", instance_name(model, i, spec.instances))))
            .collect();
        checks.extend(check_union(&spec.name, model.name(), &dbs, producer));
    }
    Ok(checks)
}

/// The producer runs of a phase as one: counts, amount sum and id
/// checksum added up (the checksum is a wrapping sum, so the sum of the
/// parts is the checksum of the whole), times and CPU added up.
pub fn merge(parts: &[ProducerStats]) -> Option<ProducerStats> {
    let first = parts.first()?;
    let mut m = first.clone();
    let mut checksum = 0u64;
    for (k, p) in parts.iter().enumerate() {
        let c = u64::from_str_radix(&p.id_checksum, 16).unwrap_or(0);
        checksum = checksum.wrapping_add(c);
        if k == 0 {
            continue;
        }
        m.events_requested += p.events_requested;
        m.events_sent += p.events_sent;
        m.events_acknowledged += p.events_acknowledged;
        m.events_failed += p.events_failed;
        m.amount_minor_sum += p.amount_minor_sum;
        m.last_event_id = p.last_event_id;
        m.wall_seconds += p.wall_seconds;
        m.cpu_seconds += p.cpu_seconds;
        m.max_rss_bytes = m.max_rss_bytes.max(p.max_rss_bytes);
        m.interrupted |= p.interrupted;
        m.errors.extend(p.errors.iter().cloned());
    }
    m.id_checksum = format!("{checksum:016x}");
    m.events_per_second = crate::stats::rate(m.events_acknowledged, m.wall_seconds);
    Some(m)
}

/// A group's databases as one (`ledger`): each acknowledged event exactly
/// once across them, the amount sum, the id checksum (the wrapping sum of
/// each database's), no dead letters.
pub fn check_union(phase: &str, model: &str, dbs: &[PathBuf], p: &ProducerStats) -> Vec<Check> {
    let check = |what: &str, expected: String, actual: String| {
        Check::new(phase, model, what, expected, actual)
    };
    let present: Vec<PathBuf> = dbs.iter().filter(|d| d.is_file()).cloned().collect();
    let s = match ledger::Ledger::open(&present).and_then(|l| l.summary()) {
        Ok(s) => s,
        Err(e) => {
            return vec![check(
                "ledger readable",
                "the group's databases".into(),
                format!("error: {e}"),
            )];
        }
    };
    let mut checksum = 0u64;
    for db in &present {
        if let Ok(x) = store::Store::open(db).and_then(|s| s.summary()) {
            checksum = checksum.wrapping_add(x.id_checksum.value());
        }
    }
    let acked = p.events_acknowledged.to_string();
    let dead: u64 = s.databases.iter().map(|d| d.dead_letters).sum();
    vec![
        check(
            "distinct events (ledger)",
            acked.clone(),
            s.distinct_events.to_string(),
        ),
        check("rows over the databases", acked, s.rows.to_string()),
        check(
            "amount sum (ledger)",
            p.amount_minor_sum.to_string(),
            s.amount_minor_sum.to_string(),
        ),
        check(
            "id checksum (sum over the databases)",
            p.id_checksum.to_ascii_lowercase(),
            format!("{checksum:016x}"),
        ),
        check("dead letters", "0".into(), dead.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::producer_stats;

    fn part(first: u64, n: u64, amount: i128) -> ProducerStats {
        ProducerStats {
            amount_minor_sum: amount,
            ..producer_stats(first, n, 1.0)
        }
    }

    /// The merged checksum is the checksum of all the ids, as a database
    /// holding every part's events would compute it.
    #[test]
    fn merged_producer_stats_are_those_of_the_whole() {
        let m = merge(&[part(1, 100, 5), part(101, 50, -2), part(151, 7, 1)]).unwrap();
        let whole: proto::IdChecksum = (1..158).collect();
        assert_eq!(m.id_checksum, whole.hex());
        assert_eq!(m.events_acknowledged, 157);
        assert_eq!(m.amount_minor_sum, 4);
        assert_eq!((m.first_event_id, m.last_event_id), (1, 157));
        assert_eq!(m.wall_seconds, 3.0);
        assert!(merge(&[]).is_none());
    }
}
