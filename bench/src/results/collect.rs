//! [`Results::collect`]: the figures of a run, read back from its
//! directory, one step per phase.

use super::*;

impl Results {
    /// The backlog phase (producer, ceilings, both consumers), then every
    /// live and saturation step.
    pub fn collect(dir: &Path) -> anyhow::Result<Results> {
        let run: RunRecord = read_stats(&dir.join("run.json"))?;
        let checks: Vec<Check> = verify::read_checks(&dir.join("verification.json"))?;
        let mut r = Results {
            verification: verify::verdict(&checks).to_string(),
            checks,
            benchmark_wall_seconds: run.wall_seconds,
            run,
            queries: read_opt(&dir.join("queries.json"))?,
            settings: ["producer", "pull", "push"]
                .map(|w| (w.into(), BTreeMap::new()))
                .into(),
            ..Default::default()
        };
        let backlog = dir.join("backlog");
        r.collect_producer(&backlog)?;
        let ceiling = r.collect_ceilings(&backlog)?;
        r.collect_backlog(&backlog, ceiling)?;
        r.collect_live(dir)?;
        r.peak_rss_bytes = r.peaks();
        Ok(r)
    }

    pub(super) fn collect_producer(&mut self, backlog: &Path) -> anyhow::Result<()> {
        let producer: Option<ProducerStats> = read_opt(&backlog.join("producer.json"))?;
        let halves: [Option<ProducerStats>; 2] = [
            read_opt(&backlog.join("producer-raw-before.json"))?,
            read_opt(&backlog.join("producer-raw-after.json"))?,
        ];
        let Some(p) = &producer else { return Ok(()) };
        self.reported("producer", &p.settings);
        let raw: Vec<&ProducerStats> = halves.iter().flatten().collect();
        let wall: f64 = raw.iter().map(|r| r.wall_seconds).sum();
        let events: u64 = raw.iter().map(|r| r.events_acknowledged).sum();
        let raw_eps = (wall > 0.0).then(|| events as f64 / wall);
        self.producer = Some(ProducerResult {
            events: p.events_acknowledged,
            wall_seconds: p.wall_seconds,
            events_per_second: p.events_per_second,
            raw_events_per_second: raw_eps,
            raw_before_events_per_second: halves[0].as_ref().map(|r| r.events_per_second),
            raw_after_events_per_second: halves[1].as_ref().map(|r| r.events_per_second),
            ratio_to_raw: raw_eps
                .filter(|&x| x > 0.0)
                .map(|x| p.events_per_second / x),
            cpu_seconds: p.cpu_seconds,
            max_rss_bytes: p.max_rss_bytes,
            raw_cpu_seconds: raw_eps.and(Some(raw.iter().map(|r| r.cpu_seconds).sum())),
            raw_max_rss_bytes: raw_eps.and(raw.iter().map(|r| r.max_rss_bytes).max()),
        });
        Ok(())
    }

    /// Returns the lower of raw consume and store insert.
    fn collect_ceilings(&mut self, backlog: &Path) -> anyhow::Result<Option<f64>> {
        let raw_consume: Option<RawConsumeStats> = read_opt(&backlog.join("raw-consume.json"))?;
        let store_insert = joined_halves(backlog, "store-insert")?;
        let bare_sqlite = joined_halves(backlog, "bare-sqlite")?;
        let lower = [
            raw_consume
                .as_ref()
                .map(|s| ("raw consume", s.events_per_second)),
            store_insert
                .as_ref()
                .map(|s| ("store insert", s.events_per_second)),
        ]
        .into_iter()
        .flatten()
        .filter(|(_, eps)| *eps > 0.0)
        .min_by(|a, b| a.1.total_cmp(&b.1));
        if raw_consume.is_some() || store_insert.is_some() {
            let store_to_bare = store_insert
                .as_ref()
                .zip(bare_sqlite.as_ref())
                .filter(|(_, b)| b.events_per_second > 0.0)
                .map(|(s, b)| s.events_per_second / b.events_per_second);
            self.ceilings = Some(Ceilings {
                raw_consume,
                store_insert,
                bare_sqlite,
                store_to_bare,
                lower_events_per_second: lower.map(|l| l.1),
                lower: lower.map(|l| l.0.to_string()).unwrap_or_default(),
            });
        }
        Ok(lower.map(|l| l.1))
    }

    fn collect_backlog(&mut self, backlog: &Path, ceiling: Option<f64>) -> anyhow::Result<()> {
        for model in Model::ALL {
            let stats: Option<ConsumerStats> =
                read_opt(&backlog.join(format!("{}.json", model.name())))?;
            let Some(stats) = stats else { continue };
            let figures = self.figures("backlog", model, &stats);
            self.reported(model.name(), &stats.settings.flat());
            let result = ModelResult {
                fraction_of_ceiling: ceiling
                    .filter(|&c| c > 0.0)
                    .map(|c| figures.events_per_second / c),
                ceiling_events_per_second: ceiling,
                backlog: figures,
                live: Vec::new(),
            };
            *self.model_mut(model) = Some(result);
        }
        Ok(())
    }

    fn model_mut(&mut self, model: Model) -> &mut Option<ModelResult> {
        match model {
            Model::Pull => &mut self.pull,
            Model::Push => &mut self.push,
        }
    }

    /// The settings `who` reported, unless an earlier phase's are there.
    fn reported(&mut self, who: &str, settings: &BTreeMap<String, String>) {
        let slot = self.settings.entry(who.into()).or_default();
        if slot.is_empty() {
            slot.clone_from(settings);
        }
    }

    fn collect_live(&mut self, dir: &Path) -> anyhow::Result<()> {
        let mut steps: Vec<LiveResult> = Vec::new();
        for phase_dir in verify::phase_dirs(dir).unwrap_or_default() {
            let phase = verify::file_name(&phase_dir);
            let (sweep, rate) = match phase.split_once('-') {
                Some(("live", rate)) => (false, rate),
                Some(("saturation", rate)) => (true, rate),
                _ => continue,
            };
            let Ok(rate) = rate.parse::<u64>() else {
                continue;
            };
            let live = self.collect_live_phase(&phase_dir, &phase, rate, sweep)?;
            if sweep {
                steps.push(live);
            } else {
                self.live.push(live);
            }
        }
        if !steps.is_empty() {
            steps.sort_by_key(|s| s.rate);
            let bound = self
                .run
                .config
                .saturation_p99_ms
                .unwrap_or(DEFAULT_SATURATION_P99_MS);
            self.saturation = Some(Saturation::from_steps(steps, bound));
        }
        Ok(())
    }

    fn collect_live_phase(
        &mut self,
        phase_dir: &Path,
        phase: &str,
        rate: u64,
        sweep: bool,
    ) -> anyhow::Result<LiveResult> {
        let p: Option<ProducerStats> = read_opt(&phase_dir.join("producer.json"))?;
        let mut live = LiveResult {
            rate,
            duration_s: self.run.config.duration_s,
            ..LiveResult::default()
        };
        if let Some(p) = p {
            self.reported("producer", &p.settings);
            live.produced = p.events_acknowledged;
            live.producer_events_per_second = p.events_per_second;
            live.producer_cpu_seconds = p.cpu_seconds;
            live.producer_max_rss_bytes = p.max_rss_bytes;
        }
        for model in Model::ALL {
            let stats: Option<ConsumerStats> =
                read_opt(&phase_dir.join(format!("{}.json", model.name())))?;
            let Some(stats) = stats else { continue };
            let figures = self.figures(phase, model, &stats);
            if !sweep {
                self.reported(model.name(), &stats.settings.flat());
                self.model_mut(model)
                    .get_or_insert_with(ModelResult::default)
                    .live
                    .push(LiveLatency {
                        rate,
                        events_per_second: figures.events_per_second,
                        latency_us: figures.latency_us,
                    });
            }
            match model {
                Model::Pull => live.pull = Some(figures),
                Model::Push => live.push = Some(figures),
            }
        }
        Ok(live)
    }

    fn peaks(&self) -> BTreeMap<String, u64> {
        let mut peaks = BTreeMap::new();
        let mut note = |who: &str, bytes: u64| {
            if bytes > 0 {
                let slot = peaks.entry(who.to_string()).or_insert(0);
                *slot = (*slot).max(bytes);
            }
        };
        if let Some(p) = &self.producer {
            note("producer", p.max_rss_bytes);
            note("producer-raw", p.raw_max_rss_bytes.unwrap_or(0));
        }
        if let Some(c) = &self.ceilings {
            let raw = c.raw_consume.as_ref().map_or(0, |x| x.max_rss_bytes);
            let store = c.store_insert.as_ref().map_or(0, |x| x.max_rss_bytes);
            note("raw-consume", raw);
            note("store-insert", store);
        }
        for (model, m) in [("pull", &self.pull), ("push", &self.push)] {
            note(model, m.as_ref().map_or(0, |m| m.backlog.max_rss_bytes));
        }
        for l in &self.live {
            note("producer", l.producer_max_rss_bytes);
            for (model, f) in [("pull", &l.pull), ("push", &l.push)] {
                note(model, f.as_ref().map_or(0, |f| f.max_rss_bytes));
            }
        }
        peaks
    }

    fn figures(&self, phase: &str, model: Model, s: &ConsumerStats) -> Figures {
        let key = format!("{phase}/{}", model.name());
        Figures {
            events: s.events_committed,
            wall_seconds: s.wall_seconds,
            events_per_second: s.events_per_second,
            latency_us: s.latency_us,
            commit_us: s.commit_us,
            cpu_seconds: s.cpu_seconds,
            max_rss_bytes: s.max_rss_bytes,
            db_bytes: self
                .run
                .db_bytes
                .get(&format!("{key}.db"))
                .map_or(0, |b| *b),
            dead_letters: s.dead_letters,
            batches: s.batches,
            exit_reason: s.exit_reason.name().to_string(),
            exit_code: self.run.exit_codes.get(&key).copied(),
            verification: if self.checks.is_empty() {
                "not run".into()
            } else {
                verify::verdict_of(&self.checks, phase, model.name()).into()
            },
            timeline: s.timeline.clone(),
        }
    }

    /// A setting of `producer`, `pull` or `push`, or "–".
    pub fn setting(&self, who: &str, key: &str) -> String {
        let value = self.settings.get(who).and_then(|m| m.get(key));
        value.cloned().unwrap_or_else(|| "–".into())
    }
}
