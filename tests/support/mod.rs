//! Shared test support: the Genesys Cloud simulator and helpers.
#![allow(dead_code)]

pub mod genesys_sim;
pub mod moto;

/// A dev tool from the project's venv (`make tools`), else from PATH.
pub fn venv_tool(name: &str) -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".venv-tools/bin")
        .join(name);
    if venv.exists() {
        venv
    } else {
        std::path::PathBuf::from(name)
    }
}
