//! The one rate-limited log of the consumers: librdkafka repeats the same
//! error many times a second while a broker is down, so each kind of line
//! is logged at most once per period, with how many repeats were held back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// At most one line per kind every `every`.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    seen: HashMap<String, (Instant, u64)>,
}

impl Throttle {
    /// A throttle of one line per kind every `every`.
    pub fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            seen: HashMap::new(),
        }
    }

    /// `Some(held_back)` when a line of `kind` may be logged now, with how
    /// many were held back since the last one; `None` (counted) when not.
    pub fn pass(&mut self, kind: &str) -> Option<u64> {
        let now = Instant::now();
        match self.seen.get_mut(kind) {
            Some((at, held)) if now.duration_since(*at) < self.every => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                *at = now;
                Some(std::mem::take(held))
            }
            None => {
                self.seen.insert(kind.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

/// ` (N more like it since the last such line)` when `held_back` > 0.
pub fn held_back(held_back: u64) -> String {
    match held_back {
        0 => String::new(),
        n => format!(" ({n} more like it since the last such line)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_and_period_with_the_repeats_counted() {
        let mut t = Throttle::new(Duration::from_millis(50));
        assert_eq!(t.pass("a"), Some(0));
        assert_eq!(t.pass("a"), None);
        assert_eq!(t.pass("a"), None);
        assert_eq!(t.pass("b"), Some(0));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.pass("a"), Some(2));
        assert_eq!(held_back(2), " (2 more like it since the last such line)");
        assert_eq!(held_back(0), "");
    }
}
