//! Phase timings for profiling: with `ORRERY_TIMINGS=1` in the environment each phase prints
//! its wall time to standard error (`orrery: timing <phase> <ms> ms`). Off by default.

use std::sync::OnceLock;
use std::time::Instant;

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("ORRERY_TIMINGS").is_some_and(|v| !v.is_empty() && v != "0"))
}

/// Times one phase until it is dropped.
pub struct Phase {
    name: &'static str,
    start: Option<Instant>,
}

/// Starts timing `name`; the time is printed when the returned guard drops.
pub fn phase(name: &'static str) -> Phase {
    Phase { name, start: enabled().then(Instant::now) }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let Some(start) = self.start {
            eprintln!("orrery: timing {} {:.1} ms", self.name, start.elapsed().as_secs_f64() * 1e3);
        }
    }
}
