//! What the benchmarks measure of a child process: wall time and peak RSS.

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `cmd` to completion; (wall time from spawn to exit, peak RSS in KiB from
/// `wait4`'s `ru_maxrss`, exit status). Linux.
pub fn run_measured(cmd: &mut Command) -> (Duration, u64, i32) {
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn the measured command");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `usage` is a plain C struct that wait4 fills; `pid` is our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4");
    let elapsed = started.elapsed();
    let _ = child.try_wait();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (elapsed, usage.ru_maxrss as u64, code)
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
