//! How the process uses memory: mimalloc's options, set by each binary at start and by
//! `summarize` for its run.

/// Keeps the process's resident memory close to what it uses; each binary calls it first
/// thing in `main`. Measured on `analyze` of 10,000 records (docs/benchmarks.md): peak RSS
/// 86 MB → 58 MB, at no measurable cost in time.
/// - Transparent huge pages off for this process (`PR_SET_THP_DISABLE`): mimalloc asks
///   for huge pages where the kernel allows them (`madvise` mode), and a few touched bytes
///   then make 2 MiB resident.
/// - mimalloc returns freed memory to the system at once (`purge_delay` 0) instead of
///   10 ms later: a batch's bodies are freed before its report is built, and the report
///   should reuse that memory, not add to it.
pub fn tune_allocator() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    purge_freed_memory_after(0);
}

/// How long mimalloc keeps memory freed before returning it to the system, in
/// milliseconds (`tune_allocator` makes it 0). A no-op with the `system-alloc` feature.
pub(crate) fn purge_freed_memory_after(ms: i64) {
    #[cfg(not(feature = "system-alloc"))]
    // SAFETY: setting an option is allowed at any time; both arguments are plain integers.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms as std::ffi::c_long)
    };
    #[cfg(feature = "system-alloc")]
    let _ = ms;
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (the same index in its v2 and v3),
/// which `libmimalloc-sys` does not name; a test checks it against the linked library.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(test)]
mod tests {
    /// mimalloc reads `MIMALLOC_PURGE_DELAY` into its purge-delay option: in a child
    /// process started with that variable, the option at [`super::MI_OPTION_PURGE_DELAY`]
    /// must hold the value. Fails if the linked mimalloc numbers its options differently.
    #[test]
    fn the_purge_delay_option_number_is_mimallocs() {
        const CHILD: &str = "DLQ_TRIAGE_MI_OPTION_CHILD";
        if std::env::var_os(CHILD).is_some() {
            // SAFETY: reading an option is allowed at any time; the index is a plain integer.
            let value = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
            assert_eq!(
                value,
                4321,
                "option {} is not purge_delay",
                super::MI_OPTION_PURGE_DELAY
            );
            return;
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "memory::tests::the_purge_delay_option_number_is_mimallocs",
            ])
            .env(CHILD, "1")
            .env("MIMALLOC_PURGE_DELAY", "4321")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the child's check failed");
    }
}
