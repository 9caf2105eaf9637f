//! What the benchmarks measure of a child process: wall time and peak RSS.
//!
//! The peak is the child's own `VmHWM` (its resident high-water mark), read from
//! `/proc/<pid>/status` every 2 ms until it exits, the last reading kept. Not `wait4`'s
//! `ru_maxrss`: a child started by `posix_spawn` (vfork) inherits the parent's high-water
//! mark at `exec`, so a large parent (a bench holding a batch) inflates it.

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `cmd` to completion; (wall time from spawn to exit, peak RSS in KiB, exit code or
/// -1 when killed by a signal). Linux.
pub fn run_measured(cmd: &mut Command) -> (Duration, u64, i32) {
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn the measured command");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Some(hwm) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| vm_hwm_kib(&s))
        {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().expect("wait for the measured command") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    (started.elapsed(), peak, status.code().unwrap_or(-1))
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
