//! Phase timings for profiling: with `ORRERY_TIMINGS=1` in the environment each phase prints
//! its wall and CPU time to standard error (`orrery: timing <phase> <ms> ms (cpu <ms> ms)`), and the process' peak
//! resident memory so far where Linux tells it (`peak 212 MB`). Off by default.

use std::sync::OnceLock;
use std::time::Instant;

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("ORRERY_TIMINGS").is_some_and(|v| !v.is_empty() && v != "0"))
}

/// Times one phase until it is dropped.
pub struct Phase {
    name: &'static str,
    start: Option<(Instant, u64)>,
}

/// Starts timing `name`; the time is printed when the returned guard drops.
pub fn phase(name: &'static str) -> Phase {
    Phase { name, start: enabled().then(|| (Instant::now(), cpu_ns())) }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let Some((start, cpu)) = self.start {
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let cpu_ms = cpu_ns().saturating_sub(cpu) as f64 / 1e6;
            match peak_rss_mb() {
                Some(mb) => eprintln!("orrery: timing {} {ms:.1} ms (cpu {cpu_ms:.0} ms), peak {mb} MB", self.name),
                None => eprintln!("orrery: timing {} {ms:.1} ms (cpu {cpu_ms:.0} ms)", self.name),
            }
        }
    }
}

/// CPU time so far of all the process' threads, in nanoseconds (the first field of each
/// thread's /proc/self/task/*/schedstat); 0 where Linux does not tell it. Threads that have
/// ended are not counted, which the rayon pool's long-lived workers make no matter.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The peak resident set size so far (`VmHWM` of /proc/self/status), in MB.
fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}
