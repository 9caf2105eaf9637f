//! The local-filesystem [`ArtifactStore`] used by the CLI.

use std::path::{Component, Path, PathBuf};

use super::{Artifact, ArtifactStore, StoreError};

/// Writes artifacts below one folder. Each file is written to a temporary name, synced and
/// renamed, so a reader never sees a half-written payload.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    /// Folders known to exist: each is created once, not once per file.
    folders: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<PathBuf>>>,
}

impl FsStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> FsStore {
        FsStore {
            root: root.into(),
            folders: Default::default(),
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
}

impl ArtifactStore for FsStore {
    async fn put(&self, artifact: &Artifact) -> Result<(), StoreError> {
        let path = self.path_for(&artifact.key)?;
        let body = artifact.body.clone();
        let key = artifact.key.clone();
        let fail = |reason: std::io::Error| StoreError {
            key: key.clone(),
            reason: reason.to_string(),
        };
        let folders = self.folders.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            if let Some(parent) = path.parent() {
                let known = folders
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(parent);
                if !known {
                    std::fs::create_dir_all(parent)?;
                    folders
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(parent.to_owned());
                }
            }
            // Unique per key: `report.json` and `report.md` must not share a temporary name.
            let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
            tmp_name.push(".tmp~");
            let tmp = path.with_file_name(tmp_name);
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&body)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| fail(std::io::Error::other(e.to_string())))?
        .map_err(fail)
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
    async fn refuses_keys_that_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::new(dir.path().join("out"));
        for key in ["../x", "/etc/x", "a/../../x", "", "a\0b"] {
            assert!(store.put(&artifact(key)).await.is_err(), "{key:?}");
        }
        assert!(!dir.path().join("x").exists());
    }
}
