//! `dlq-triage doctor`: the read-only pipeline audit ([`crate::doctor`]) on the command
//! line: findings most severe first as text or JSON, `doctor.json` and `doctor.html` with
//! `--out`, and an exit status that says whether events are being lost.

use std::path::PathBuf;
use std::time::Duration;

use super::{CliConfig, CommandFailure, Stdout};
use crate::doctor::{self, Scope};

/// `dlq-triage doctor [--bus NAME|--all] [--json] [--out DIR]`.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Audit the rules of this event bus (repeatable). Default: the Genesys Cloud partner
    /// buses (`aws.partner/genesys.com/…`) and the buses the integrations name.
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub bus: Vec<String>,
    /// Audit the rules of every event bus of the account and region.
    #[arg(long)]
    pub all: bool,
    /// JSON on standard output instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write doctor.json and doctor.html into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The triage function (name or ARN): check its bucket, table, bus and schedules too.
    #[arg(long, value_name = "NAME", env = "DLQ_TRIAGE_FUNCTION")]
    pub function: Option<String>,
    /// The longest wait for any one call, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub call_timeout_ms: u64,
}

/// Runs the audit; `Ok` holds the exit status (0 fine, 1 warnings, 2 events are being
/// lost).
pub async fn doctor(args: DoctorArgs, config: CliConfig) -> Result<u8, CommandFailure> {
    let timeout = Duration::from_millis(args.call_timeout_ms.max(1));
    // The audit bounds each call by `timeout` itself (with one line naming the call); the
    // SDK's own bound is a backstop behind it.
    let sdk = super::bounded_sdk(timeout, timeout * 2).await;
    let scope = Scope {
        buses: args.bus.clone(),
        all: args.all,
        function: args.function.clone(),
    };
    let audit = doctor::audit(&sdk, config.genesys.as_ref(), &scope, timeout).await;
    let json = serde_json::to_string_pretty(&audit).map_err(|e| e.to_string())?;
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--out {}: cannot create: {e}", dir.display()))?;
        let data = dir.join("doctor.json");
        std::fs::write(&data, format!("{json}\n"))
            .map_err(|e| format!("{}: cannot write: {e}", data.display()))?;
        let page = crate::page::render_doctor(&audit, "doctor.json");
        let html = dir.join("doctor.html");
        std::fs::write(&html, page)
            .map_err(|e| format!("{}: cannot write: {e}", html.display()))?;
    }
    let mut stdout = Stdout::new();
    if args.json {
        stdout.line(json);
    } else {
        stdout.line(audit.text().trim_end());
        if let Some(dir) = &args.out {
            stdout.line(format!(
                "Wrote {} and {}.",
                dir.join("doctor.json").display(),
                dir.join("doctor.html").display()
            ));
        }
    }
    Ok(audit.exit_status())
}

/// The default of `--call-timeout-ms`, as the library's.
const _: () = assert!(doctor::CALL_TIMEOUT.as_millis() == 5000);
