//! An in-memory [`ArtifactStore`]: the test double for the pipeline, and the benchmark's
//! store. Keys can be set to fail, to exercise the no-loss rules.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;
use futures::future::BoxFuture;

use super::{Artifact, ArtifactStore, StoreError};

/// Keeps artifacts in a map.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    failing: Mutex<HashSet<String>>,
    fail_prefix: Mutex<Option<String>>,
    /// How many `sync` calls succeed before every later one fails (`None`: all succeed).
    syncs_before_failing: Mutex<Option<usize>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Makes writes to `key` fail.
    pub fn fail_key(&self, key: &str) {
        self.failing.lock().expect("lock").insert(key.to_owned());
    }

    /// Makes writes to every key starting with `prefix` fail.
    pub fn fail_prefix(&self, prefix: &str) {
        *self.fail_prefix.lock().expect("lock") = Some(prefix.to_owned());
    }

    /// Makes `sync` fail after `ok` successful calls (0: the first fails), as a disk that
    /// cannot flush would.
    pub fn fail_sync_after(&self, ok: usize) {
        *self.syncs_before_failing.lock().expect("lock") = Some(ok);
    }

    /// The stored bytes at `key`.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.objects.lock().expect("lock").get(key).cloned()
    }

    /// Every stored key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().expect("lock").keys().cloned().collect()
    }
}

impl ArtifactStore for MemoryStore {
    fn put<'a>(&'a self, artifact: &'a Artifact) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let refused = self.failing.lock().expect("lock").contains(&artifact.key)
                || self
                    .fail_prefix
                    .lock()
                    .expect("lock")
                    .as_deref()
                    .is_some_and(|p| artifact.key.starts_with(p));
            if refused {
                return Err(StoreError {
                    key: artifact.key.clone(),
                    reason: "refused by test".into(),
                });
            }
            self.objects
                .lock()
                .expect("lock")
                .insert(artifact.key.clone(), artifact.body.clone());
            Ok(())
        })
    }

    fn sync(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut left = self.syncs_before_failing.lock().expect("lock");
            match left.as_mut() {
                Some(0) => Err(StoreError {
                    key: "(sync)".into(),
                    reason: "flush refused by test".into(),
                }),
                Some(n) => {
                    *n -= 1;
                    Ok(())
                }
                None => Ok(()),
            }
        })
    }
}
