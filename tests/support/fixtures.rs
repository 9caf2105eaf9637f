//! The repository's own files: sample events and golden reports.

use std::path::{Path, PathBuf};

/// A path inside the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// The path of a bundled sample event, `events/<name>`.
pub fn event_path(name: &str) -> PathBuf {
    repo_path("events").join(name)
}

/// The bytes of a bundled sample event.
pub fn event_bytes(name: &str) -> Vec<u8> {
    let path = event_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A golden file, `tests/golden/<name>`, as JSON.
pub fn golden(name: &str) -> serde_json::Value {
    let path = repo_path("tests/golden").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Compares `actual` with a golden file; with `UPDATE_GOLDEN=1` rewrites the file instead.
pub fn check_golden(name: &str, actual: &serde_json::Value) {
    let path = repo_path("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return;
    }
    assert_eq!(actual, &golden(name), "golden file {name} differs");
}

/// A scratch folder on tmpfs when there is one (`/dev/shm`), so disk speed does not blur a
/// benchmark's figures.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}
