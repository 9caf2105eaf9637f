//! The replay journal: one JSON line per record outcome, appended as each finishes, so a
//! run that stops half-way (Ctrl-C, a crash, the circuit breaker) can be run again and
//! send only what was not sent.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How one record ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// The destination accepted it.
    Sent,
    /// Every attempt failed.
    Failed,
    /// It could not be sent at all (no payload, a target kind we cannot deliver to, …).
    Skipped,
}

/// One line of the journal (a **contract**: these field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    /// The dead letter's SQS message id.
    pub message_id: String,
    /// The EventBridge event's `id`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub event_id: Option<String>,
    /// Whether `--edit` changed the payload (what was sent is in `replay-edits/`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub edited: bool,
    /// sha256 of the stored payload, when it was edited.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub original_sha256: Option<String>,
    /// sha256 of what was sent, when it was edited.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sent_sha256: Option<String>,
    /// Where it went (`url:…` with credentials redacted, `queue:…`, `function:…`,
    /// `bus:…`, `target:<targetArn>`).
    pub destination: String,
    /// The outcome.
    pub status: Status,
    /// The last HTTP status, when the destination spoke HTTP.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub http_status: Option<u16>,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// When it ended, RFC 3339 UTC.
    pub at: String,
}

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An earlier run's journal could not be read.
    #[error("cannot read the journal {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Its folder could not be created.
    #[error("cannot create {}: {error}", dir.display())]
    CreateDir { dir: PathBuf, error: std::io::Error },
    /// It could not be opened for appending.
    #[error("cannot open the journal {}: {error}", path.display())]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A line could not be read, or the cut-short line not ended.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// An entry could not be written as JSON.
    #[error("{0}")]
    Serialize(serde_json::Error),
    /// An entry could not be appended.
    #[error("cannot write the journal {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The lines could not be made durable.
    #[error("cannot sync the journal {}: {error}", path.display())]
    Sync {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Another task panicked while holding the journal.
    #[error("poisoned lock: another task failed inside")]
    Poisoned,
}

impl From<JournalError> for String {
    fn from(e: JournalError) -> String {
        e.to_string()
    }
}

/// An open journal.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    sent: HashSet<(String, String)>,
    /// (event id, destination) of every event sent.
    sent_events: HashSet<(String, String)>,
    unreadable_lines: usize,
}

impl Journal {
    /// Opens (creating) the journal at `path` and reads what earlier runs sent. A line
    /// that cannot be read (the last line of a run killed mid-write) is counted, not fatal.
    pub(crate) fn open(path: &Path) -> Result<Journal, JournalError> {
        let mut sent = HashSet::new();
        let mut sent_events = HashSet::new();
        let mut unreadable_lines = 0;
        match File::open(path) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(|e| JournalError::Io {
                        path: path.to_owned(),
                        error: e,
                    })?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Entry>(&line) {
                        Ok(e) if e.status == Status::Sent => {
                            if let Some(event) = e.event_id {
                                sent_events.insert((event, e.destination.clone()));
                            }
                            sent.insert((e.message_id, e.destination));
                        }
                        Ok(_) => {}
                        Err(_) => unreadable_lines += 1,
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(JournalError::Read {
                    path: path.to_owned(),
                    error,
                });
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| JournalError::CreateDir {
                dir: dir.to_owned(),
                error,
            })?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| JournalError::Open {
                path: path.to_owned(),
                error,
            })?;
        // A line cut short by a crash must not glue itself to the next entry.
        if unreadable_lines > 0 {
            file.write_all(b"\n").map_err(|error| JournalError::Io {
                path: path.to_owned(),
                error,
            })?;
        }
        Ok(Journal {
            path: path.to_owned(),
            file,
            sent,
            sent_events,
            unreadable_lines,
        })
    }

    /// Whether an earlier run sent this record to this destination.
    pub(crate) fn was_sent(&self, message_id: &str, destination: &str) -> bool {
        self.sent
            .contains(&(message_id.to_owned(), destination.to_owned()))
    }

    /// Whether an earlier run sent this event (under any message id) to this destination.
    pub(crate) fn event_was_sent(&self, event_id: &str, destination: &str) -> bool {
        self.sent_events
            .contains(&(event_id.to_owned(), destination.to_owned()))
    }

    /// How many records earlier runs sent.
    #[cfg(test)]
    fn sent_before(&self) -> usize {
        self.sent.len()
    }

    /// Lines of earlier runs that could not be read.
    pub(crate) fn unreadable_lines(&self) -> usize {
        self.unreadable_lines
    }

    /// Appends one outcome and flushes it to the file, so a crash after this returns
    /// cannot lose it.
    pub(crate) fn record(&mut self, entry: &Entry) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(entry).map_err(JournalError::Serialize)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.flush())
            .map_err(|error| JournalError::Write {
                path: self.path.clone(),
                error,
            })?;
        if entry.status == Status::Sent {
            if let Some(event) = &entry.event_id {
                self.sent_events
                    .insert((event.clone(), entry.destination.clone()));
            }
            self.sent
                .insert((entry.message_id.clone(), entry.destination.clone()));
        }
        Ok(())
    }

    /// Makes every line durable (once, at the end of a run).
    pub(crate) fn sync(&self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(|error| JournalError::Sync {
            path: self.path.clone(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, status: Status) -> Entry {
        Entry {
            message_id: id.into(),
            event_id: None,
            edited: false,
            original_sha256: None,
            sent_sha256: None,
            destination: "url:http://127.0.0.1/x".into(),
            status,
            http_status: Some(200),
            error: None,
            attempts: 1,
            at: "2026-11-29T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_reopened_journal_knows_what_was_sent_and_only_that() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.record(&entry("m1", Status::Sent)).unwrap();
        j.record(&entry("m2", Status::Failed)).unwrap();
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert!(j.was_sent("m1", "url:http://127.0.0.1/x"));
        assert!(!j.was_sent("m2", "url:http://127.0.0.1/x"));
        assert!(!j.was_sent("m1", "queue:other"));
        assert_eq!(j.sent_before(), 1);
    }

    #[test]
    fn the_lines_carry_the_contract_fields() {
        let line = serde_json::to_value(entry("m1", Status::Sent)).unwrap();
        for field in [
            "messageId",
            "destination",
            "status",
            "httpStatus",
            "attempts",
            "at",
        ] {
            assert!(line.get(field).is_some(), "{field}: {line}");
        }
        assert_eq!(line["status"], "sent");
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_counted_and_the_next_entry_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut j = Journal::open(&path).unwrap();
        j.record(&entry("m1", Status::Sent)).unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"messageId":"m2","dest"#).unwrap();
        drop(f);
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.unreadable_lines(), 1);
        j.record(&entry("m3", Status::Sent)).unwrap();
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert!(j.was_sent("m1", "url:http://127.0.0.1/x"));
        assert!(j.was_sent("m3", "url:http://127.0.0.1/x"));
        assert_eq!(j.unreadable_lines(), 1);
    }

    #[test]
    fn a_journal_that_cannot_be_opened_says_which_and_why() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the journal should be: it opens, but its lines cannot be read.
        let e = Journal::open(dir.path()).unwrap_err();
        assert!(
            matches!(&e, JournalError::Io { path, error } if path == dir.path() && error.kind() == std::io::ErrorKind::IsADirectory),
            "{e:?}"
        );
        assert!(
            e.to_string().contains(&dir.path().display().to_string()),
            "{e}"
        );
        assert_eq!(crate::aws_error::said_twice(&e), Vec::<String>::new());
    }
}
