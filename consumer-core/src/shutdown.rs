//! SIGINT/SIGTERM: the first one asks the run to stop (stop fetching,
//! commit the open batch, print the summary, exit 0); a second one ends the
//! process at once, for when a person really means it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::error::ConsumerError;

/// Set once SIGINT or SIGTERM arrived.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
}

impl Shutdown {
    /// Installs the handlers.
    pub fn install() -> Result<Shutdown, ConsumerError> {
        let flag = Arc::new(AtomicBool::new(false));
        for (sig, code) in [(SIGINT, 130), (SIGTERM, 143)] {
            // Order matters: the conditional exit only fires when the flag
            // is already set, i.e. on the second signal.
            signal_hook::flag::register_conditional_shutdown(sig, code, flag.clone())
                .map_err(ConsumerError::Signals)?;
            signal_hook::flag::register(sig, flag.clone()).map_err(ConsumerError::Signals)?;
        }
        Ok(Shutdown { flag })
    }

    /// Whether a signal asked the run to stop.
    #[inline]
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Asks the run to stop, as a signal would.
    pub fn request(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }
}
