//! What the benchmarks measure of a child process: wall time, CPU time and peak RSS.
//!
//! The peak is the child's own `VmHWM` (its resident high-water mark), read from
//! `/proc/<pid>/status` every 2 ms until it exits, the last reading kept. Not `wait4`'s
//! `ru_maxrss`: a child started by `posix_spawn` (vfork) inherits the parent's high-water
//! mark at `exec`, so a large parent (a bench holding a batch) inflates it.

use std::process::Command;
use std::time::{Duration, Instant};

/// What [`run_measured`] measured of a child process.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// From spawn to exit.
    pub wall: Duration,
    /// Peak RSS (`VmHWM`), KiB.
    pub peak_kib: u64,
    /// CPU time, user + system, from `wait4`: what the run cost, beside how long it took.
    pub cpu: Duration,
    /// Exit code, or -1 when killed by a signal.
    pub code: i32,
}

/// Runs `cmd` to completion and measures it. Linux.
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also returns its CPU time"
)]
pub fn run_measured(cmd: &mut Command) -> Measured {
    let started = Instant::now();
    let child = cmd.spawn().expect("spawn the measured command");
    let pid = child.id() as libc::pid_t;
    let status_file = format!("/proc/{pid}/status");
    let mut peak = 0;
    loop {
        if let Some(hwm) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| vm_hwm_kib(&s))
        {
            peak = peak.max(hwm);
        }
        let mut status = 0;
        // SAFETY: `rusage` is plain data that wait4 fills in; `pid` is our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: see above; WNOHANG returns at once.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            return Measured {
                wall: started.elapsed(),
                peak_kib: peak,
                cpu: cpu_time(&usage),
                code: if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    -1
                },
            };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// CPU time (user + system) of the calling thread so far. Linux.
pub fn thread_cpu() -> Duration {
    // SAFETY: `rusage` is plain data that getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(ok, 0, "getrusage: {}", std::io::Error::last_os_error());
    cpu_time(&usage)
}

/// User + system time of a `rusage`.
fn cpu_time(usage: &libc::rusage) -> Duration {
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// `VmHWM` of a `/proc/<pid>/status` text, in KiB.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The median of a set of figures.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A benchmark's setting: the environment variable `name` as a number, else `default`.
pub fn setting(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
