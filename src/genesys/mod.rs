//! Genesys Cloud: event shapes and (later) the API client.

pub mod event;
