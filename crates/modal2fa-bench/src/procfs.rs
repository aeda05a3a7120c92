//! Readers of `/proc`: the server's CPU time, RSS and page faults, and the calling
//! thread's CPU time. Each reads the kernel's own accounting, so the figures survive a
//! noisy machine; an unreadable or malformed file reads as zero.

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 if that fails), the unit of
/// the times in `/proc/<pid>/stat`.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Minor page faults of a process so far (`/proc/<pid>/stat`, field 10).
pub fn minor_faults(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    after
        .split_whitespace()
        .nth(7)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time of a process so far, in seconds (`/proc/<pid>/stat`, fields
/// 14 and 15, in `ticks` per second).
pub fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let stime: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (utime + stime) / ticks
}

/// The whole machine's idle and stolen CPU time so far, in seconds (the `idle`, `iowait`
/// and `steal` fields of the first line of `/proc/stat`, in `ticks` per second): what no
/// process here ran on, and what the hypervisor gave to other guests.
pub fn machine_idle_and_steal(ticks: f64) -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
    ((at(3) + at(4)) / ticks, at(7) / ticks)
}

/// The resident set size of a process, in MiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// CPU time of the calling thread, in seconds (`/proc/thread-self/schedstat`, nanoseconds):
/// the same accounting as the server's figures, and blind to time the thread waits for a
/// core.
pub fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}
