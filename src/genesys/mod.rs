//! Genesys Cloud: where conversation ids live in events, regions, OAuth, and the
//! Analytics API client.

pub mod analytics;
pub mod auth;
pub mod event;
pub mod region;
