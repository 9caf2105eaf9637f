//! AWS SDK errors as one line an operator can act on, and the one timeout every AWS call
//! goes through.

use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS call that failed: no answer in time, or the service's (or the way to it's) error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AwsError {
    /// No answer within `after`.
    #[error("{action}: no answer within {after:?}")]
    TimedOut { action: String, after: Duration },
    /// The call failed; `line` is [`describe`]'s text.
    #[error("{line}")]
    Failed {
        code: Option<String>,
        message: Option<String>,
        /// The HTTP status of the answer, when there was one.
        status: Option<u16>,
        line: String,
        /// The SDK's error. `line` says what it says (the service's code and message, or
        /// the error with its causes), so it is not the `source()` too.
        sdk: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl AwsError {
    /// The SDK's error for `action`, its code, message and status kept.
    pub(crate) fn from_sdk<E>(action: &str, e: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        AwsError::Failed {
            code: e.code().map(str::to_owned),
            message: e.message().map(str::to_owned),
            status: e.raw_response().map(|r| r.status().as_u16()),
            line: describe(action, &e),
            sdk: Box::new(e),
        }
    }

    /// The service's error code, if it said one.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            AwsError::Failed { code, .. } => code.as_deref(),
            AwsError::TimedOut { .. } => None,
        }
    }

    /// The service's error message, if it said one.
    pub(crate) fn message(&self) -> Option<&str> {
        match self {
            AwsError::Failed { message, .. } => message.as_deref(),
            AwsError::TimedOut { .. } => None,
        }
    }

    /// The HTTP status of the answer, if there was one.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            AwsError::Failed { status, .. } => *status,
            AwsError::TimedOut { .. } => None,
        }
    }
}

/// `call` (the SDK's `send()` for `action`), bounded by `after`.
pub(crate) async fn within<T, E>(
    action: &str,
    after: Duration,
    call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(after, call).await {
        Err(_) => Err(AwsError::TimedOut {
            action: action.to_owned(),
            after,
        }),
        Ok(answer) => answer.map_err(|e| AwsError::from_sdk(action, e)),
    }
}

/// Whether a later attempt of the call may succeed, by the SDK's own rules: no answer in
/// time, an answer that could not be read, a connection that failed (an I/O error, a
/// timeout, or one the connector calls transient), the service's throttling or transient
/// codes (the SDK's lists), or a 500, 502, 503 or 504. Not credentials that could not be
/// loaded, an endpoint that cannot be built, or a refusal a person must fix.
pub(crate) fn transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
    let code = e.code().unwrap_or_default();
    let failed_connection = match e {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => d.is_io() || d.is_timeout() || d.as_other().is_some(),
        _ => false,
    };
    // A throttling code by any name too (SQS's `KmsThrottled`, KMS's throttling seen
    // through another service): not all of them are in the SDK's list.
    failed_connection
        || code.contains("Throttl")
        || THROTTLING_ERRORS.contains(&code)
        || TRANSIENT_ERRORS.contains(&code)
        || e.raw_response()
            .is_some_and(|r| matches!(r.status().as_u16(), 500 | 502 | 503 | 504))
}

/// `action: Code: message` as the service said it, or the error's first line when the
/// service said nothing (a timeout, a connection that failed).
pub(crate) fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    action: &str,
    e: &SdkError<E, HttpResponse>,
) -> String {
    let status = e.raw_response().map(|r| r.status().as_u16());
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{action}: {c}: {m}"),
        (Some(c), None) => format!("{action}: {c}"),
        // An answer without an error the SDK could read (a proxy's, a load balancer's).
        (None, _) if let Some(status) = status.filter(|s| *s >= 400) => {
            format!("{action}: HTTP {status} (no error code in the answer)")
        }
        _ => format!(
            "{action}: {}",
            one_line(&DisplayErrorContext(e).to_string())
        ),
    }
}

/// The first line of `s`, at most 300 characters.
pub(crate) fn one_line(s: &str) -> String {
    crate::text::truncate(crate::text::first_line(s), 300)
}

/// The causes of `e` that, printed with its causes (`e: cause: cause…`), say again what a
/// line before them already says: none when each line says its cause or leaves it to
/// `source()`, never both. For tests.
#[cfg(test)]
pub(crate) fn said_twice(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut twice = Vec::new();
    let mut lines = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if lines.iter().any(|line| line.contains(&said)) {
            twice.push(said.clone());
        }
        lines.push(said);
        cause = c.source();
    }
    twice
}

/// SDK errors built the way the SDK builds them, for tests.
#[cfg(test)]
pub(crate) mod shapes {
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::SdkError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    /// An answer with `status` and no body.
    pub(crate) fn answer(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
    }

    /// The metadata the SDK parses from an error answer.
    pub(crate) fn meta(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    /// An SDK configuration whose every call goes to a local server that accepts the
    /// connection and never answers (a hung service), with retries off.
    pub(crate) async fn hole_sdk() -> aws_config::SdkConfig {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hole = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(hole)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::for_tests(),
                ),
            )
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build()
    }

    /// The service's error `E` (built from `meta`), as the SDK returns it.
    pub(crate) fn service<E>(e: E, status: u16) -> SdkError<E, HttpResponse> {
        SdkError::service_error(e, answer(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;

    #[tokio::test(start_paused = true)]
    async fn a_call_without_an_answer_times_out_typed() {
        let never = std::future::pending::<Result<(), SdkError<GetItemError, HttpResponse>>>();
        let e = within("GetItem", Duration::from_secs(3), never)
            .await
            .unwrap_err();
        assert!(matches!(e, AwsError::TimedOut { after, .. } if after == Duration::from_secs(3)));
        assert_eq!(e.to_string(), "GetItem: no answer within 3s");
    }

    #[tokio::test]
    async fn the_services_code_and_message_are_kept() {
        let sdk = shapes::service(
            GetItemError::generic(shapes::meta("AccessDeniedException", "no")),
            400,
        );
        let e = within("GetItem", Duration::from_secs(3), async {
            Err::<(), _>(sdk)
        })
        .await
        .unwrap_err();
        assert_eq!(e.code(), Some("AccessDeniedException"));
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.message(), Some("no"));
        assert_eq!(e.to_string(), "GetItem: AccessDeniedException: no");
        assert_eq!(said_twice(&e), Vec::<String>::new());
    }

    /// What may succeed later is told by the SDK's error, not by words in its message.
    #[test]
    fn transient_is_no_answer_throttling_or_a_5xx() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let no_answer = SdkError::<GetItemError, HttpResponse>::dispatch_failure(
            ConnectorError::io(refused.into()),
        );
        assert!(transient(&no_answer));
        // The credentials chain's failure reaches the caller as a dispatch failure too;
        // trying again will not load them.
        let no_credentials =
            SdkError::<GetItemError, HttpResponse>::dispatch_failure(ConnectorError::other(
                Box::new(
                    aws_credential_types::provider::error::CredentialsError::not_loaded(
                        "no providers in chain",
                    ),
                ),
                None,
            ));
        assert!(!transient(&no_credentials));
        let said = |code: &str, message: &str, status| {
            transient(&shapes::service(
                GetItemError::generic(shapes::meta(code, message)),
                status,
            ))
        };
        assert!(said("ThrottlingException", "Rate exceeded", 400));
        assert!(said("KmsThrottled", "KMS throttled the request", 400));
        assert!(said("InternalServerError", "try again", 500));
        assert!(!said("NotImplemented", "no such operation", 501));
        assert!(!said("AccessDeniedException", "no", 400));
        // A name that happens to hold the words is still a missing resource.
        assert!(!said(
            "ResourceNotFoundException",
            "connection throttle-timeout-dispatch not found",
            400
        ));
    }

    /// A call that got no answer is said with its causes in its line, so they are not its
    /// `source()` too.
    #[test]
    fn a_failure_without_an_answer_says_its_causes_once() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let sdk = SdkError::<GetItemError, HttpResponse>::dispatch_failure(ConnectorError::io(
            refused.into(),
        ));
        let e = AwsError::from_sdk("GetItem", sdk);
        assert!(
            e.to_string().starts_with("GetItem: dispatch failure"),
            "{e}"
        );
        assert!(e.to_string().contains("connection refused"), "{e}");
        assert_eq!(said_twice(&e), Vec::<String>::new());
    }
}
