//! `dlq-triage analyze`: a saved batch into a local folder.

use std::path::PathBuf;

use super::{CliConfig, CliCorrelation, Stdout};
use crate::dlq::parse_batch;
use crate::report::{JsonBuffer, ReplaySource, Report, headline};
use crate::store::{FsStore, Layout};
use crate::triage::{self, TriageOptions};

/// `dlq-triage analyze [--out DIR] [--no-correlate] FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct AnalyzeArgs {
    /// Folder for report.json, report.md and replay/<CATEGORY>/<messageId>.json.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Do not look conversations up in Genesys Cloud.
    #[arg(long)]
    pub no_correlate: bool,
    /// The batch file, or `-` for standard input.
    pub file: String,
}

/// Analyses a saved batch: a Lambda SQS event (`{"Records": [...]}`) or
/// `aws sqs receive-message` output (`{"Messages": [...]}`).
///
/// Meant to be the last thing the process does: a successful run leaves the batch's
/// records and report to the process's exit, which returns their memory whole.
pub async fn analyze(args: AnalyzeArgs, config: CliConfig) -> Result<(), String> {
    // A core is idle while the batch is read: the classifier's patterns compile there.
    let mut spare = SpareWork::default();
    spare.run(crate::classify::prepare);
    // Read whole, then parsed from memory: serde_json reads a slice several times faster
    // than a stream. Once the records own their bodies, the text's memory holds the report.
    let text = if args.file == "-" {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut text).map(|_| text)
    } else {
        read_file(&args.file)
    }
    .map_err(|e| format!("cannot read {}: {e}", display_name(&args.file)))?;
    let mut letters =
        parse_batch(&text).map_err(|e| format!("{}: {e}", display_name(&args.file)))?;
    // The text's memory (~23 MB for 10,000 records), already in place, becomes the report's
    // JSON (~14 MB) instead of being freed while as much is allocated and touched afresh.
    let json = JsonBuffer::reuse(text, letters.len());
    let out_display = args.out.display().to_string();
    let store = FsStore::new(&args.out);
    let opts = TriageOptions::new(Layout::Local, ReplaySource::Folder(out_display.clone()));
    let correlation = CliCorrelation::new(&config, args.no_correlate);
    let outcome = Box::pin(triage::run_taking_bodies_into(
        &mut letters,
        json,
        &store,
        &correlation,
        &opts,
    ))
    .await;
    if let Some(e) = outcome.batch_error {
        return Err(e.to_string());
    }
    let mut stdout = Stdout::new();
    print_summary(
        &mut stdout,
        &outcome.report,
        &out_display,
        outcome.returned.len(),
    );
    if let Some(calls) = correlation.calls() {
        let statuses: Vec<String> = outcome
            .report
            .summary
            .by_interaction_status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        stdout.line(format_args!(
            "genesys: {calls} API calls; conversations: {}",
            statuses.join(", ")
        ));
    }
    // Freeing 10,000 records and their report one allocation at a time takes longer than
    // the rest of the exit (about 10 ms): the process is about to end, so leave them.
    std::mem::forget((letters, outcome));
    Ok(())
}

fn print_summary(stdout: &mut Stdout, report: &Report, out: &str, not_stored: usize) {
    stdout.line(headline(report).replace("**", "").replace('`', ""));
    stdout.line(format_args!("records: {}", report.total_failures));
    for (category, count) in &report.summary.by_category {
        stdout.line(format_args!("  {category:<24} {count}"));
    }
    if not_stored > 0 {
        stdout.line(format_args!(
            "not stored: {not_stored} (see disposition in report.json)"
        ));
    }
    stdout.line(format_args!("report: {out}/report.md"));
    stdout.line(format_args!("json:   {out}/report.json"));
    stdout.line(format_args!("replay: {out}/replay/"));
}

/// Work handed to threads of its own, each joined before `analyze` returns (at the latest
/// when this is dropped), so none outlives the command. Work whose thread cannot be
/// started is dropped undone, so only work that may be skipped (a warm-up) or that
/// dropping does anyway (freeing) belongs here.
#[derive(Default)]
struct SpareWork(Vec<std::thread::JoinHandle<()>>);

impl SpareWork {
    fn run(&mut self, work: impl FnOnce() + Send + 'static) {
        if let Ok(handle) = std::thread::Builder::new().name("spare".into()).spawn(work) {
            self.0.push(handle);
        }
    }
}

impl Drop for SpareWork {
    fn drop(&mut self) {
        for handle in self.0.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Below this size a file is read by one thread.
const READ_IN_HALVES_FROM: u64 = 4 << 20;

/// The whole of a file. A large regular file is read in two halves at once, one on a
/// thread of its own: much of a read's time is faulting in the pages it lands in (23 MB for
/// 10,000 records), which then happens on both cores. What is appended meanwhile is read
/// after the halves; a file that shrinks meanwhile (or a half that cannot be read) is read
/// again from the start, in one go.
fn read_file(path: &str) -> std::io::Result<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::io::{Read, Seek};
        use std::os::unix::fs::FileExt;
        let mut file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        // 0 when the size does not fit in memory's address space: read the plain way.
        let len = usize::try_from(meta.len()).unwrap_or(0);
        if !meta.is_file() || meta.len() < READ_IN_HALVES_FROM || len == 0 {
            let mut text = Vec::new();
            file.read_to_end(&mut text)?;
            return Ok(text);
        }
        let mut text = vec![0u8; len];
        let half = len / 2;
        let (first, second) = text.split_at_mut(half);
        let file_ref = &file;
        let (a, b) = std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("read".into())
                .spawn_scoped(scope, move || file_ref.read_exact_at(second, half as u64));
            let a = file_ref.read_exact_at(first, 0);
            let b = match other {
                Ok(other) => other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(_) => Err(std::io::ErrorKind::Other.into()),
            };
            (a, b)
        });
        if a.is_ok() && b.is_ok() {
            // Whatever was appended since the size was taken.
            file.seek(std::io::SeekFrom::Start(len as u64))?;
            file.read_to_end(&mut text)?;
            return Ok(text);
        }
    }
    std::fs::read(path)
}

fn display_name(file: &str) -> &str {
    if file == "-" { "standard input" } else { file }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ from one position to the next, so that a half read into the
    /// wrong place, or twice, shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn a_large_file_read_in_halves_is_the_file_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            READ_IN_HALVES_FROM as usize,
            READ_IN_HALVES_FROM as usize + 1,
            5 * 1024 * 1024 + 3,
        ] {
            let path = dir.path().join(format!("batch-{len}.json"));
            let bytes = pattern(len);
            std::fs::write(&path, &bytes).unwrap();
            let read = read_file(path.to_str().unwrap()).unwrap();
            assert_eq!(read.len(), len);
            assert!(read == bytes, "{len} bytes read back differently");
        }
    }

    #[test]
    fn small_empty_and_missing_files_read_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.json");
        std::fs::write(&small, b"{\"Records\": []}").unwrap();
        assert_eq!(
            read_file(small.to_str().unwrap()).unwrap(),
            b"{\"Records\": []}"
        );
        let empty = dir.path().join("empty.json");
        std::fs::write(&empty, b"").unwrap();
        assert!(read_file(empty.to_str().unwrap()).unwrap().is_empty());
        let missing = dir.path().join("missing.json");
        let e = read_file(missing.to_str().unwrap()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
