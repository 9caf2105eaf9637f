//! The crate's HTTP clients start here, so every request says who sends it.

/// A client builder with the crate's User-Agent; callers add their own timeouts.
pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().user_agent(concat!("genesys-dlq-triage/", env!("CARGO_PKG_VERSION")))
}

/// The client of the Genesys Cloud calls (each of its requests sets its own timeout).
pub(crate) fn client() -> reqwest::Client {
    client_builder().build().unwrap_or_default()
}
