//! The local-filesystem [`ArtifactStore`] used by the CLI.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{Artifact, ArtifactStore, StoreError};

/// Writes artifacts below one folder. Each file is written to a temporary name and
/// renamed, so a reader never sees a half-written payload; [`ArtifactStore::sync`] then
/// makes every file durable at once (`syncfs` of the folder's file system on Linux, an
/// `fsync` per file and folder elsewhere) — one flush for a whole batch instead of one per
/// file. Writes are done in place, not handed to a thread per file: on the CLI's
/// single-threaded runtime a hand-off per file cost more than the write.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    /// Folders known to exist: each is created once, not once per file.
    folders: Arc<Mutex<HashSet<PathBuf>>>,
    /// Files written since the last sync (synced one by one where `syncfs` is missing).
    unsynced: Arc<Mutex<Vec<PathBuf>>>,
}

impl FsStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> FsStore {
        FsStore {
            root: root.into(),
            folders: Default::default(),
            unsynced: Default::default(),
        }
    }

    /// The path for a key; keys that could leave the folder are refused (defence in depth:
    /// [`super::Layout`] only builds safe keys).
    fn path_for(&self, key: &str) -> Result<PathBuf, StoreError> {
        let rel = Path::new(key);
        let safe = !key.is_empty()
            && !key.contains('\0')
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe {
            return Err(StoreError {
                key: key.escape_debug().to_string(),
                reason: "key would leave the output folder".into(),
            });
        }
        Ok(self.root.join(rel))
    }

    fn write(&self, path: &Path, body: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(parent) = path.parent() {
            let mut folders = self.folders.lock().unwrap_or_else(|e| e.into_inner());
            if !folders.contains(parent) {
                std::fs::create_dir_all(parent)?;
                folders.insert(parent.to_owned());
            }
        }
        // Unique per key: `report.json` and `report.md` must not share a temporary name.
        let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(".tmp~");
        let tmp = path.with_file_name(tmp_name);
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(body)?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        self.unsynced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.to_owned());
        Ok(())
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
    async fn put(&self, artifact: &Artifact) -> Result<(), StoreError> {
        let path = self.path_for(&artifact.key)?;
        self.write(&path, &artifact.body)
            .map_err(|reason| StoreError {
                key: artifact.key.clone(),
                reason: reason.to_string(),
            })
    }

    async fn sync(&self) -> Result<(), StoreError> {
        let files = std::mem::take(&mut *self.unsynced.lock().unwrap_or_else(|e| e.into_inner()));
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
