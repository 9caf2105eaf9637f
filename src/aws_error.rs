//! AWS SDK errors as one line an operator can act on.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// `action: Code: message` as the service said it, or the error's first line when the
/// service said nothing (a timeout, a connection that failed).
pub(crate) fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    action: &str,
    e: &SdkError<E>,
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
