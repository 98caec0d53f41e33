//! Progress of long work: a bar on a terminal, a log line every few seconds
//! otherwise (CI logs and the benchmark's captured output stay readable).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// A progress display counting events.
pub struct Progress {
    bar: Option<ProgressBar>,
    what: &'static str,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_log: Instant,
    log_every: Duration,
}

impl Progress {
    /// `total` is the expected count when known; `what` names the unit
    /// ("sent", "stored").
    pub fn new(total: Option<u64>, what: &'static str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            let template = if total.is_some() {
                "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} {msg} ({per_sec}, eta {eta})"
            } else {
                "{elapsed_precise} {spinner} {human_pos} {msg} ({per_sec})"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what);
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            what,
            total,
            done: 0,
            started: now,
            last_log: now,
            log_every: Duration::from_secs(5),
        }
    }

    /// Counts `n` more done.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => {
                if self.last_log.elapsed() >= self.log_every {
                    self.last_log = Instant::now();
                    self.log_line();
                }
            }
        }
    }

    fn log_line(&self) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs;
        match self.total {
            Some(t) => tracing::info!("{} {}/{} ({:.0}/s)", self.what, self.done, t, rate),
            None => tracing::info!("{} {} ({:.0}/s)", self.what, self.done, rate),
        }
    }

    /// Removes the bar (the caller prints its own summary).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
