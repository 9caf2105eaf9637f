//! The SQS adapter of [`DeadLetterQueue`], through the AWS SDK.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use futures::future::BoxFuture;

use super::{DeadLetterQueue, HandleOutcome, QueueError, QueueInfo, Received};
use crate::dlq::{DeadLetter, FailureContext, SystemAttributes};
use crate::text::{first_line, truncate};

/// Attempts per batch entry that fails for a reason other than the caller's.
const ENTRY_ATTEMPTS: u32 = 3;

/// One SQS queue, by URL.
#[derive(Debug, Clone)]
pub(crate) struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    wait: Duration,
    arn: Option<String>,
    attempts: Arc<Attempts>,
}

impl SqsQueue {
    /// The queue at `url`, through a client with this configuration (its retries are
    /// counted); receives long-poll for `wait` (1–20 s).
    pub(crate) fn new(
        config: aws_sdk_sqs::Config,
        url: impl Into<String>,
        wait: Duration,
    ) -> SqsQueue {
        let attempts = Arc::new(Attempts::default());
        let config = config
            .to_builder()
            .interceptor(CountAttempts(attempts.clone()))
            .build();
        SqsQueue {
            client: aws_sdk_sqs::Client::from_conf(config),
            url: url.into(),
            wait,
            arn: None,
            attempts,
        }
    }

    /// Calls the SDK made again after an attempt failed (throttling, a lost connection,
    /// a timeout), so far.
    pub(crate) fn retries(&self) -> u64 {
        let calls = self.attempts.calls.load(Ordering::Relaxed);
        self.attempts
            .attempts
            .load(Ordering::Relaxed)
            .saturating_sub(calls)
    }

    /// Remembers the queue's ARN, given to every received dead letter as its source.
    pub(crate) fn with_arn(mut self, arn: impl Into<String>) -> SqsQueue {
        self.arn = Some(arn.into());
        self
    }

    fn error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        action: &'static str,
        e: SdkError<E, HttpResponse>,
    ) -> QueueError {
        let status = e.raw_response().map(|r| r.status().as_u16());
        // SQS answers in JSON; an answer it could not parse (a proxy, an emulator speaking
        // the older XML protocol) still carries its status and, often, a <Message>.
        let body_message = e
            .raw_response()
            .and_then(|r| r.body().bytes())
            .and_then(|b| xml_message(&String::from_utf8_lossy(b)));
        let code = e.code().unwrap_or_default().to_owned();
        let detail = match (e.message(), &body_message) {
            (Some(m), _) => format!("{code}: {m}"),
            (None, Some(m)) => m.clone(),
            (None, None) => first_line(&DisplayErrorContext(&e).to_string()).to_owned(),
        };
        if code.contains("NonExistentQueue") || code.contains("QueueDoesNotExist") {
            QueueError::NotFound(self.url.clone())
        } else if code.contains("AccessDenied")
            || code.contains("NotAuthorized")
            || (code.is_empty() && status == Some(403))
        {
            QueueError::AccessDenied {
                action,
                queue: self.url.clone(),
                detail,
            }
        } else if let Some(missing) = credentials_error(&e).filter(|_| code.is_empty()) {
            let detail = detail.split(". Attempted").next().unwrap_or_default();
            let detail = detail.trim_end_matches([':', '.']).to_owned();
            match missing {
                CredentialsError::CredentialsNotLoaded(_) => QueueError::NoCredentials(detail),
                _ => QueueError::Credentials(detail),
            }
        } else {
            QueueError::Other {
                action,
                queue: self.url.clone(),
                detail: truncate(&detail, 300),
            }
        }
    }

    /// Runs one batch call per attempt over the handles still pending, retrying entries
    /// that failed through no fault of the request.
    async fn batch<F, Fut>(
        &self,
        handles: &[String],
        mut call: F,
    ) -> Result<Vec<HandleOutcome>, QueueError>
    where
        F: FnMut(Vec<(usize, String)>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(usize, Option<FailedEntry>)>, QueueError>>,
    {
        let mut outcomes = vec![HandleOutcome::Failed("not attempted".into()); handles.len()];
        let mut pending: Vec<usize> = (0..handles.len()).collect();
        for attempt in 1..=ENTRY_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let entries = pending.iter().map(|&i| (i, handles[i].clone())).collect();
            let results = call(entries).await?;
            pending.clear();
            for (i, failed) in results {
                outcomes[i] = match failed {
                    None => HandleOutcome::Done,
                    // SQS says an expired handle only in its text: `InvalidParameterValue`,
                    // "… Reason: The receipt handle has expired." (a malformed one is
                    // `ReceiptHandleIsInvalid`); the code alone is any bad parameter.
                    Some(f)
                        if f.code == "ReceiptHandleIsInvalid"
                            || f.code.contains("InvalidParameterValue")
                                && f.message.contains("receipt handle") =>
                    {
                        HandleOutcome::Expired
                    }
                    Some(f) if !f.sender_fault && attempt < ENTRY_ATTEMPTS => {
                        pending.push(i);
                        HandleOutcome::Failed(f.to_string())
                    }
                    Some(f) => HandleOutcome::Failed(f.to_string()),
                };
            }
        }
        Ok(outcomes)
    }
}

/// The credentials chain's error among the call's causes, when that is why it failed.
fn credentials_error<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e CredentialsError> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(found) = c.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        cause = c.source();
    }
    None
}

/// Calls and attempts made through a client.
#[derive(Debug, Default)]
struct Attempts {
    calls: AtomicU64,
    attempts: AtomicU64,
}

/// Counts every call and every attempt of it.
#[derive(Debug)]
struct CountAttempts(Arc<Attempts>);

impl Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "CountAttempts"
    }

    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A batch entry SQS refused.
struct FailedEntry {
    code: String,
    message: String,
    sender_fault: bool,
}

impl std::fmt::Display for FailedEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Matches a batch answer's failed entries (by the ids we gave: the handle's index) to
/// the entries sent.
fn batch_results(
    sent: &[(usize, String)],
    failed: &[aws_sdk_sqs::types::BatchResultErrorEntry],
) -> Vec<(usize, Option<FailedEntry>)> {
    sent.iter()
        .map(|(i, _)| {
            let f = failed
                .iter()
                .find(|f| f.id() == i.to_string())
                .map(|f| FailedEntry {
                    code: f.code().to_owned(),
                    message: f.message().unwrap_or_default().to_owned(),
                    sender_fault: f.sender_fault(),
                });
            (*i, f)
        })
        .collect()
}

impl DeadLetterQueue for SqsQueue {
    fn describe(&self) -> BoxFuture<'_, Result<QueueInfo, QueueError>> {
        Box::pin(async move {
            let out = self
                .client
                .get_queue_attributes()
                .queue_url(&self.url)
                .attribute_names(QueueAttributeName::QueueArn)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .map_err(|e| self.error("sqs:GetQueueAttributes", e))?;
            let get = |name: QueueAttributeName| {
                out.attributes()
                    .and_then(|a| a.get(&name))
                    .map(String::as_str)
            };
            let number = |name| get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
            Ok(QueueInfo {
                arn: get(QueueAttributeName::QueueArn)
                    .unwrap_or_default()
                    .to_owned(),
                visible: number(QueueAttributeName::ApproximateNumberOfMessages),
                in_flight: number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            })
        })
    }

    fn receive(
        &self,
        max: usize,
        visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, QueueError>> {
        Box::pin(async move {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(max.clamp(1, 10) as i32)
                .wait_time_seconds(self.wait.as_secs().clamp(0, 20) as i32)
                .visibility_timeout(visibility.as_secs().min(43_200) as i32)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(|e| self.error("sqs:ReceiveMessage", e))?;
            Ok(out
                .messages()
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    let handle = m.receipt_handle()?.to_owned();
                    Some(Received {
                        letter: to_dead_letter(i, m, self.arn.clone()),
                        receipt_handle: handle,
                    })
                })
                .collect())
        })
    }

    fn delete<'a>(
        &'a self,
        handles: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<HandleOutcome>, QueueError>> {
        Box::pin(async move {
            self.batch(handles, |entries| async move {
                let mut request = self.client.delete_message_batch().queue_url(&self.url);
                for (i, handle) in &entries {
                    request = request.entries(
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(handle)
                            .build()
                            .map_err(|e| QueueError::Other {
                                action: "sqs:DeleteMessageBatch",
                                queue: self.url.clone(),
                                detail: e.to_string(),
                            })?,
                    );
                }
                let out = request
                    .send()
                    .await
                    .map_err(|e| self.error("sqs:DeleteMessage", e))?;
                Ok(batch_results(&entries, out.failed()))
            })
            .await
        })
    }

    fn change_visibility<'a>(
        &'a self,
        handles: &'a [String],
        visibility: Duration,
    ) -> BoxFuture<'a, Result<Vec<HandleOutcome>, QueueError>> {
        Box::pin(async move {
            let seconds = visibility.as_secs().min(43_200) as i32;
            self.batch(handles, |entries| async move {
                let mut request = self
                    .client
                    .change_message_visibility_batch()
                    .queue_url(&self.url);
                for (i, handle) in &entries {
                    request = request.entries(
                        ChangeMessageVisibilityBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(handle)
                            .visibility_timeout(seconds)
                            .build()
                            .map_err(|e| QueueError::Other {
                                action: "sqs:ChangeMessageVisibilityBatch",
                                queue: self.url.clone(),
                                detail: e.to_string(),
                            })?,
                    );
                }
                let out = request
                    .send()
                    .await
                    .map_err(|e| self.error("sqs:ChangeMessageVisibility", e))?;
                Ok(batch_results(&entries, out.failed()))
            })
            .await
        })
    }
}

/// An SQS message as a [`DeadLetter`], with EventBridge's attributes.
pub(super) fn to_dead_letter(index: usize, m: &Message, queue_arn: Option<String>) -> DeadLetter {
    let system = |name: MessageSystemAttributeName| {
        m.attributes()
            .and_then(|a| a.get(&name))
            .map(String::as_str)
    };
    DeadLetter::new(
        index,
        m.message_id().map(str::to_owned),
        m.body().unwrap_or_default().to_owned(),
        SystemAttributes {
            receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount),
            sent_timestamp: system(MessageSystemAttributeName::SentTimestamp),
            message_group_id: system(MessageSystemAttributeName::MessageGroupId),
        },
        FailureContext::from_lookup(|name| {
            m.message_attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .map(str::to_owned)
        }),
        queue_arn,
    )
}

/// The `<Message>` of an XML error body.
fn xml_message(body: &str) -> Option<String> {
    let start = body.find("<Message>")? + "<Message>".len();
    let end = start + body[start..].find("</Message>")?;
    Some(body[start..end].trim().to_owned()).filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    /// The credentials chain's failure, boxed the way the SDK's orchestrator boxes it (a
    /// dispatch failure whose connector error holds it).
    fn chain_failed(e: CredentialsError) -> SdkError<ReceiveMessageError, HttpResponse> {
        SdkError::dispatch_failure(ConnectorError::other(Box::new(e), None))
    }

    /// None found is "no AWS credentials"; found but not loadable says so; a message that
    /// mentions credentials is neither.
    #[test]
    fn missing_credentials_are_told_by_the_chains_error_not_by_words() {
        let queue = SqsQueue::new(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .build(),
            "https://sqs.us-east-1.amazonaws.com/111122223333/dlq",
            Duration::from_secs(1),
        );
        let none = queue.error(
            "sqs:ReceiveMessage",
            chain_failed(CredentialsError::not_loaded("no providers in chain")),
        );
        assert!(matches!(none, QueueError::NoCredentials(_)), "{none}");
        let expired = queue.error(
            "sqs:ReceiveMessage",
            chain_failed(CredentialsError::provider_error(
                "the SSO session has expired",
            )),
        );
        assert!(matches!(expired, QueueError::Credentials(_)), "{expired}");
        let refused = std::io::Error::other("proxy: credentials required");
        let words = queue.error(
            "sqs:ReceiveMessage",
            SdkError::<ReceiveMessageError, HttpResponse>::dispatch_failure(ConnectorError::io(
                refused.into(),
            )),
        );
        assert!(matches!(words, QueueError::Other { .. }), "{words}");
    }
}
