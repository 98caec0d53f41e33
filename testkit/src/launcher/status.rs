//! `broker status`: what runs from a run directory, as `scripts/broker.sh
//! status` has always printed it.

use super::*;

/// Prints what runs from `run_dir`; true when it answers.
pub fn status(place: &Place) -> bool {
    use std::fmt::Write as _;
    let mut out = String::new();
    let run = RunDir::open(&place.run_dir);
    let kind = run.get("kind");
    let address = run.get("address");
    let nodes = nodes_of(&run);
    let pids: Vec<String> = match kind.as_deref() {
        Some("kafka") => kafka_pids(&run, nodes)
            .iter()
            .map(|p| p.map_or("-".into(), |p| p.to_string()))
            .collect(),
        Some("nisshi") => nisshi_pid(&run)
            .map(|p| p.to_string())
            .into_iter()
            .collect(),
        _ => vec![],
    };
    let local = matches!(kind.as_deref(), Some("kafka" | "nisshi"));
    let any_pid = pids.iter().any(|p| p != "-");
    let up = (!local || any_pid) && address.as_deref().is_some_and(answers);
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "kind:     {}",
        kind.clone()
            .unwrap_or_else(|| "none (nothing started from this run dir)".into())
    );
    let _ = writeln!(out, "address:  {}", dash(address.clone()));
    let _ = writeln!(
        out,
        "pid:      {}",
        if any_pid { pids.join(" ") } else { "-".into() }
    );
    let _ = writeln!(out, "version:  {}", dash(run.get("version")));
    match kind.as_deref() {
        Some("nisshi") => {
            let _ = writeln!(out, "storage:  {}", dash(run.get("storage")));
            let _ = writeln!(
                out,
                "log:      {}",
                place.run_dir.join("nisshi.log").display()
            );
        }
        Some("kafka") => {
            let r = Replication::for_nodes(nodes as usize);
            let _ = writeln!(
                out,
                "nodes:    {nodes} (replication {}, min.insync.replicas {})",
                r.replicas, r.min_isr
            );
            let _ = writeln!(out, "heap:     {}", dash(run.get("heap")));
            let _ = writeln!(
                out,
                "log:      {}",
                place.node_dir(nodes, 1).join("logs/server.log").display()
            );
        }
        _ => {}
    }
    let _ = writeln!(out, "answers:  {}", if up { "yes" } else { "no" });
    let _ = writeln!(out, "run dir:  {}", place.run_dir.display());
    let own = format!("{}:{}", place.host, place.port);
    if (kind.is_none() || address.is_none()) && answers(&own) {
        let _ = writeln!(
            out,
            "note:     something not started from this run dir listens on {own}"
        );
    }
    // A closed pipe (`status | head`) is not an error of the broker.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    up
}
