//! [`AwsCourier`]: one delivery attempt per destination kind — HTTP (`--to-url`, API
//! destinations), SQS `SendMessage`, Lambda `Invoke`, EventBridge `PutEvents` — and what
//! each answer means for the replay loop ([`Attempt`]).

use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::Blob;

use super::{Attempt, Courier, Delivery, parse_retry_after};
use crate::aws_error;
use crate::genesys::redact_url;

/// Where a body goes, and with which protocol parameters. `Debug` shows an HTTP route's
/// URL redacted and its headers by name only: their values are credentials (an API key,
/// `Authorization`, a `--header` read from the environment).
#[derive(Clone, PartialEq)]
pub(crate) enum Route {
    /// An HTTP request (`--to-url`, or an API destination).
    Http {
        /// The full URL (may hold credentials; never printed as is).
        url: String,
        /// The method.
        method: String,
        /// Headers, `Content-Type` included.
        headers: Vec<(String, String)>,
    },
    /// SQS `SendMessage`.
    Queue {
        /// The queue URL.
        queue_url: String,
        /// `MessageGroupId` (FIFO queues).
        group_id: Option<String>,
        /// `MessageDeduplicationId` (FIFO queues without content-based deduplication).
        dedup_id: Option<String>,
    },
    /// Lambda `Invoke` with `InvocationType=Event`, as EventBridge invokes.
    Function {
        /// The function name or ARN (with its qualifier, if any).
        name: String,
    },
    /// EventBridge `PutEvents`: the body is the entry's `Detail`.
    Bus {
        /// The bus name or ARN.
        bus: String,
        /// `Source`.
        source: String,
        /// `DetailType`.
        detail_type: String,
        /// `Resources`.
        resources: Vec<String>,
        /// `Time` (the event's own), RFC 3339.
        time: Option<String>,
    },
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Http {
                url,
                method,
                headers,
            } => f
                .debug_struct("Http")
                .field("url", &redact_url(url))
                .field("method", method)
                .field("headers", &header_names(headers))
                .finish(),
            Route::Queue {
                queue_url,
                group_id,
                dedup_id,
            } => f
                .debug_struct("Queue")
                .field("queue_url", queue_url)
                .field("group_id", group_id)
                .field("dedup_id", dedup_id)
                .finish(),
            Route::Function { name } => f.debug_struct("Function").field("name", name).finish(),
            Route::Bus {
                bus,
                source,
                detail_type,
                resources,
                time,
            } => f
                .debug_struct("Bus")
                .field("bus", bus)
                .field("source", source)
                .field("detail_type", detail_type)
                .field("resources", resources)
                .field("time", time)
                .finish(),
        }
    }
}

/// Header names with their values hidden, for `Debug`.
pub(crate) fn header_names(headers: &[(String, String)]) -> Vec<String> {
    headers.iter().map(|(n, _)| format!("{n}: ***")).collect()
}

/// `text` (an endpoint's answer) with every value the request carried as a credential
/// replaced by `***`: the headers' values (and an `Authorization` value's credentials
/// after its scheme) and the URL's query-string values. An endpoint that answers
/// "invalid API key: k-123" must not put the key into the journal or the summary.
pub(crate) fn scrub(text: &str, url: &str, headers: &[(String, String)]) -> String {
    let mut secrets: Vec<String> = Vec::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-type") {
            continue;
        }
        secrets.push(value.clone());
        if let Some((_, credentials)) = value.split_once(' ') {
            secrets.push(credentials.trim().to_owned());
        }
    }
    if let Ok(parsed) = reqwest::Url::parse(url) {
        secrets.extend(parsed.query_pairs().map(|(_, v)| v.into_owned()));
        secrets.extend(parsed.password().map(str::to_owned));
    }
    // Longest first, so a value is not half-replaced by a shorter one it contains.
    secrets.retain(|s| s.len() >= 4);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
        .iter()
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "***"))
}

/// What an AWS SDK error means for a replay attempt: throttling, a 429, a 500/502/503/504,
/// timeouts and failed connections are worth another attempt; the rest (credentials that
/// cannot be loaded among them) is refused.
pub(super) fn sdk_attempt<E: ProvideErrorMetadata + std::error::Error + 'static>(
    action: &str,
    e: &SdkError<E>,
) -> Attempt {
    let status = e.raw_response().map(|r| r.status().as_u16());
    let error = aws_error::describe(action, e);
    // The SDK's own rules (its throttling codes, a failed connection, a 500/502/503/504),
    // and a 429 whatever its code says.
    if aws_error::transient(e) || status == Some(429) {
        let after = e
            .raw_response()
            .and_then(|r| r.headers().get("retry-after"))
            .and_then(parse_retry_after);
        Attempt::Retry {
            http_status: status,
            error,
            after,
        }
    } else {
        Attempt::Rejected {
            http_status: status,
            error,
        }
    }
}

/// Sends deliveries for real. The SDK clients should be built without their own retries
/// (the replay loop retries, counts and paces every attempt).
#[derive(Debug, Clone)]
pub(crate) struct AwsCourier {
    http: reqwest::Client,
    aws: Option<AwsClients>,
}

#[derive(Debug, Clone)]
struct AwsClients {
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
    events: aws_sdk_eventbridge::Client,
}

impl AwsCourier {
    /// A courier for HTTP and, given an SDK configuration, for SQS, Lambda and
    /// EventBridge; `timeout` bounds each HTTP request.
    pub(crate) fn new(sdk: Option<&aws_config::SdkConfig>, timeout: Duration) -> AwsCourier {
        let http = crate::http::client_builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirect of a POST would become a GET elsewhere: report it instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        AwsCourier {
            http,
            aws: sdk.map(|sdk| AwsClients {
                sqs: aws_sdk_sqs::Client::new(sdk),
                lambda: aws_sdk_lambda::Client::new(sdk),
                events: aws_sdk_eventbridge::Client::new(sdk),
            }),
        }
    }

    /// An HTTP request; 429, 408 and 5xx are worth another attempt.
    async fn http(
        &self,
        url: &str,
        method: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Attempt {
        let shown = redact_url(url);
        let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
            return Attempt::Rejected {
                http_status: None,
                error: format!("{method:?} is not an HTTP method"),
            };
        };
        let mut request = self.http.request(method, url).body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not be reached"
                } else {
                    "failed"
                };
                // reqwest's error text names the URL; ours is redacted.
                return Attempt::Retry {
                    http_status: None,
                    error: format!("{shown} {what}"),
                    after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered {
                http_status: Some(status.as_u16()),
            };
        }
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = response.text().await.unwrap_or_default();
        let said: String = scrub(&text, url, headers)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let error = format!("{shown} answered {status}: {said}")
            .trim_end_matches(": ")
            .to_owned();
        let code = status.as_u16();
        if code == 429 || code == 408 || status.is_server_error() {
            Attempt::Retry {
                http_status: Some(code),
                error,
                after,
            }
        } else {
            Attempt::Rejected {
                http_status: Some(code),
                error,
            }
        }
    }
}

impl AwsClients {
    /// SQS `SendMessage`.
    async fn queue(
        &self,
        queue_url: &str,
        group_id: &Option<String>,
        dedup_id: &Option<String>,
        body: &[u8],
    ) -> Attempt {
        let sent = self
            .sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(String::from_utf8_lossy(body))
            .set_message_group_id(group_id.clone())
            .set_message_deduplication_id(dedup_id.clone())
            .send()
            .await;
        match sent {
            Ok(_) => Attempt::Delivered { http_status: None },
            Err(e) => sdk_attempt("SendMessage", &e),
        }
    }

    /// Lambda `Invoke`, asynchronously, as EventBridge invokes.
    async fn function(&self, name: &str, body: &[u8]) -> Attempt {
        use aws_sdk_lambda::operation::invoke::InvokeError;
        let invoked = self
            .lambda
            .invoke()
            .function_name(name)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(Blob::new(body))
            .send()
            .await;
        let e = match invoked {
            Ok(out) => {
                return Attempt::Delivered {
                    http_status: u16::try_from(out.status_code()).ok(),
                };
            }
            Err(e) => e,
        };
        let mut attempt = sdk_attempt("Invoke", &e);
        // Lambda says how long to wait in the error, not in a header.
        let hint = match e.as_service_error() {
            Some(InvokeError::TooManyRequestsException(t)) => t.retry_after_seconds(),
            _ => None,
        };
        if let (Attempt::Retry { after, .. }, Some(hint)) = (&mut attempt, hint) {
            *after = hint.parse().ok().map(Duration::from_secs);
        }
        attempt
    }

    /// EventBridge `PutEvents` of one entry whose `Detail` is `body`.
    async fn bus(
        &self,
        bus: &str,
        source: &str,
        detail_type: &str,
        resources: &[String],
        time: Option<&str>,
        body: &[u8],
    ) -> Attempt {
        let mut entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source(source)
            .detail_type(detail_type)
            .detail(String::from_utf8_lossy(body))
            .set_resources(Some(resources.to_vec()));
        if let Some(t) = time.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
            entry = entry.time(aws_sdk_eventbridge::primitives::DateTime::from_secs(
                t.timestamp(),
            ));
        }
        let out = match self.events.put_events().entries(entry.build()).send().await {
            Ok(out) => out,
            Err(e) => return sdk_attempt("PutEvents", &e),
        };
        if out.failed_entry_count() == 0 {
            return Attempt::Delivered { http_status: None };
        }
        let failed = out.entries().first();
        let code = failed.and_then(|f| f.error_code()).unwrap_or("unknown");
        let error = format!(
            "PutEvents: {code}: {}",
            failed.and_then(|f| f.error_message()).unwrap_or_default()
        );
        if code.contains("Throttl") || code.contains("Internal") {
            Attempt::Retry {
                http_status: None,
                error,
                after: None,
            }
        } else {
            Attempt::Rejected {
                http_status: None,
                error,
            }
        }
    }
}

impl Courier for AwsCourier {
    async fn send(&self, delivery: &Delivery) -> Attempt {
        let body = &delivery.body;
        match (&delivery.route, &self.aws) {
            (
                Route::Http {
                    url,
                    method,
                    headers,
                },
                _,
            ) => self.http(url, method, headers, body).await,
            (_, None) => Attempt::Rejected {
                http_status: None,
                error: "no AWS configuration for this run".to_owned(),
            },
            (
                Route::Queue {
                    queue_url,
                    group_id,
                    dedup_id,
                },
                Some(aws),
            ) => aws.queue(queue_url, group_id, dedup_id, body).await,
            (Route::Function { name }, Some(aws)) => aws.function(name, body).await,
            (
                Route::Bus {
                    bus,
                    source,
                    detail_type,
                    resources,
                    time,
                },
                Some(aws),
            ) => {
                aws.bus(bus, source, detail_type, resources, time.as_deref(), body)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_routes_debug_shows_no_header_value_nor_query() {
        let route = Route::Http {
            url: "https://u:pw-s3cr3t@crm.example.com/hook?key=q-s3cr3t".into(),
            method: "POST".into(),
            headers: vec![
                ("x-api-key".into(), "k-s3cr3t".into()),
                ("Authorization".into(), "Bearer t-s3cr3t".into()),
            ],
        };
        for shown in [format!("{route:?}"), format!("{route:#?}")] {
            assert!(
                shown.contains("x-api-key") && shown.contains("crm.example.com"),
                "{shown}"
            );
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
    }

    #[test]
    fn an_answer_echoing_a_credential_is_scrubbed() {
        let headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("x-api-key".to_owned(), "k-s3cr3t".to_owned()),
            ("Authorization".to_owned(), "Bearer t-s3cr3t".to_owned()),
        ];
        let said = scrub(
            "invalid key k-s3cr3t; token t-s3cr3t; tenant q-s3cr3t; application/json",
            "https://crm.example.com/hook?tenant=q-s3cr3t",
            &headers,
        );
        assert!(!said.contains("s3cr3t"), "{said}");
        assert!(
            said.contains("invalid key ***") && said.contains("application/json"),
            "{said}"
        );
    }
}
