//! Genesys Cloud: where conversation ids live in events, regions, OAuth, and the
//! Analytics API client.

mod analytics;
mod auth;
pub(crate) mod conversation;
mod event;
mod integrations;
mod region;

pub use analytics::{AnalyticsClient, AnalyticsConfig, DETAILS_PATH, Lookup};
pub use auth::{AccessToken, AuthError, ClientCredentials, DEFAULT_MARGIN, Secret, TokenSource};
pub use event::{
    ConversationRefs, IdSource, TOPIC_FAMILIES, canonical_uuid, conversation_id, id_source,
    is_genesys_source,
};
pub use integrations::{
    EVENTBRIDGE_INTEGRATION, IntegrationConfig, IntegrationState, IntegrationsError,
    eventbridge_integration_configs, eventbridge_integrations,
};
pub use region::{
    Endpoints, REGIONS, RegionError, domain_for, redact_url, resolve as resolve_endpoints,
};
