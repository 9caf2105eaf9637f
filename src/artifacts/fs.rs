//! The local-filesystem [`ArtifactStore`] used by the CLI.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::{Artifact, ArtifactStore, PutError, StoreError, WriteWindow};

/// Writes artifacts below one folder. A report, or a payload replacing an older file, is
/// written to a temporary name and renamed, so a reader never sees half of one; a new
/// payload is created in place (no report can name it yet). [`ArtifactStore::sync`] then
/// makes every file durable at once (`syncfs` of the folder's file system on Linux, an
/// `fsync` per file and folder elsewhere) — one flush for a whole batch instead of one per
/// file. A batch of payloads ([`ArtifactStore::put_all`]) goes to worker threads in one
/// hand-off; a single `put` is written on the caller's thread.
#[derive(Debug, Clone)]
pub(crate) struct FsStore {
    root: PathBuf,
    /// Folders known to exist: each is created once, not once per file.
    folders: Arc<Mutex<HashSet<PathBuf>>>,
    /// Files written since the last sync (synced one by one where `syncfs` is missing).
    unsynced: Arc<Mutex<Vec<PathBuf>>>,
}

impl FsStore {
    /// A store rooted at `root` (created on first write).
    pub(crate) fn new(root: impl Into<PathBuf>) -> FsStore {
        FsStore {
            root: root.into(),
            folders: Default::default(),
            unsynced: Default::default(),
        }
    }

    /// The path for a key; keys that could leave the folder are refused (defence in depth:
    /// [`super::Layout`] only builds safe keys).
    fn path_for(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    /// Creates `path`'s folder unless this store already did.
    fn ensure_parent(&self, path: &Path) -> std::io::Result<()> {
        match path.parent() {
            Some(parent) => self.ensure_dir(parent),
            None => Ok(()),
        }
    }

    /// Creates the folder `dir` unless this store already did.
    fn ensure_dir(&self, dir: &Path) -> std::io::Result<()> {
        let mut folders = self.folders.lock().unwrap_or_else(|e| e.into_inner());
        if !folders.contains(dir) {
            std::fs::create_dir_all(dir)?;
            folders.insert(dir.to_owned());
        }
        Ok(())
    }

    fn write(&self, path: &Path, body: &[u8]) -> std::io::Result<()> {
        self.ensure_parent(path)?;
        self.write_file(path, body)?;
        self.unsynced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.to_owned());
        Ok(())
    }

    /// Writes one file whose folder exists: to a temporary name, then renamed over `path`,
    /// so a reader sees the old file or the new one, never half of one.
    fn write_file(&self, path: &Path, body: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        // Unique per key: `report.json` and `report.md` must not share a temporary name.
        let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(".tmp~");
        let tmp = path.with_file_name(tmp_name);
        let mut file = std::fs::File::create(&tmp)?;
        let written = file.write_all(body);
        drop(file);
        // A write or rename that fails leaves no temporary file behind.
        written
            .and_then(|()| std::fs::rename(&tmp, path))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&tmp);
            })
    }

    /// Writes a payload: created in place when no file has that name yet (one system call
    /// fewer than [`Self::write_file`]), else through a temporary name. Safe because a
    /// payload is only ever read through a report, and every report is written after its
    /// payloads: no report can name a file that did not exist before this write, so a
    /// half-written new file is never reachable. One that fails half-way is removed.
    fn write_payload(&self, path: &Path, body: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let mut file = match std::fs::File::create_new(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return self.write_file(path, body);
            }
            Err(e) => return Err(e),
        };
        file.write_all(body).inspect_err(|_| {
            let _ = std::fs::remove_file(path);
        })
    }

    /// [`ArtifactStore::put_all`] on `workers` threads, each writing a contiguous share of
    /// the artifacts; each body is released as soon as it is written.
    fn write_many(
        &self,
        artifacts: Vec<Artifact>,
        start_by: Option<std::time::Instant>,
        workers: usize,
    ) -> Vec<Result<(), PutError>> {
        let share = artifacts.len().div_ceil(workers.max(1)).max(1);
        let mut shares: Vec<Vec<Artifact>> = Vec::new();
        let mut artifacts = artifacts.into_iter().peekable();
        while artifacts.peek().is_some() {
            shares.push(artifacts.by_ref().take(share).collect());
        }
        let results: Vec<Vec<Result<(), PutError>>> = std::thread::scope(|scope| {
            let threads: Vec<_> = shares
                .into_iter()
                .map(|share| {
                    let count = share.len();
                    (
                        count,
                        scope.spawn(move || self.write_share(share, start_by)),
                    )
                })
                .collect();
            threads
                .into_iter()
                .map(|(count, thread)| {
                    // `write_share` catches the panic of any write, so this is not expected.
                    thread
                        .join()
                        .unwrap_or_else(|_| vec![Err(PutError::Panicked); count])
                })
                .collect()
        });
        results.into_iter().flatten().collect()
    }

    /// Writes `artifacts` one after the other on this thread: a result each, in order.
    fn write_share(
        &self,
        artifacts: Vec<Artifact>,
        start_by: Option<std::time::Instant>,
    ) -> Vec<Result<(), PutError>> {
        let mut written = Vec::with_capacity(artifacts.len());
        let results = artifacts
            .into_iter()
            .map(|artifact| {
                if start_by.is_some_and(|t| std::time::Instant::now() >= t) {
                    return Err(PutError::NotStarted);
                }
                let path = self.path_for(&artifact.key).map_err(PutError::Failed)?;
                let write = std::panic::AssertUnwindSafe(|| {
                    self.ensure_parent(&path)?;
                    self.write_payload(&path, &artifact.body)
                });
                match std::panic::catch_unwind(write) {
                    Ok(Ok(())) => {
                        written.push(path);
                        Ok(())
                    }
                    Ok(Err(e)) => Err(PutError::Failed(StoreError {
                        key: artifact.key,
                        reason: e.to_string(),
                    })),
                    Err(_) => Err(PutError::Panicked),
                }
                // `artifact.body` is dropped here: written, it is no longer needed.
            })
            .collect();
        self.unsynced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(written);
        results
    }
}

/// Refuses a key that could leave the store's folder.
fn check_key(key: &str) -> Result<(), StoreError> {
    let safe = !key.is_empty()
        && !key.contains('\0')
        && Path::new(key)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if safe {
        Ok(())
    } else {
        Err(StoreError {
            key: key.escape_debug().to_string(),
            reason: "key would leave the output folder".into(),
        })
    }
}

/// Flushes the file system holding `root` to stable storage.
#[cfg(target_os = "linux")]
fn sync_all(root: &Path, _files: &[PathBuf]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(root)?;
    // SAFETY: `dir` is an open descriptor for the duration of the call.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Flushes each file written, then each folder holding one (their new names).
#[cfg(not(target_os = "linux"))]
fn sync_all(_root: &Path, files: &[PathBuf]) -> std::io::Result<()> {
    let mut folders = HashSet::new();
    for file in files {
        std::fs::File::open(file)?.sync_all()?;
        if let Some(parent) = file.parent() {
            folders.insert(parent.to_owned());
        }
    }
    for folder in folders {
        // Directories cannot be opened for syncing everywhere; a failure here is not fatal.
        if let Ok(dir) = std::fs::File::open(&folder) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

impl ArtifactStore for FsStore {
    fn put<'a>(&'a self, artifact: &'a Artifact) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let path = self.path_for(&artifact.key)?;
            self.write(&path, &artifact.body)
                .map_err(|reason| StoreError {
                    key: artifact.key.clone(),
                    reason: reason.to_string(),
                })
        })
    }

    /// Writes the set on worker threads (one per core, at most four), in one hand-off from
    /// the async runtime instead of one per file. Each write starts only while the window
    /// is open; its end is not enforced, as a local write cannot be abandoned half-way
    /// (the CLI runs without a deadline).
    fn put_all(
        &self,
        artifacts: Vec<Artifact>,
        window: WriteWindow,
        _concurrency: usize,
    ) -> BoxFuture<'_, Vec<Result<(), PutError>>> {
        Box::pin(async move {
            let count = artifacts.len();
            let store = self.clone();
            let start_by = window.start_by.map(|t| t.into_std());
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
            tokio::task::spawn_blocking(move || store.write_many(artifacts, start_by, workers))
                .await
                .unwrap_or_else(|_| vec![Err(PutError::Panicked); count])
        })
    }

    fn sync(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let files =
                std::mem::take(&mut *self.unsynced.lock().unwrap_or_else(|e| e.into_inner()));
            if files.is_empty() {
                return Ok(());
            }
            let root = self.root.clone();
            let count = files.len();
            tokio::task::spawn_blocking(move || sync_all(&root, &files))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r)
                .map_err(|e| StoreError {
                    key: format!("{count} files below {}", self.root.display()),
                    reason: format!("could not be flushed to disk: {e}"),
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn artifact(key: &str) -> Artifact {
        Artifact {
            key: key.to_owned(),
            body: Bytes::from_static(b"{\"a\": 1}\n"),
            content_type: "application/json",
            metadata: vec![],
        }
    }

    #[tokio::test]
    async fn writes_exact_bytes_below_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path());
        store.put(&artifact("replay/X/m.json")).await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("replay/X/m.json")).unwrap(),
            b"{\"a\": 1}\n"
        );
    }

    #[tokio::test]
    async fn sync_flushes_what_was_written_and_says_when_it_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path().join("out"));
        for i in 0..3 {
            store
                .put(&artifact(&format!("replay/X/m{i}.json")))
                .await
                .unwrap();
        }
        store.sync().await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("out/replay/X"))
                .unwrap()
                .count(),
            3
        );
        assert!(
            std::fs::read_dir(dir.path().join("out/replay/X"))
                .unwrap()
                .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp~")),
            "no temporary file is left"
        );
        // The folder vanished under it: the flush fails rather than claim durability.
        store.put(&artifact("replay/X/late.json")).await.unwrap();
        std::fs::remove_dir_all(dir.path().join("out")).unwrap();
        assert!(store.sync().await.is_err());
    }

    fn payload(key: &str, body: String) -> Artifact {
        Artifact {
            key: key.to_owned(),
            body: Bytes::from(body),
            content_type: "application/json",
            metadata: vec![],
        }
    }

    #[tokio::test]
    async fn put_all_writes_every_file_exactly_and_fails_only_what_it_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let store = FsStore::new(&root);
        // An older payload of the same key is replaced whole, through a temporary name.
        std::fs::create_dir_all(root.join("replay/A")).unwrap();
        std::fs::write(
            root.join("replay/A/m6.json"),
            "old and longer than the new body",
        )
        .unwrap();
        // A folder where a file must go: that one write fails, the others do not.
        std::fs::create_dir_all(root.join("replay/B/m4.json")).unwrap();
        let mut artifacts: Vec<Artifact> = (0..300)
            .map(|i| {
                let folder = ["A", "B", "C"][i % 3];
                payload(
                    &format!("replay/{folder}/m{i}.json"),
                    format!("{{\"n\":{i}}}"),
                )
            })
            .collect();
        artifacts.push(payload("../escape.json", "x".into()));
        let results = store.put_all(artifacts, WriteWindow::default(), 16).await;
        assert_eq!(results.len(), 301);
        for (i, result) in results.iter().enumerate().take(300) {
            let path = root.join(format!("replay/{}/m{i}.json", ["A", "B", "C"][i % 3]));
            if i == 4 {
                assert!(matches!(result, Err(PutError::Failed(_))), "{result:?}");
            } else {
                assert!(result.is_ok(), "{i}: {result:?}");
                assert_eq!(
                    std::fs::read_to_string(path).unwrap(),
                    format!("{{\"n\":{i}}}")
                );
            }
        }
        assert!(matches!(&results[300], Err(PutError::Failed(e)) if e.key == "../escape.json"));
        assert!(!dir.path().join("escape.json").exists());
        for folder in ["A", "B", "C"] {
            for entry in std::fs::read_dir(root.join("replay").join(folder)).unwrap() {
                let name = entry.unwrap().file_name();
                assert!(
                    !name.to_string_lossy().ends_with(".tmp~"),
                    "{name:?} left behind"
                );
            }
        }
        // What was written is what `sync` flushes.
        assert_eq!(store.unsynced.lock().unwrap().len(), 299);
        store.sync().await.unwrap();
    }

    #[tokio::test]
    async fn put_all_starts_nothing_once_the_window_has_closed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path());
        let window = WriteWindow {
            start_by: Some(tokio::time::Instant::now()),
            end_by: None,
        };
        let results = store
            .put_all(vec![payload("replay/A/m.json", "{}".into())], window, 1)
            .await;
        assert!(
            matches!(results[..], [Err(PutError::NotStarted)]),
            "{results:?}"
        );
        assert!(!dir.path().join("replay/A/m.json").exists());
    }

    #[tokio::test]
    async fn refuses_keys_that_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path().join("out"));
        for key in ["../x", "/etc/x", "a/../../x", "", "a\0b"] {
            assert!(store.put(&artifact(key)).await.is_err(), "{key:?}");
        }
        assert!(!dir.path().join("x").exists());
    }
}
