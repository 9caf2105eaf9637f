//! Where artifacts go: the [`ArtifactStore`] port, the key layout of `docs/contract.md`, and safe
//! names for hostile message ids.

mod fs;
mod memory;
mod s3;

pub(crate) use fs::FsStore;
pub use memory::MemoryStore;
pub(crate) use s3::S3Store;
pub use s3::{path_style_from_env, s3_client};

use std::future::Future;

use futures::future::BoxFuture;

use bytes::Bytes;
use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::classify::FailureCategory;

/// One object to store: a replay payload or a report.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The key (S3) or path relative to the output folder (CLI), built by [`Layout`].
    pub key: String,
    /// The exact bytes.
    pub body: Bytes,
    /// `application/json` or `text/markdown; charset=utf-8`.
    pub content_type: &'static str,
    /// Object metadata (S3 user metadata); the filesystem store ignores it.
    pub metadata: Vec<(&'static str, String)>,
}

/// Why a write failed. The message never contains payload bytes or secrets.
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not store {key}: {reason}")]
pub struct StoreError {
    /// The key that failed.
    pub key: String,
    /// What went wrong.
    pub reason: String,
}

/// When a set of writes must be done by: the pipeline's deadline, less its safety margin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteWindow {
    /// No write starts after this (`None`: no limit).
    pub start_by: Option<Instant>,
    /// A write still running at this moment is a failed write (`None`: no limit).
    pub end_by: Option<Instant>,
}

impl WriteWindow {
    /// Whether a write may still start.
    pub fn open(&self) -> bool {
        self.start_by.is_none_or(|t| Instant::now() < t)
    }
}

/// Why one write of [`ArtifactStore::put_all`] did not store its artifact.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PutError {
    /// The window had closed before the write could start; nothing was tried.
    #[error("not started: the deadline was near")]
    NotStarted,
    /// The store refused or did not answer in time.
    #[error("{0}")]
    Failed(StoreError),
    /// The write panicked (a bug); only this artifact is affected.
    #[error("the write failed unexpectedly")]
    Panicked,
}

/// A durable place for artifacts. What `put` stored is durable once `sync` returns (for
/// S3, as soon as `put` returns); the pipeline syncs after the payloads and after the
/// report, before it acknowledges anything.
pub trait ArtifactStore: Send + Sync {
    /// Stores one artifact, overwriting an existing object at the same key.
    fn put<'a>(&'a self, artifact: &'a Artifact) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Stores many artifacts: `result[i]` says what became of `artifacts[i]`. Each write
    /// starts only while `window` is open, ends by its end, and a panic fails its own
    /// artifact only. The default runs `put` for up to `concurrency` artifacts at once (S3:
    /// the requests overlap); a store with a cheaper way to write many overrides it (the
    /// folder store hands the whole set to worker threads at once).
    fn put_all(
        &self,
        artifacts: Vec<Artifact>,
        window: WriteWindow,
        concurrency: usize,
    ) -> BoxFuture<'_, Vec<Result<(), PutError>>> {
        use futures::StreamExt;
        Box::pin(async move {
            let mut results: Vec<(usize, Result<(), PutError>)> =
                futures::stream::iter(0..artifacts.len())
                    .map(|i| put_one(self, i, &artifacts[i], window))
                    .buffer_unordered(concurrency.max(1))
                    .collect()
                    .await;
            results.sort_unstable_by_key(|(i, _)| *i);
            results.into_iter().map(|(_, r)| r).collect()
        })
    }

    /// Makes everything `put` so far durable. A store whose `put` is durable by itself
    /// (S3, memory) has nothing to do.
    fn sync(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
}

/// One write of the default [`ArtifactStore::put_all`].
async fn put_one<S: ArtifactStore + ?Sized>(
    store: &S,
    index: usize,
    artifact: &Artifact,
    window: WriteWindow,
) -> (usize, Result<(), PutError>) {
    use futures::FutureExt;
    if !window.open() {
        return (index, Err(PutError::NotStarted));
    }
    // `put` is called inside the guarded future: a store that panics before handing its
    // future back fails this artifact only, too.
    let put = async { bounded(window.end_by, &artifact.key, store.put(artifact)).await };
    let put = std::panic::AssertUnwindSafe(put).catch_unwind().await;
    let result = match put {
        Ok(r) => r.map_err(PutError::Failed),
        Err(_) => Err(PutError::Panicked),
    };
    (index, result)
}

/// Runs a store operation that must end by `end_by` (`None`: unbounded); one that does
/// not is a failed write, never a hung caller.
pub(crate) async fn bounded<F: Future<Output = Result<(), StoreError>>>(
    end_by: Option<Instant>,
    key: &str,
    op: F,
) -> Result<(), StoreError> {
    let Some(end_by) = end_by else {
        return op.await;
    };
    tokio::time::timeout_at(end_by, op)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError {
                key: key.to_owned(),
                reason: "timed out before the function's deadline".into(),
            })
        })
}

/// The key layout: the CLI's folder or the Lambda's S3 prefix (a **contract**: `docs/contract.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `replay/<CATEGORY>/<messageId>.json`, `report.json`, `report.md` (`analyze`).
    Local,
    /// `replay/<CATEGORY>/<messageId>.json`, `reports/<reportId>.json|.md`: a folder that
    /// holds many reports (`poll --out`, one report per page).
    LocalReports,
    /// `<prefix>replay/dt=YYYY-MM-DD/<CATEGORY>/<messageId>.json`,
    /// `<prefix>reports/dt=YYYY-MM-DD/<reportId>.json|.md`.
    Prefixed {
        /// The prefix, empty or ending in `/`.
        prefix: String,
    },
}

impl Layout {
    /// An S3 layout; a non-empty prefix gets a trailing `/` if it lacks one.
    pub fn prefixed(prefix: &str) -> Layout {
        let mut prefix = prefix.trim_start_matches('/').to_owned();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Layout::Prefixed { prefix }
    }

    /// The key of a record's replay payload. `file_stem` must come from [`safe_file_stem`].
    pub fn replay_key(
        &self,
        category: FailureCategory,
        date: NaiveDate,
        file_stem: &str,
    ) -> String {
        match self {
            Layout::Local | Layout::LocalReports => format!("replay/{category}/{file_stem}.json"),
            Layout::Prefixed { prefix } => {
                format!(
                    "{prefix}replay/dt={}/{category}/{file_stem}.json",
                    date.format("%Y-%m-%d")
                )
            }
        }
    }

    /// The keys of the report's JSON, Markdown and page.
    pub fn report_keys(&self, date: NaiveDate, report_id: &str) -> ReportKeys {
        let base = match self {
            Layout::Local => "report".to_owned(),
            Layout::LocalReports => format!("reports/{}", report_file_stem(report_id)),
            Layout::Prefixed { prefix } => format!(
                "{prefix}reports/dt={}/{}",
                date.format("%Y-%m-%d"),
                report_file_stem(report_id)
            ),
        };
        ReportKeys {
            json: format!("{base}.json"),
            markdown: format!("{base}.md"),
            html: Some(format!("{base}.html")),
        }
    }
}

/// Where a report is stored: its JSON (the record), its Markdown, and its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportKeys {
    /// `report.json`, the report of record.
    pub json: String,
    /// `report.md`.
    pub markdown: String,
    /// `report.html`; `None` when the page was not stored (it never holds a record back).
    pub html: Option<String>,
}

/// The longest message id used as a file name unchanged.
const MAX_PLAIN_LEN: usize = 128;
/// How much of a hostile id survives, sanitized, in front of its hash.
const MAX_SANITIZED_LEN: usize = 64;

/// A file name stem for a message id, built only from `[A-Za-z0-9._~-]`.
///
/// Ordinary ids (SQS ids are lower-case UUIDs) pass unchanged. Anything else — a slash,
/// `..`, NUL, a leading dot, an upper-case letter, over 128 characters — becomes a sanitized prefix plus `~` and 16 hex digits
/// of the id's SHA-256. Plain names never contain `~`, so a hashed name can never equal
/// another record's plain name; two hashed names collide only if SHA-256 prefixes do.
pub(crate) fn safe_file_stem(id: &str) -> String {
    // Upper case is not plain: on a case-insensitive disk (macOS, Windows) `Msg-A` and
    // `msg-a` would share one file. SQS message ids are lower-case UUIDs.
    stem(id, |b| b.is_ascii_lowercase())
}

/// The file stem of a report id. Report ids are ours (`20261128T100000.123Z-<unique>`,
/// unique by time), so upper case stays plain and the key is the id itself; anything
/// unusual is still sanitized and hashed like a message id.
fn report_file_stem(report_id: &str) -> String {
    stem(report_id, |b| b.is_ascii_alphabetic())
}

/// `id` unchanged when every letter passes `letter_ok` and it is otherwise plain, else a
/// sanitized prefix, `~` and a hash.
fn stem(id: &str, letter_ok: impl Fn(u8) -> bool) -> String {
    let plain = !id.is_empty()
        && id.len() <= MAX_PLAIN_LEN
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| letter_ok(b) || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        return id.to_owned();
    }
    let mut sanitized: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_SANITIZED_LEN)
        .collect();
    if sanitized.is_empty() {
        sanitized.push('_');
    }
    let digest = Sha256::digest(id.as_bytes());
    format!("{sanitized}~{}", hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn uuids_pass_unchanged() {
        let id = "5b0a1d2e-8f34-4c1e-9a77-0c2d9e6f1a10";
        assert_eq!(safe_file_stem(id), id);
    }

    #[test]
    fn hostile_ids_become_safe_distinct_names() {
        let long = "a".repeat(1000);
        let hostile = [
            "../../x",
            "..",
            ".",
            "/etc/passwd",
            "a/b",
            "a\\b",
            "a\0b",
            "",
            " ",
            ".hidden",
            long.as_str(),
            "a_b~0123456789abcdef",
        ];
        let mut seen = HashSet::new();
        for id in hostile {
            let stem = safe_file_stem(id);
            assert!(
                stem.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)),
                "{stem:?}"
            );
            assert!(!stem.starts_with('.'), "{stem:?}");
            assert!(stem.len() <= MAX_SANITIZED_LEN + 17, "{stem:?}");
            assert!(seen.insert(stem), "collision for {id:?}");
        }
    }

    #[test]
    fn report_keys_are_the_report_id_itself() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let id = "20261129T034800.549Z-9ea5d23a7b11";
        assert_eq!(
            Layout::prefixed("genesys-dlq/").report_keys(date, id).json,
            format!("genesys-dlq/reports/dt=2026-11-29/{id}.json")
        );
        assert_eq!(
            Layout::LocalReports.report_keys(date, id).markdown,
            format!("reports/{id}.md")
        );
        assert!(
            Layout::LocalReports
                .report_keys(date, "../x")
                .json
                .starts_with("reports/___x~")
        );
        assert_eq!(
            Layout::Local.report_keys(date, id).html.as_deref(),
            Some("report.html")
        );
    }

    #[test]
    fn ids_that_differ_only_in_case_get_names_that_differ_without_case() {
        let ids = ["msg-a", "Msg-A", "MSG-A", "mSg-a"];
        let stems: HashSet<String> = ids
            .iter()
            .map(|id| safe_file_stem(id).to_ascii_lowercase())
            .collect();
        assert_eq!(stems.len(), ids.len(), "{stems:?}");
    }

    #[test]
    fn a_sanitized_lookalike_never_collides_with_a_plain_id() {
        let hostile = safe_file_stem("a/b");
        // The exact name the hostile id produced, offered as an id itself.
        assert_ne!(safe_file_stem(&hostile), hostile);
        assert_ne!(safe_file_stem("a_b"), hostile);
    }

    #[test]
    fn layouts_follow_the_contract() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let cat = FailureCategory::RateLimitExceeded;
        assert_eq!(
            Layout::Local.replay_key(cat, date, "m1"),
            "replay/RATE_LIMIT_EXCEEDED/m1.json"
        );
        assert_eq!(
            Layout::prefixed("genesys-dlq").replay_key(cat, date, "m1"),
            "genesys-dlq/replay/dt=2026-11-28/RATE_LIMIT_EXCEEDED/m1.json"
        );
        assert_eq!(
            Layout::prefixed("genesys-dlq/").report_keys(date, "r1"),
            ReportKeys {
                json: "genesys-dlq/reports/dt=2026-11-28/r1.json".into(),
                markdown: "genesys-dlq/reports/dt=2026-11-28/r1.md".into(),
                html: Some("genesys-dlq/reports/dt=2026-11-28/r1.html".into()),
            }
        );
        assert_eq!(
            Layout::LocalReports.report_keys(date, "r1"),
            ReportKeys {
                json: "reports/r1.json".into(),
                markdown: "reports/r1.md".into(),
                html: Some("reports/r1.html".into()),
            }
        );
        assert_eq!(
            Layout::LocalReports.replay_key(cat, date, "m1"),
            "replay/RATE_LIMIT_EXCEEDED/m1.json"
        );
        assert_eq!(
            Layout::prefixed("").replay_key(cat, date, "m"),
            "replay/dt=2026-11-28/RATE_LIMIT_EXCEEDED/m.json"
        );
    }
}
