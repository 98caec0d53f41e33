//! `broker status`: what runs from a run directory.

use super::*;

/// Prints what runs from `run_dir`; true when it answers.
pub fn status(place: &Place) -> bool {
    let run = RunDir::open(&place.run_dir);
    let (kind, address, nodes) = (run.get("kind"), run.get("address"), nodes_of(&run));
    let pids: Vec<String> = pids(&run, kind.as_deref().unwrap_or_default())
        .iter()
        .map(|p| p.map_or("-".into(), |p| p.to_string()))
        .collect();
    let local = matches!(kind.as_deref(), Some("kafka" | "nisshi"));
    let any_pid = pids.iter().any(|p| p != "-");
    let up = (!local || any_pid) && address.as_deref().is_some_and(answers);
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let kind_or_none = kind
        .clone()
        .unwrap_or_else(|| "none (nothing started from this run dir)".into());
    let mut rows = vec![
        ("kind", kind_or_none),
        ("address", dash(address.clone())),
        ("pid", if any_pid { pids.join(" ") } else { "-".into() }),
        ("version", dash(run.get("version"))),
    ];
    match kind.as_deref() {
        Some("nisshi") => {
            rows.push(("storage", dash(run.get("storage"))));
            let log = place.run_dir.join("nisshi.log");
            rows.push(("log", log.display().to_string()));
        }
        Some("kafka") => {
            let r = Replication::for_nodes(nodes as usize);
            let (rf, isr) = (r.replicas, r.min_isr);
            let replication = format!("replication {rf}, min.insync.replicas {isr}");
            rows.push(("nodes", format!("{nodes} ({replication})")));
            rows.push(("heap", dash(run.get("heap"))));
            let log = place.node_dir(nodes, 1).join("logs/server.log");
            rows.push(("log", log.display().to_string()));
        }
        _ => {}
    }
    rows.push(("answers", if up { "yes" } else { "no" }.into()));
    rows.push(("run dir", place.run_dir.display().to_string()));
    let own = place.address(1);
    if (kind.is_none() || address.is_none()) && answers(&own) {
        let note = format!("something not started from this run dir listens on {own}");
        rows.push(("note", note));
    }
    let out: String = rows
        .iter()
        .map(|(k, v)| format!("{:<10}{v}\n", format!("{k}:")))
        .collect();
    // A closed pipe (`status | head`) is not an error of the broker.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    up
}
