//! Where dead letters come from besides the Lambda's event: a queue drained directly
//! (`dlq-triage poll`). The [`DeadLetterQueue`] port, its SQS adapter ([`SqsQueue`]), and
//! [`drain`], which runs the pipeline page by page and deletes only what is stored.

mod drain;
mod sqs;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::dlq::DeadLetter;

pub(crate) use drain::{DrainOptions, DrainStopped, DrainSummary, PageProgress, drain};
pub(crate) use sqs::SqsQueue;

/// One received message: the dead letter and the receipt handle that deletes or releases it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The message, parsed.
    pub letter: DeadLetter,
    /// The handle of this receipt (a message received twice has two).
    pub receipt_handle: String,
}

/// What the queue says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueueInfo {
    /// The queue's ARN (`QueueArn`).
    pub arn: String,
    /// How many messages wait (`ApproximateNumberOfMessages`).
    pub visible: u64,
    /// How many are received and not yet deleted (`ApproximateNumberOfMessagesNotVisible`).
    pub in_flight: u64,
}

impl QueueInfo {
    /// Whether it is a FIFO queue.
    pub(crate) fn is_fifo(&self) -> bool {
        self.arn.ends_with(".fifo")
    }
}

/// What happened to one receipt handle in a delete or visibility change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HandleOutcome {
    /// Done.
    Done,
    /// The receipt handle is no longer valid (its visibility lapsed and the message was
    /// received again, or it was already deleted): the message will be seen again.
    Expired,
    /// Failed for another reason (after retries).
    Failed(String),
}

/// Why the queue could not be used. Messages name the queue and the action, never a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The queue URL names no queue (or one in another Region).
    #[error("queue {0} does not exist (check --queue-url and AWS_REGION)")]
    NotFound(String),
    /// The credentials may not perform the action.
    #[error("access denied: {action} on {queue}: {detail}")]
    AccessDenied {
        /// The SQS action, e.g. `sqs:DeleteMessage`.
        action: &'static str,
        /// The queue URL.
        queue: String,
        /// What SQS said.
        detail: String,
    },
    /// No credentials could be found.
    #[error(
        "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({0})"
    )]
    NoCredentials(String),
    /// Credentials were found but could not be loaded (an expired SSO session, a role
    /// that cannot be assumed, a profile that is wrong).
    #[error("AWS credentials could not be loaded: {0}")]
    Credentials(String),
    /// Anything else (network, throttling after retries, timeouts).
    #[error("{action} on {queue} failed: {detail}")]
    Other {
        /// The SQS action.
        action: &'static str,
        /// The queue URL.
        queue: String,
        /// What failed.
        detail: String,
    },
}

/// The dead-letter queue port: what `drain` needs from a queue.
pub(crate) trait DeadLetterQueue: Send + Sync {
    /// The queue's ARN and depth.
    fn describe(&self) -> BoxFuture<'_, Result<QueueInfo, QueueError>>;

    /// Receives up to `max` (1–10) messages with every system and message attribute,
    /// hiding them for `visibility`; an empty answer after long polling means the queue
    /// has nothing visible.
    fn receive(
        &self,
        max: usize,
        visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<Received>, QueueError>>;

    /// Deletes messages by receipt handle (up to 10), retrying entries that fail
    /// transiently; one outcome per handle, in order.
    fn delete<'a>(
        &'a self,
        handles: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<HandleOutcome>, QueueError>>;

    /// Sets the visibility timeout of messages by receipt handle (up to 10): 0 releases
    /// them; one outcome per handle, in order.
    fn change_visibility<'a>(
        &'a self,
        handles: &'a [String],
        visibility: Duration,
    ) -> BoxFuture<'a, Result<Vec<HandleOutcome>, QueueError>>;
}
