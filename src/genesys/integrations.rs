//! The Genesys Cloud side of the integration: the reported state of the org's Amazon
//! EventBridge Source integrations (`GET /api/v2/integrations`, type
//! `amazon-eventbridge-source`). An integration in `ERROR` sends no event at all, so no
//! dead letter can show it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::auth::AuthError;
use super::{Endpoints, TokenSource};

/// The integration type Genesys Cloud gives the Amazon EventBridge Source.
pub const EVENTBRIDGE_INTEGRATION: &str = "amazon-eventbridge-source";

/// One Amazon EventBridge Source integration as Genesys Cloud reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationState {
    /// Its name in Genesys Cloud.
    pub name: String,
    /// `eventSourceSuffix`: the last part of the partner event source's name.
    pub event_source_suffix: Option<String>,
    /// `reportedState.code`: `ACTIVE`, `ACTIVATING`, `INACTIVE`, `DEACTIVATING` or `ERROR`.
    pub code: String,
    /// `reportedState.detail.message`, when Genesys Cloud gives one.
    pub detail: Option<String>,
    /// `reportedState.lastUpdated`.
    pub last_updated: Option<String>,
    /// `awsAccountId`: the AWS account its partner event source is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_account_id: Option<String>,
    /// `awsAccountRegion`: the region its partner event source is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_region: Option<String>,
    /// Whether it feeds one of the rules' partner buses (its suffix, account and region
    /// match the bus's): only then does its state explain missing events.
    #[serde(default)]
    pub feeds_rules: bool,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    entities: Vec<serde_json::Value>,
    #[serde(rename = "nextUri", default)]
    next_uri: Option<String>,
}

/// Why the integrations could not be read: one line naming the call, never the token.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationsError {
    /// No token for the OAuth client.
    #[error(transparent)]
    Token(#[from] AuthError),
    /// The API base and the path (or a `nextUri`) make no URL (the parser's reason).
    #[error("{0}")]
    Url(String),
    /// The request failed (the error, its URL redacted).
    #[error("GET /api/v2/integrations: {0}")]
    Send(String),
    /// An HTTP error answer, with what it means.
    #[error("GET /api/v2/integrations: HTTP {status} ({})", why(*.status))]
    Status {
        /// The answer's status.
        status: reqwest::StatusCode,
    },
    /// A page that is not the expected JSON.
    #[error("GET /api/v2/integrations: not the expected JSON: {0}")]
    NotJson(reqwest::Error),
    /// A `nextUri` on another host: the token goes nowhere else.
    #[error("GET /api/v2/integrations: nextUri points to another host: not followed")]
    OtherHost,
    /// More pages than [`MAX_PAGES`].
    #[error("GET /api/v2/integrations: more than {MAX_PAGES} pages: stopped")]
    TooManyPages,
}

/// Pages read at most (100 integrations each).
const MAX_PAGES: usize = 100;

/// Every Amazon EventBridge Source integration of the org, each page within `timeout`,
/// following `nextUri` until a page has none.
pub async fn eventbridge_integrations(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    tokens: &TokenSource,
    timeout: Duration,
) -> Result<Vec<IntegrationState>, IntegrationsError> {
    let entities = eventbridge_entities(http, endpoints, tokens, timeout).await?;
    Ok(entities.iter().filter_map(state_of).collect())
}

/// One Amazon EventBridge Source integration with where it publishes and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationConfig {
    /// Its reported state, with the AWS account of its partner event source.
    pub state: IntegrationState,
    /// `awsAccountRegion`: the region of its partner event source.
    pub region: Option<String>,
    /// `topicFilters`: the topics it publishes (`v2.detail.events.conversation.{id}.customer.end`).
    pub topics: Vec<String>,
}

/// Every Amazon EventBridge Source integration of the org with its account, region and
/// topics, each page within `timeout`.
pub async fn eventbridge_integration_configs(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    tokens: &TokenSource,
    timeout: Duration,
) -> Result<Vec<IntegrationConfig>, IntegrationsError> {
    let entities = eventbridge_entities(http, endpoints, tokens, timeout).await?;
    Ok(entities
        .iter()
        .filter_map(|entity| {
            let state = state_of(entity)?;
            let properties = &entity["config"]["current"]["properties"];
            let text = |name: &str| properties[name].as_str().map(str::to_owned);
            Some(IntegrationConfig {
                region: state.aws_region.clone().or_else(|| text("awsRegion")),
                topics: properties["topicFilters"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                state,
            })
        })
        .collect())
}

/// The integrations of the org (`expand=config.current`), each page within `timeout`,
/// following `nextUri` until a page has none.
async fn eventbridge_entities(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    tokens: &TokenSource,
    timeout: Duration,
) -> Result<Vec<serde_json::Value>, IntegrationsError> {
    let token = tokens.token().await?;
    let mut url = endpoints
        .api_base
        .join("api/v2/integrations")
        .map_err(|e| IntegrationsError::Url(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("pageSize", "100")
        .append_pair("pageNumber", "1")
        .append_pair("expand", "config.current");
    let mut found = Vec::new();
    for _ in 0..MAX_PAGES {
        let answer = http
            .get(url.clone())
            .header(reqwest::header::AUTHORIZATION, token.bearer())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| IntegrationsError::Send(super::redact_url(&e.to_string())))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(IntegrationsError::Status { status });
        }
        let page: Page = answer.json().await.map_err(IntegrationsError::NotJson)?;
        found.extend(page.entities);
        let Some(next) = page.next_uri.filter(|n| !n.is_empty()) else {
            return Ok(found);
        };
        // nextUri is a path on the same API host; the token goes nowhere else.
        let next_url = endpoints
            .api_base
            .join(&next)
            .map_err(|e| IntegrationsError::Url(e.to_string()))?;
        if next_url.origin() != endpoints.api_base.origin() {
            return Err(IntegrationsError::OtherHost);
        }
        url = next_url;
    }
    Err(IntegrationsError::TooManyPages)
}

/// What an HTTP failure of the integrations API means.
fn why(status: reqwest::StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "the OAuth client's token was refused",
        403 => "the OAuth client needs integrations:integration:view",
        429 => {
            "Genesys Cloud is rate-limiting this OAuth client; not a permission problem, try again later"
        }
        s if s >= 500 => {
            "Genesys Cloud failed to answer; not a permission problem, try again later"
        }
        _ => "an unexpected answer",
    }
}

/// The state of one integration, when it is an Amazon EventBridge Source.
fn state_of(entity: &serde_json::Value) -> Option<IntegrationState> {
    if entity["integrationType"]["id"].as_str() != Some(EVENTBRIDGE_INTEGRATION) {
        return None;
    }
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let reported = &entity["reportedState"];
    let properties = &entity["config"]["current"]["properties"];
    Some(IntegrationState {
        name: text(&entity["name"]).unwrap_or_default(),
        event_source_suffix: text(&properties["eventSourceSuffix"]),
        code: text(&reported["code"]).unwrap_or_else(|| "UNKNOWN".into()),
        detail: text(&reported["detail"]["message"]).filter(|m| !m.is_empty()),
        last_updated: text(&reported["lastUpdated"]),
        aws_account_id: text(&properties["awsAccountId"]),
        aws_region: text(&properties["awsAccountRegion"]),
        feeds_rules: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page that is not JSON says the decoder's reason once, printed with its causes
    /// or not.
    #[tokio::test]
    async fn a_page_that_is_not_json_says_why_once() {
        let endpoint = crate::http::answering(200, "application/json", "abc").await;
        let url = format!("{endpoint}/api/v2/integrations");
        let answer = reqwest::get(&url).await.unwrap();
        let Err(error) = answer.json::<Page>().await else {
            panic!("a page of abc")
        };
        let e = IntegrationsError::NotJson(error);
        assert!(
            e.to_string()
                .starts_with("GET /api/v2/integrations: not the expected JSON: "),
            "{e}"
        );
        assert_eq!(crate::aws_error::said_twice(&e), Vec::<String>::new());
    }
}
