//! The Genesys Cloud side of the integration: the reported state of the org's Amazon
//! EventBridge Source integrations (`GET /api/v2/integrations`, type
//! `amazon-eventbridge-source`). An integration in `ERROR` sends no event at all, so no
//! dead letter can show it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Endpoints, TokenSource};

/// The integration type Genesys Cloud gives the Amazon EventBridge Source.
pub const EVENTBRIDGE_INTEGRATION: &str = "amazon-eventbridge-source";

/// One Amazon EventBridge Source integration as Genesys Cloud reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    entities: Vec<serde_json::Value>,
    #[serde(rename = "pageCount", default)]
    page_count: u32,
}

/// Every Amazon EventBridge Source integration of the org, each page within `timeout`.
pub async fn eventbridge_integrations(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    tokens: &TokenSource,
    timeout: Duration,
) -> Result<Vec<IntegrationState>, String> {
    let entities = eventbridge_entities(http, endpoints, tokens, timeout).await?;
    Ok(entities.iter().filter_map(state_of).collect())
}

/// One Amazon EventBridge Source integration with where it publishes and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationConfig {
    /// Its reported state.
    pub state: IntegrationState,
    /// `awsAccountId`: the AWS account of its partner event source.
    pub account: Option<String>,
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
) -> Result<Vec<IntegrationConfig>, String> {
    let entities = eventbridge_entities(http, endpoints, tokens, timeout).await?;
    Ok(entities
        .iter()
        .filter_map(|entity| {
            let state = state_of(entity)?;
            let properties = &entity["config"]["current"]["properties"];
            let text = |name: &str| properties[name].as_str().map(str::to_owned);
            Some(IntegrationConfig {
                state,
                account: text("awsAccountId"),
                region: text("awsAccountRegion").or_else(|| text("awsRegion")),
                topics: properties["topicFilters"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect())
}

/// The integrations of the org (every page, `expand=config.current`), each page within
/// `timeout`.
async fn eventbridge_entities(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    tokens: &TokenSource,
    timeout: Duration,
) -> Result<Vec<serde_json::Value>, String> {
    let token = tokens.token().await.map_err(|e| e.to_string())?;
    let url = endpoints
        .api_base
        .join("api/v2/integrations")
        .map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for page in 1.. {
        let mut page_url = url.clone();
        page_url
            .query_pairs_mut()
            .append_pair("pageSize", "100")
            .append_pair("pageNumber", &page.to_string())
            .append_pair("expand", "config.current");
        let answer = http
            .get(page_url)
            .header(reqwest::header::AUTHORIZATION, token.bearer())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "GET /api/v2/integrations: {}",
                    super::redact_url(&e.to_string())
                )
            })?;
        let status = answer.status();
        if !status.is_success() {
            return Err(format!(
                "GET /api/v2/integrations: HTTP {status} (the OAuth client needs integrations:integration:view)"
            ));
        }
        let page_of: Page = answer
            .json()
            .await
            .map_err(|e| format!("GET /api/v2/integrations: not the expected JSON: {e}"))?;
        found.extend(page_of.entities);
        if page >= page_of.page_count.max(1) {
            break;
        }
    }
    Ok(found)
}

/// The state of one integration, when it is an Amazon EventBridge Source.
fn state_of(entity: &serde_json::Value) -> Option<IntegrationState> {
    if entity["integrationType"]["id"].as_str() != Some(EVENTBRIDGE_INTEGRATION) {
        return None;
    }
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let reported = &entity["reportedState"];
    Some(IntegrationState {
        name: text(&entity["name"]).unwrap_or_default(),
        event_source_suffix: text(&entity["config"]["current"]["properties"]["eventSourceSuffix"]),
        code: text(&reported["code"]).unwrap_or_else(|| "UNKNOWN".into()),
        detail: text(&reported["detail"]["message"]).filter(|m| !m.is_empty()),
        last_updated: text(&reported["lastUpdated"]),
    })
}
