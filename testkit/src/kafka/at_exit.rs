//! At exit: process-wide brokers killed, registered directories removed.
use super::*;

static BROKERS: Mutex<Vec<&'static Kafka>> = Mutex::new(Vec::new());
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static REGISTER: std::sync::Once = std::sync::Once::new();

fn register() {
    REGISTER.call_once(|| {
        // SAFETY: registers a plain function with the C runtime.
        unsafe { libc::atexit(run) };
    });
}

pub(super) fn stop(kafka: &'static Kafka) {
    register();
    BROKERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(kafka);
    if kafka.temp.is_some() {
        remove(kafka.dir.clone());
    }
}

pub(super) fn remove(dir: PathBuf) {
    register();
    DIRS.lock().unwrap_or_else(|e| e.into_inner()).push(dir);
}

extern "C" fn run() {
    let brokers = std::mem::take(&mut *BROKERS.lock().unwrap_or_else(|e| e.into_inner()));
    for kafka in brokers {
        if let Some(pid) = kafka.pid() {
            // SAFETY: kill(2) and waitpid(2) on the broker this process
            // started and has not reaped.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
                libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
            }
        }
    }
    for dir in std::mem::take(&mut *DIRS.lock().unwrap_or_else(|e| e.into_inner())) {
        let _ = fs::remove_dir_all(dir);
    }
}
