//! The backlog phase: the producer writes N events as fast as it can, then
//! each consumer drains them alone; the ceilings around it.

use super::*;

/// `producer --raw` with `count` events into a throw-away topic, deleted
/// afterwards whatever happened.
pub(super) fn raw_to_throwaway_topic(
    ctx: &Ctx<'_>,
    dir: &Path,
    name: &str,
    count: u64,
) -> anyhow::Result<Finished> {
    let topic = ctx.env.topic(name);
    ctx.env.create_topic(&topic)?;
    let f = ctx.env.producer(dir, name, &topic, (count, 0), 1, true);
    ctx.env.delete_topic(&topic);
    f
}

pub(super) fn backlog(ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let phase = "backlog";
    let n = ctx.args.events;
    let dir = ctx.env.out.join(phase);
    std::fs::create_dir_all(&dir)?;
    let topic = ctx.env.topic(phase);
    let skip_ceilings = ctx.args.skip_ceilings;

    // Each ceiling is measured in two halves, right before and right after
    // what it bounds: the broker and the shared machine drift, and a
    // ceiling on one side only would favour or handicap it by that drift.
    let raw_half = |ctx: &mut Ctx<'_>, name: &str, count: u64| {
        if skip_ceilings || count == 0 {
            return;
        }
        ctx.step_or_fail(
            phase,
            &format!("producer --raw: raw ceiling, {count} pre-encoded events to a throw-away topic ({name})"),
            &format!("producer raw ceiling ({name})"),
            |ctx| {
                let f = raw_to_throwaway_topic(ctx, &dir, name, count)?;
                ctx.finished(phase, &f)
            },
        );
    };
    raw_half(ctx, "producer-raw-before", n / 2);

    let produced: ProducerStats = ctx.step(
        phase,
        &format!("producer writes {n} events as fast as it can"),
        |ctx| {
            ctx.env.create_topic(&topic)?;
            let f = ctx
                .env
                .producer(&dir, "producer", &topic, (n, 0), 1, false)?;
            ctx.finished(phase, &f)?;
            Ok(read_stats(&dir.join("producer.json"))?)
        },
    )?;
    let acked = produced.events_acknowledged;

    raw_half(ctx, "producer-raw-after", n - n / 2);

    // The insert ceilings' halves go into one scratch database each, the
    // second continuing the first: store, bare, drains, bare, store.
    let scratch = dir.join("store-ceiling.db");
    let bare_scratch = dir.join("bare-ceiling.db");
    let first_id = produced.first_event_id.max(1);
    let store_half = |ctx: &mut Ctx<'_>, name: &str, count: u64, skip: u64| {
        if skip_ceilings || count == 0 {
            return;
        }
        let bare = name.starts_with("bare-");
        let (db, subcommand, what) = if bare {
            (&bare_scratch, "ceiling-bare", "bare SQLite insert")
        } else {
            (&scratch, "ceiling-store", "store insert")
        };
        ctx.step_or_fail(
            phase,
            &format!("ceiling: {what} of {count} of the same events, no Kafka ({name})"),
            &format!("{what} ceiling ({name})"),
            |ctx| {
                if skip == 0 {
                    remove_db(db);
                }
                let stats = dir.join(format!("{name}.json"));
                let args = ctx
                    .env
                    .settings
                    .store_ceiling(db, count, skip, first_id, &stats);
                let f = bench_child(&dir, name, subcommand, &args, drain_limit(count))?;
                ctx.finished(phase, &f)
            },
        );
    };
    store_half(ctx, "store-insert-before", n / 2, 0);
    store_half(ctx, "bare-sqlite-before", n / 2, 0);

    for model in Model::ALL {
        let name = model.name();
        ctx.step_or_fail(
            phase,
            &format!("consumer-{name} drains {acked} events alone into {phase}/{name}.db"),
            &format!("consumer-{name} backlog drain"),
            |ctx| {
                let group = ctx.env.group(model, phase);
                let mut args = ctx
                    .env
                    .settings
                    .consumer(model, &dir, name, &topic, &group, acked);
                args.ready_file = None;
                let f = ctx
                    .env
                    .consumer(model, name, &dir, &args)?
                    .finish_within(drain_limit(acked))?;
                ctx.record_db(phase, name, &args.db);
                ctx.finished(phase, &f)
            },
        );
    }

    if !skip_ceilings {
        ctx.step_or_fail(
            phase,
            "ceiling: raw consume (BaseConsumer, consumers' settings, fresh group, decode only)",
            "raw consume ceiling",
            |ctx| {
                let group = ctx.env.topic("raw-consume");
                let stats = dir.join("raw-consume.json");
                let args = ctx.env.settings.raw_consume(&topic, &group, acked, &stats);
                let limit = drain_limit(acked);
                let f = bench_child(&dir, "raw-consume", "ceiling-consume", &args, limit)?;
                ctx.finished(phase, &f)
            },
        );
        store_half(ctx, "bare-sqlite-after", n - n / 2, n / 2);
        store_half(ctx, "store-insert-after", n - n / 2, n / 2);
        remove_db(&scratch);
        remove_db(&bare_scratch);
    }
    ctx.env.delete_topic(&topic);

    ctx.step(phase, "verification of pull.db and push.db", |ctx| {
        ctx.verify_phase(phase, &dir)
    })?;

    let pull_db = dir.join("pull.db");
    if pull_db.is_file() {
        ctx.step_or_fail(
            phase,
            "store queries on pull.db (after ensure_query_index)",
            "store queries",
            |ctx| {
                // A child process, for the same reason as the verification.
                let json = ctx.env.out.join("queries.json");
                let args = QueryArgs {
                    db: pull_db.clone(),
                    accounts: ctx.env.settings.accounts,
                    samples: 200,
                    stats_json: Some(json.clone()),
                };
                let limit = Duration::from_secs(3600);
                let f = bench_child(&dir, "queries", "queries", &args, limit)?;
                ctx.finished(phase, &f)
            },
        );
    }
    Ok(())
}
