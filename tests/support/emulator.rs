//! cargo-lambda's Runtime API emulator (`cargo lambda watch --only-lambda-apis`) with a
//! built function binary polling it, both killed on drop: the Lambda exactly as the
//! runtime drives it, for the end-to-end test and the memory benchmark.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The emulator and the function process.
pub struct Emulator {
    watch: Child,
    function: Child,
    port: u16,
    /// Everything the function wrote to standard output and error.
    log: tempfile::NamedTempFile,
}

impl Emulator {
    /// Starts the emulator on a free port and `binary` against it, with `env` (the
    /// function's environment is cleared first: only the runtime's variables and these).
    pub async fn start(binary: &Path, env: &[(&str, String)]) -> Emulator {
        let port = super::net::free_port();
        let watch = Command::new(super::venv_tool("cargo-lambda"))
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(super::fixtures::repo_path(""))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo lambda (run `make tools`)");
        // Await the emulator's port (never probe it over HTTP: unknown paths invoke the function).
        super::net::wait_for_port(port, Duration::from_secs(60), "cargo lambda watch").await;
        let mut function = Command::new(binary);
        function
            .env_clear()
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .stdin(Stdio::null());
        let log = tempfile::NamedTempFile::new().unwrap();
        function
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap());
        for (k, v) in env {
            function.env(k, v);
        }
        let function = function.spawn().unwrap();
        Emulator {
            watch,
            function,
            port,
            log,
        }
    }

    /// The function's output so far.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.log.path()).unwrap()).into_owned()
    }

    /// Where to POST an event (as `cargo lambda invoke` does).
    pub fn invocations_url(&self) -> String {
        // Under --only-lambda-apis the emulator serves the function as `_`.
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        )
    }

    /// The function process's id.
    pub fn function_pid(&self) -> u32 {
        self.function.id()
    }

    /// The function's peak resident memory so far, in KiB (`VmHWM`; Linux).
    pub fn function_peak_rss_kib(&self) -> Option<u64> {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.function.id())).ok()?;
        super::measure::vm_hwm_kib(&status)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Under --only-lambda-apis the emulator starts no function of its own, so killing
        // the two processes started here leaves nothing behind.
        let _ = self.function.kill();
        let _ = self.function.wait();
        let _ = self.watch.kill();
        let _ = self.watch.wait();
    }
}
