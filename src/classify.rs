//! Failure classification: the taxonomy of `docs/contract.md` as tables a reader can check line by line.
//!
//! Rules, in order:
//! 1. For a generic `ERROR_CODE` (`ERROR_FROM_TARGET`, `SDK_CLIENT_ERROR`, `UNKNOWN`,
//!    `INTERNAL_ERROR`, or none), an HTTP status *stated as one* in `ERROR_MESSAGE` decides.
//! 2. A specific `ERROR_CODE` maps by [`ERROR_CODES`].
//! 3. Otherwise keywords in `ERROR_MESSAGE` ([`KEYWORDS`], case-insensitive); then a generic
//!    `ERROR_FROM_TARGET` means the target was reached and failed.
//! 4. No delivery evidence: a body that is not an event is `PAYLOAD_MALFORMED`, else `UNKNOWN`.
//!
//! Every result carries the [`Evidence`] that decided it.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::dlq::{BodyKind, FailureContext};

/// Why a delivery failed (the **contract** names of `docs/contract.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureCategory {
    /// The target or EventBridge throttled the delivery.
    RateLimitExceeded,
    /// The endpoint refused the credentials.
    AuthenticationRejected,
    /// The endpoint could not be reached or timed out.
    EndpointUnreachable,
    /// The target rejected the content, or the body is not an event.
    PayloadMalformed,
    /// No evidence.
    Unknown,
    /// AWS-side authorization failed (the rule's role, the target's resource policy).
    PermissionDenied,
    /// The target does not exist.
    TargetNotFound,
    /// The target was reached and failed.
    TargetError,
    /// Bus-to-bus routing was refused.
    RoutingRejected,
}

impl FailureCategory {
    /// Every category, in the order of the taxonomy table.
    pub const ALL: [FailureCategory; 9] = [
        FailureCategory::RateLimitExceeded,
        FailureCategory::AuthenticationRejected,
        FailureCategory::EndpointUnreachable,
        FailureCategory::PayloadMalformed,
        FailureCategory::Unknown,
        FailureCategory::PermissionDenied,
        FailureCategory::TargetNotFound,
        FailureCategory::TargetError,
        FailureCategory::RoutingRejected,
    ];

    /// The contract name, e.g. `RATE_LIMIT_EXCEEDED`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCategory::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            FailureCategory::AuthenticationRejected => "AUTHENTICATION_REJECTED",
            FailureCategory::EndpointUnreachable => "ENDPOINT_UNREACHABLE",
            FailureCategory::PayloadMalformed => "PAYLOAD_MALFORMED",
            FailureCategory::Unknown => "UNKNOWN",
            FailureCategory::PermissionDenied => "PERMISSION_DENIED",
            FailureCategory::TargetNotFound => "TARGET_NOT_FOUND",
            FailureCategory::TargetError => "TARGET_ERROR",
            FailureCategory::RoutingRejected => "ROUTING_REJECTED",
        }
    }

    /// What the category means, for the report.
    pub fn meaning(self) -> &'static str {
        self.guide().0
    }

    /// The recommended action for an incident of this category.
    pub fn recommended_action(self) -> &'static str {
        self.guide().1
    }

    /// Whether the stored payload can be replayed unchanged once the cause is fixed.
    pub fn replay_as_is(self) -> &'static str {
        self.guide().2
    }

    /// (meaning, recommended action, replay as-is) — the taxonomy table of `docs/contract.md`.
    fn guide(self) -> (&'static str, &'static str, &'static str) {
        match self {
            FailureCategory::RateLimitExceeded => (
                "the target or EventBridge throttled the delivery (429, THROTTLING, RESOURCE_LIMIT_EXCEEDED)",
                "Raise the API destination's invocation rate limit or the target's capacity, then replay slowly.",
                "yes",
            ),
            FailureCategory::AuthenticationRejected => (
                "the endpoint refused the credentials (HTTP 401, 403, 407)",
                "Fix the credentials of the EventBridge connection used by the API destination, then replay.",
                "yes",
            ),
            FailureCategory::EndpointUnreachable => (
                "the endpoint could not be reached or timed out (connection failure, timeout, DNS, socket closed, HTTP 502/503/504)",
                "Restore the endpoint or the network path to it (DNS, TLS, firewall, 5 s API destination timeout), then replay.",
                "yes",
            ),
            FailureCategory::PayloadMalformed => (
                "the target rejected the content (INVALID_JSON, INVALID_PARAMETER, HTTP 400/413/415/422) or the body is not an event",
                "Fix the input transformer or the consumer's schema first; replaying unchanged will fail again.",
                "no: fix first",
            ),
            FailureCategory::Unknown => (
                "no evidence of the cause",
                "Inspect errorMessage and the target's logs; the evidence did not match any rule.",
                "-",
            ),
            FailureCategory::PermissionDenied => (
                "AWS-side authorization failed (NO_PERMISSIONS, FAILED_TO_ASSUME_ROLE, AccessDenied)",
                "Fix the rule's IAM role or the target's resource policy, then replay.",
                "yes",
            ),
            FailureCategory::TargetNotFound => (
                "the target does not exist (NO_RESOURCE, HTTP 404/410)",
                "Point the rule at an existing target (or recreate it), then replay.",
                "yes",
            ),
            FailureCategory::TargetError => (
                "the target was reached and failed (ERROR_FROM_TARGET, HTTP 5xx, batch rejected, resource conflicts)",
                "Check the target's own logs for the failing requests; replay once it is healthy.",
                "usually",
            ),
            FailureCategory::RoutingRejected => (
                "bus-to-bus routing was refused (cross-account/region ingestion failed, third hop detected)",
                "Fix the event-bus forwarding topology; do not replay through the same path.",
                "no",
            ),
        }
    }
}

/// Error codes whose advice differs from their category's: the incident's
/// `recommendedAction` and `replayAsIs` come from here when its code is listed.
pub(crate) const CODE_ADVICE: &[(&str, &str, &str)] = &[(
    "TRANSIENT_ASSUME_ROLE",
    "Transient: EventBridge could not assume the rule's role for a moment. Check whether the role or its trust policy was just created or changed (IAM changes take a few seconds to reach every Region); otherwise nothing to fix. Replay as-is.",
    "yes",
)];

impl FailureCategory {
    /// What to do about records of this category with this `ERROR_CODE`, and whether they
    /// can be replayed unchanged: the code's own advice when [`CODE_ADVICE`] lists it, else
    /// the category's.
    pub fn advice(self, error_code: Option<&str>) -> (&'static str, &'static str) {
        error_code
            .and_then(|code| {
                CODE_ADVICE
                    .iter()
                    .find(|(c, _, _)| c.eq_ignore_ascii_case(code.trim()))
            })
            .map(|(_, action, as_is)| (*action, *as_is))
            .unwrap_or((self.recommended_action(), self.replay_as_is()))
    }
}

impl fmt::Display for FailureCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The rule that decided a classification; serialized as its camelCase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Rule {
    /// Rule 1: an AWS service error code named in `ERROR_MESSAGE` (`Error Code: X`,
    /// `An error occurred (X)`, `api error X:`, `XException`), under a generic `ERROR_CODE`.
    AwsErrorCode,
    /// Rule 1: an HTTP status stated in `ERROR_MESSAGE`, under a generic `ERROR_CODE`.
    HttpStatus,
    /// Rule 2: a specific `ERROR_CODE` from [`ERROR_CODES`].
    ErrorCode,
    /// Rule 3: a keyword from [`KEYWORDS`] in `ERROR_MESSAGE`.
    Keyword,
    /// Rule 3, last: `ERROR_FROM_TARGET` with nothing more specific.
    GenericErrorCode,
    /// Rule 4: no delivery evidence, and the body is not an event.
    BodyNotEvent,
    /// Rule 4: no evidence at all.
    NoEvidence,
    /// The record could not be analysed (a panic confined to it).
    InternalError,
}

impl Rule {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::AwsErrorCode => "awsErrorCode",
            Rule::HttpStatus => "httpStatus",
            Rule::ErrorCode => "errorCode",
            Rule::Keyword => "keyword",
            Rule::GenericErrorCode => "genericErrorCode",
            Rule::BodyNotEvent => "bodyNotEvent",
            Rule::NoEvidence => "noEvidence",
            Rule::InternalError => "internalError",
        }
    }
}

/// Which rule decided a classification, and on what text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The rule.
    pub rule: Rule,
    /// The text that matched (a status phrase, the code, the keyword, the body kind).
    pub matched: String,
}

/// The outcome of classifying one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// The category.
    pub category: FailureCategory,
    /// Why.
    pub evidence: Evidence,
    /// An HTTP status stated in `ERROR_MESSAGE`, whether or not it decided.
    pub http_status: Option<u16>,
}

/// Codes that say only "something failed": an HTTP status in the message decides first.
pub(crate) const GENERIC_ERROR_CODES: &[&str] = &[
    "ERROR_FROM_TARGET",
    "SDK_CLIENT_ERROR",
    "UNKNOWN",
    "INTERNAL_ERROR",
];

/// Rule 2: specific `ERROR_CODE`s (the documented sample list, AWS eb-rule-dlq.md).
/// `INTERNAL_ERROR`, `SDK_CLIENT_ERROR` and `UNKNOWN` are deliberately absent: they carry
/// no cause, so the message decides. `ERROR_FROM_TARGET` is generic but has a default,
/// applied after keywords (rule 3).
pub(crate) const ERROR_CODES: &[(&str, FailureCategory)] = &[
    ("THROTTLING", FailureCategory::RateLimitExceeded),
    (
        "RESOURCE_LIMIT_EXCEEDED",
        FailureCategory::RateLimitExceeded,
    ),
    ("CONNECTION_FAILURE", FailureCategory::EndpointUnreachable),
    ("TIMEOUT", FailureCategory::EndpointUnreachable),
    ("INVALID_JSON", FailureCategory::PayloadMalformed),
    ("INVALID_PARAMETER", FailureCategory::PayloadMalformed),
    ("NO_PERMISSIONS", FailureCategory::PermissionDenied),
    ("FAILED_TO_ASSUME_ROLE", FailureCategory::PermissionDenied),
    ("TRANSIENT_ASSUME_ROLE", FailureCategory::PermissionDenied),
    ("NO_RESOURCE", FailureCategory::TargetNotFound),
    // The Custom Event Bus failure summary's code (`busArn` + `failedMessages[]`; see `docs/contract.md`).
    ("ACCESS_DENIED", FailureCategory::PermissionDenied),
    (
        "EVENTS_IN_BATCH_REQUEST_REJECTED",
        FailureCategory::TargetError,
    ),
    ("RESOURCE_ALREADY_EXISTS", FailureCategory::TargetError),
    (
        "RESOURCE_MODIFICATION_COLLISION",
        FailureCategory::TargetError,
    ),
    (
        "CROSS_ACCOUNT_INGESTION_FAILED",
        FailureCategory::RoutingRejected,
    ),
    (
        "CROSS_REGION_INGESTION_FAILED",
        FailureCategory::RoutingRejected,
    ),
    (
        "THIRD_ACCOUNT_HOP_DETECTED",
        FailureCategory::RoutingRejected,
    ),
    (
        "THIRD_REGION_HOP_DETECTED",
        FailureCategory::RoutingRejected,
    ),
];

/// Rule 3: keywords in `ERROR_MESSAGE`, matched lower-case, first match wins. AWS-side
/// permission phrases come before the endpoint's authentication words so that
/// "not authorized to perform" is never read as an endpoint's 401.
pub(crate) const KEYWORDS: &[(&str, FailureCategory)] = &[
    ("rate exceeded", FailureCategory::RateLimitExceeded),
    ("too many requests", FailureCategory::RateLimitExceeded),
    ("throttl", FailureCategory::RateLimitExceeded),
    ("timeout", FailureCategory::EndpointUnreachable),
    ("timed out", FailureCategory::EndpointUnreachable),
    ("socket closed", FailureCategory::EndpointUnreachable),
    ("connection refused", FailureCategory::EndpointUnreachable),
    (
        "connection was refused",
        FailureCategory::EndpointUnreachable,
    ),
    (
        "refused the connection",
        FailureCategory::EndpointUnreachable,
    ),
    ("econnrefused", FailureCategory::EndpointUnreachable),
    ("unable to connect", FailureCategory::EndpointUnreachable),
    ("could not connect", FailureCategory::EndpointUnreachable),
    ("failed to connect", FailureCategory::EndpointUnreachable),
    ("no route to host", FailureCategory::EndpointUnreachable),
    (
        "network is unreachable",
        FailureCategory::EndpointUnreachable,
    ),
    ("host is unreachable", FailureCategory::EndpointUnreachable),
    ("reset", FailureCategory::EndpointUnreachable),
    ("cannot be reached", FailureCategory::EndpointUnreachable),
    ("unknownhost", FailureCategory::EndpointUnreachable),
    (
        "name or service not known",
        FailureCategory::EndpointUnreachable,
    ),
    (
        "not authorized to perform",
        FailureCategory::PermissionDenied,
    ),
    ("accessdenied", FailureCategory::PermissionDenied),
    ("access denied", FailureCategory::PermissionDenied),
    ("unauthorized", FailureCategory::AuthenticationRejected),
    ("forbidden", FailureCategory::AuthenticationRejected),
    ("invalid token", FailureCategory::AuthenticationRejected),
    ("not found", FailureCategory::TargetNotFound),
    ("does not exist", FailureCategory::TargetNotFound),
    ("malformed", FailureCategory::PayloadMalformed),
    ("invalid json", FailureCategory::PayloadMalformed),
    ("size exceeded", FailureCategory::PayloadMalformed),
    ("too large", FailureCategory::PayloadMalformed),
];

/// Rule 1, first: error codes of the AWS services that are EventBridge targets (Lambda,
/// SQS, SNS, Kinesis, Data Firehose, Step Functions, API Gateway, ECS, CloudWatch Logs,
/// EventBridge), as their API references document them. When the message names one, it
/// decides over a bare HTTP status: a 403 with `AccessDeniedException` is the rule's role
/// or the target's policy, not the endpoint's credentials. Matched case-insensitively;
/// names not listed fall back to [`aws_code_category`]'s patterns.
pub(crate) const AWS_ERROR_CODES: &[(&str, FailureCategory)] = &[
    // Lambda Invoke.
    ("AccessDeniedException", FailureCategory::PermissionDenied),
    ("ResourceNotFoundException", FailureCategory::TargetNotFound),
    (
        "TooManyRequestsException",
        FailureCategory::RateLimitExceeded,
    ),
    ("EC2ThrottledException", FailureCategory::RateLimitExceeded),
    (
        "RequestTooLargeException",
        FailureCategory::PayloadMalformed,
    ),
    (
        "InvalidRequestContentException",
        FailureCategory::PayloadMalformed,
    ),
    (
        "UnsupportedMediaTypeException",
        FailureCategory::PayloadMalformed,
    ),
    (
        "InvalidParameterValueException",
        FailureCategory::PayloadMalformed,
    ),
    ("ServiceException", FailureCategory::TargetError),
    ("ResourceNotReadyException", FailureCategory::TargetError),
    ("ResourceConflictException", FailureCategory::TargetError),
    (
        "KMSAccessDeniedException",
        FailureCategory::PermissionDenied,
    ),
    ("KMSDisabledException", FailureCategory::PermissionDenied),
    ("KMSNotFoundException", FailureCategory::PermissionDenied),
    ("ENILimitReachedException", FailureCategory::TargetError),
    ("RecursiveInvocationException", FailureCategory::TargetError),
    // SQS SendMessage.
    (
        "AWS.SimpleQueueService.NonExistentQueue",
        FailureCategory::TargetNotFound,
    ),
    ("QueueDoesNotExist", FailureCategory::TargetNotFound),
    ("KmsAccessDenied", FailureCategory::PermissionDenied),
    ("KmsThrottled", FailureCategory::RateLimitExceeded),
    ("RequestThrottled", FailureCategory::RateLimitExceeded),
    ("InvalidMessageContents", FailureCategory::PayloadMalformed),
    ("InvalidParameterValue", FailureCategory::PayloadMalformed),
    ("AccessDenied", FailureCategory::PermissionDenied),
    // SNS Publish.
    ("AuthorizationError", FailureCategory::PermissionDenied),
    ("KMSAccessDenied", FailureCategory::PermissionDenied),
    ("NotFound", FailureCategory::TargetNotFound),
    ("Throttled", FailureCategory::RateLimitExceeded),
    ("InvalidParameter", FailureCategory::PayloadMalformed),
    ("EndpointDisabled", FailureCategory::TargetError),
    ("InternalError", FailureCategory::TargetError),
    // Kinesis PutRecord.
    (
        "ProvisionedThroughputExceededException",
        FailureCategory::RateLimitExceeded,
    ),
    ("KMSThrottlingException", FailureCategory::RateLimitExceeded),
    ("LimitExceededException", FailureCategory::RateLimitExceeded),
    // Data Firehose PutRecord ("ServiceUnavailableException: Slow down").
    (
        "ServiceUnavailableException",
        FailureCategory::RateLimitExceeded,
    ),
    (
        "InvalidArgumentException",
        FailureCategory::PayloadMalformed,
    ),
    (
        "InvalidKMSResourceException",
        FailureCategory::PermissionDenied,
    ),
    // Step Functions StartExecution.
    ("ExecutionLimitExceeded", FailureCategory::RateLimitExceeded),
    ("StateMachineDoesNotExist", FailureCategory::TargetNotFound),
    ("StateMachineDeleting", FailureCategory::TargetNotFound),
    ("InvalidExecutionInput", FailureCategory::PayloadMalformed),
    ("InvalidArn", FailureCategory::TargetNotFound),
    ("ExecutionAlreadyExists", FailureCategory::TargetError),
    // API Gateway.
    ("NotFoundException", FailureCategory::TargetNotFound),
    ("BadRequestException", FailureCategory::PayloadMalformed),
    (
        "UnauthorizedException",
        FailureCategory::AuthenticationRejected,
    ),
    // ECS RunTask.
    ("ClusterNotFoundException", FailureCategory::TargetNotFound),
    (
        "InvalidParameterException",
        FailureCategory::PayloadMalformed,
    ),
    (
        "PlatformUnknownException",
        FailureCategory::PayloadMalformed,
    ),
    ("ServerException", FailureCategory::TargetError),
    ("ClientException", FailureCategory::PayloadMalformed),
    // CloudWatch Logs PutLogEvents.
    ("DataAlreadyAcceptedException", FailureCategory::TargetError),
    (
        "InvalidSequenceTokenException",
        FailureCategory::TargetError,
    ),
    // EventBridge PutEvents (bus targets), and every service.
    ("ThrottlingException", FailureCategory::RateLimitExceeded),
    ("Throttling", FailureCategory::RateLimitExceeded),
    ("RequestLimitExceeded", FailureCategory::RateLimitExceeded),
    ("SlowDown", FailureCategory::RateLimitExceeded),
    ("InternalException", FailureCategory::TargetError),
    ("InternalFailure", FailureCategory::TargetError),
    ("ValidationException", FailureCategory::PayloadMalformed),
    ("ValidationError", FailureCategory::PayloadMalformed),
    ("SerializationException", FailureCategory::PayloadMalformed),
    (
        "UnrecognizedClientException",
        FailureCategory::PermissionDenied,
    ),
    (
        "InvalidSignatureException",
        FailureCategory::PermissionDenied,
    ),
    ("ExpiredTokenException", FailureCategory::PermissionDenied),
    ("UnauthorizedOperation", FailureCategory::PermissionDenied),
];

/// The category of an AWS error code: [`AWS_ERROR_CODES`], else by the words its name is
/// made of (`…Throttl…`, `TooManyRequests…`, `…AccessDenied…`, `…NotFound…`, `…TooLarge…`).
pub(crate) fn aws_code_category(code: &str) -> Option<FailureCategory> {
    if let Some((_, c)) = AWS_ERROR_CODES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(code))
    {
        return Some(*c);
    }
    let lower = code.to_ascii_lowercase();
    let has = |w: &str| lower.contains(w);
    if has("throttl") || has("toomanyrequests") || has("limitexceeded") || has("throughputexceeded")
    {
        Some(FailureCategory::RateLimitExceeded)
    } else if has("accessdenied") || has("notauthorized") || has("authorizationerror") {
        Some(FailureCategory::PermissionDenied)
    } else if has("notfound") || has("doesnotexist") || has("nonexistent") {
        Some(FailureCategory::TargetNotFound)
    } else if has("toolarge")
        || has("validation")
        || has("invalidparameter")
        || has("invalidrequest")
        || has("serialization")
    {
        Some(FailureCategory::PayloadMalformed)
    } else {
        None
    }
}

/// The AWS error codes in the forms the AWS SDKs print them.
static AWS_CODE_FORMS: LazyLock<[Regex; 4]> = LazyLock::new(|| {
    [
        // Java SDK v1: `(Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException; …)`.
        Regex::new(r"(?i)\berror code:\s*([A-Za-z][A-Za-z0-9._]*)").expect("regex"),
        // Boto / AWS CLI: `An error occurred (ThrottlingException) when calling the PutRecord operation`.
        Regex::new(r"(?i)an error occurred \(([A-Za-z][A-Za-z0-9._]*)\)").expect("regex"),
        // Go SDK v2: `operation error Lambda: Invoke, https response error StatusCode: 429, …, api error TooManyRequestsException: Rate exceeded`.
        Regex::new(r"(?i)\bapi error ([A-Za-z][A-Za-z0-9._]*)").expect("regex"),
        // Java SDK v2, JavaScript v3, .NET: `ResourceNotFoundException: Function not found`;
        // SQS's dotted codes: `AWS.SimpleQueueService.NonExistentQueue`.
        Regex::new(r"\b(AWS\.[A-Za-z]+\.[A-Za-z]+|[A-Z][A-Za-z0-9]*Exception)\b").expect("regex"),
    ]
});

/// The first AWS error code a message names, in any of the SDKs' forms, with its category.
pub(crate) fn find_aws_error_code(message: &str) -> Option<(String, FailureCategory)> {
    AWS_CODE_FORMS.iter().find_map(|form| {
        form.captures_iter(message).find_map(|c| {
            let code = c.get(1)?.as_str();
            aws_code_category(code).map(|category| (code.to_owned(), category))
        })
    })
}

/// Rule 1: the category an HTTP status stands for.
pub(crate) fn category_for_status(status: u16) -> FailureCategory {
    match status {
        429 => FailureCategory::RateLimitExceeded,
        401 | 403 | 407 => FailureCategory::AuthenticationRejected,
        408 | 502..=504 => FailureCategory::EndpointUnreachable,
        400 | 413 | 415 | 422 => FailureCategory::PayloadMalformed,
        404 | 410 => FailureCategory::TargetNotFound,
        // Any other 4xx or 5xx: the target was reached and answered with a failure.
        _ => FailureCategory::TargetError,
    }
}

/// Classifies one failure by the rules in `docs/contract.md` (in order, first match wins).
pub fn classify(failure: &FailureContext, body: BodyKind) -> Classification {
    let code = failure
        .error_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let message = failure.error_message.as_deref().unwrap_or("");
    let status = find_http_status(message);
    let http_status = status.as_ref().map(|s| s.code);
    let decided = |category, rule: Rule, matched: &str| Classification {
        category,
        evidence: Evidence {
            rule,
            matched: matched.to_owned(),
        },
        http_status,
    };
    let generic = code.is_none_or(|c| {
        GENERIC_ERROR_CODES
            .iter()
            .any(|g| g.eq_ignore_ascii_case(c))
    });

    // Rule 1: an AWS error code named in the message, then a bare status.
    if generic && let Some((aws_code, category)) = find_aws_error_code(message) {
        return decided(category, Rule::AwsErrorCode, &aws_code);
    }
    if generic && let Some(s) = &status {
        return decided(category_for_status(s.code), Rule::HttpStatus, &s.phrase);
    }
    // Rule 2.
    if let Some(code) = code
        && let Some((name, category)) = ERROR_CODES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(code))
    {
        return decided(*category, Rule::ErrorCode, name);
    }
    // Rule 3.
    if !message.is_empty() {
        let lower = message.to_ascii_lowercase();
        if let Some((keyword, category)) = KEYWORDS.iter().find(|(k, _)| lower.contains(k)) {
            return decided(*category, Rule::Keyword, keyword);
        }
    }
    if let Some(code) = code
        && code.eq_ignore_ascii_case("ERROR_FROM_TARGET")
    {
        return decided(
            FailureCategory::TargetError,
            Rule::GenericErrorCode,
            "ERROR_FROM_TARGET",
        );
    }
    // Rule 4.
    if !body.is_event() {
        return decided(
            FailureCategory::PayloadMalformed,
            Rule::BodyNotEvent,
            body.as_str(),
        );
    }
    let matched = match code {
        Some(c) => format!("errorCode {c} without a matching message"),
        None => "no errorCode, no errorMessage".to_owned(),
    };
    decided(FailureCategory::Unknown, Rule::NoEvidence, &matched)
}

/// An HTTP status found in a message, with the phrase that stated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusMatch {
    /// The status code, 400–599.
    pub code: u16,
    /// The text that stated it, e.g. `HTTP/1.1 502`.
    pub phrase: String,
}

/// A status after a word that says it is one: "status 429", "status code: 404",
/// "HTTP 503", "HTTP/1.1 502", "response code 401", "responded with 500", "returned 403",
/// JSON-ish `"statusCode":429`.
static AFTER_CUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b(?:status(?:[ _-]?code)?|http(?:/[0-9](?:\.[0-9])?)?(?:[ _-]?status)?(?:[ _-]?code)?|response[ _-]?(?:status|code)|responded\s+with(?:\s+(?:an?\s+)?(?:http\s+)?(?:status|code))?(?:\s+code)?|returned(?:\s+(?:an?\s+)?(?:http\s+)?(?:status|code))?(?:\s+code)?)["']?\s*(?:[:=]\s*)?["']?\s*\(?([0-9]{3})"#,
    )
    .expect("status regex compiles")
});

/// A status right before its reason phrase: "401 Unauthorized", "429 Too Many Requests".
static BEFORE_REASON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)([0-9]{3})\s+(?:bad request|unauthorized|payment required|forbidden|not found|method not allowed|not acceptable|proxy authentication required|request time-?out|conflict|gone|length required|precondition failed|payload too large|request entity too large|content too large|uri too long|unsupported media type|unprocessable (?:entity|content)|too many requests|internal server error|not implemented|bad gateway|service unavailable|gateway time-?out|http version not supported)\b",
    )
    .expect("reason regex compiles")
});

/// Finds an HTTP failure status (400–599) that the text states as a status. Digits that are
/// part of an identifier (ARN, UUID, function name, account id) never count: the number must
/// be exactly three digits standing alone, and the cue word must not itself be glued into an
/// identifier (`function:status-500`, `http-429-handler`).
pub(crate) fn find_http_status(message: &str) -> Option<StatusMatch> {
    if message.is_empty() {
        return None;
    }
    let bytes = message.as_bytes();
    // The number ends its token: end of text, a non-identifier byte, or sentence punctuation.
    let ends_token = |end: usize| match bytes.get(end) {
        None => true,
        Some(b'.' | b':') => bytes.get(end + 1).is_none_or(|n| n.is_ascii_whitespace()),
        Some(b) => !is_ident_byte(*b),
    };
    let starts_token = |start: usize| start == 0 || !is_ident_byte(bytes[start - 1]);
    let status_of = |digits: &str| {
        digits
            .parse::<u16>()
            .ok()
            .filter(|c| (400..=599).contains(c))
    };
    for caps in AFTER_CUE.captures_iter(message) {
        let (whole, num) = (caps.get(0)?, caps.get(1)?);
        let cue_start = whole.start();
        let glued =
            cue_start > 0 && matches!(bytes[cue_start - 1], b':' | b'/' | b'-' | b'_' | b'.');
        if glued || !ends_token(num.end()) {
            continue;
        }
        if let Some(code) = status_of(num.as_str()) {
            return Some(StatusMatch {
                code,
                phrase: whole.as_str().trim().to_owned(),
            });
        }
    }
    for caps in BEFORE_REASON.captures_iter(message) {
        let (whole, num) = (caps.get(0)?, caps.get(1)?);
        if !starts_token(num.start()) || !ends_token(num.end()) {
            continue;
        }
        if let Some(code) = status_of(num.as_str()) {
            return Some(StatusMatch {
                code,
                phrase: whole.as_str().to_owned(),
            });
        }
    }
    None
}

/// Bytes that glue a number into an identifier: letters, digits and the separators used in
/// ARNs, UUIDs, function names and hostnames.
fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'/' | b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureCategory::*;

    fn failure(code: Option<&str>, message: Option<&str>) -> FailureContext {
        FailureContext {
            error_code: code.map(str::to_owned),
            error_message: message.map(str::to_owned),
            target_arn: Some("arn:aws:events:us-east-1:111122223333:api-destination/crm/7e08279e-244f-4443-a5f4-b9c262da4d81".into()),
            ..FailureContext::default()
        }
    }

    fn category(code: Option<&str>, message: Option<&str>) -> FailureCategory {
        classify(&failure(code, message), BodyKind::GenesysEvent).category
    }

    #[test]
    fn every_documented_error_code_has_a_category() {
        // The error codes EventBridge documents for dead-lettered events, with the category each must land in when
        // the message says nothing more.
        let expected = [
            ("CONNECTION_FAILURE", EndpointUnreachable),
            ("CROSS_ACCOUNT_INGESTION_FAILED", RoutingRejected),
            ("CROSS_REGION_INGESTION_FAILED", RoutingRejected),
            ("ERROR_FROM_TARGET", TargetError),
            ("EVENTS_IN_BATCH_REQUEST_REJECTED", TargetError),
            ("FAILED_TO_ASSUME_ROLE", PermissionDenied),
            ("INTERNAL_ERROR", Unknown),
            ("INVALID_JSON", PayloadMalformed),
            ("INVALID_PARAMETER", PayloadMalformed),
            ("NO_PERMISSIONS", PermissionDenied),
            ("NO_RESOURCE", TargetNotFound),
            ("RESOURCE_ALREADY_EXISTS", TargetError),
            ("RESOURCE_LIMIT_EXCEEDED", RateLimitExceeded),
            ("RESOURCE_MODIFICATION_COLLISION", TargetError),
            ("SDK_CLIENT_ERROR", Unknown),
            ("THIRD_ACCOUNT_HOP_DETECTED", RoutingRejected),
            ("THIRD_REGION_HOP_DETECTED", RoutingRejected),
            ("THROTTLING", RateLimitExceeded),
            ("TIMEOUT", EndpointUnreachable),
            ("TRANSIENT_ASSUME_ROLE", PermissionDenied),
            ("UNKNOWN", Unknown),
        ];
        // A transient role assumption keeps its category but gets its own advice.
        let (action, as_is) = PermissionDenied.advice(Some("TRANSIENT_ASSUME_ROLE"));
        assert!(action.starts_with("Transient"), "{action}");
        assert_eq!(as_is, "yes");
        assert_eq!(
            PermissionDenied.advice(Some("NO_PERMISSIONS")).0,
            PermissionDenied.recommended_action()
        );
        for (code, want) in expected {
            let got = classify(
                &failure(Some(code), Some("Something failed")),
                BodyKind::GenesysEvent,
            );
            assert_eq!(got.category, want, "{code}");
        }
    }

    #[test]
    fn specific_codes_cite_the_code_as_evidence() {
        let c = classify(&failure(Some("THROTTLING"), None), BodyKind::GenesysEvent);
        assert_eq!(
            c.evidence,
            Evidence {
                rule: Rule::ErrorCode,
                matched: "THROTTLING".into()
            }
        );
    }

    #[test]
    fn a_stated_status_decides_for_generic_codes() {
        let cases = [
            (
                "ERROR_FROM_TARGET",
                "Endpoint returned HTTP 429 Too Many Requests",
                RateLimitExceeded,
                429,
            ),
            (
                "UNKNOWN",
                "Request failed with status code 401",
                AuthenticationRejected,
                401,
            ),
            (
                "SDK_CLIENT_ERROR",
                "HTTP/1.1 503 Service Unavailable",
                EndpointUnreachable,
                503,
            ),
            ("INTERNAL_ERROR", "response code: 404", TargetNotFound, 404),
            (
                "ERROR_FROM_TARGET",
                "endpoint responded with 500",
                TargetError,
                500,
            ),
            (
                "ERROR_FROM_TARGET",
                "422 Unprocessable Entity",
                PayloadMalformed,
                422,
            ),
            (
                "ERROR_FROM_TARGET",
                "{\"statusCode\":403,\"message\":\"nope\"}",
                AuthenticationRejected,
                403,
            ),
            (
                "ERROR_FROM_TARGET",
                "Proxy said 407 Proxy Authentication Required",
                AuthenticationRejected,
                407,
            ),
            (
                "ERROR_FROM_TARGET",
                "server returned 410.",
                TargetNotFound,
                410,
            ),
            ("ERROR_FROM_TARGET", "status=505", TargetError, 505),
            ("ERROR_FROM_TARGET", "(status 413)", PayloadMalformed, 413),
        ];
        for (code, message, want, status) in cases {
            let c = classify(&failure(Some(code), Some(message)), BodyKind::GenesysEvent);
            assert_eq!(
                (c.category, c.http_status),
                (want, Some(status)),
                "{message}"
            );
            assert_eq!(c.evidence.rule, Rule::HttpStatus, "{message}");
        }
    }

    #[test]
    fn a_missing_code_is_generic() {
        assert_eq!(category(None, Some("returned 429")), RateLimitExceeded);
    }

    #[test]
    fn a_specific_code_wins_over_a_status() {
        let c = classify(
            &failure(Some("NO_PERMISSIONS"), Some("status 500")),
            BodyKind::GenesysEvent,
        );
        assert_eq!(c.category, PermissionDenied);
        assert_eq!(c.http_status, Some(500), "the status is still reported");
    }

    #[test]
    fn numbers_inside_identifiers_are_not_statuses() {
        let traps = [
            // A function whose name contains 401.
            "Failed to invoke arn:aws:lambda:us-east-1:111122223333:function:handler-401 (function error)",
            // A UUID containing 429.
            "Delivery to api-destination/crm/429a1b2c-0429-4429-a429-429429429429 failed",
            // An account id and a function called status-500.
            "Target arn:aws:lambda:eu-west-1:429401403500:function:status-500 failed",
            // A cue glued into an identifier.
            "function:http-503-proxy failed",
            "see https://example.com/status/404/help",
            // A longer number after a cue.
            "status 4290",
            "returned 401234 bytes",
        ];
        for message in traps {
            assert_eq!(find_http_status(message), None, "{message}");
        }
    }

    #[test]
    fn a_401_in_a_function_name_does_not_make_an_authentication_failure() {
        let c = classify(
            &failure(
                Some("ERROR_FROM_TARGET"),
                Some("arn:aws:lambda:us-east-1:111122223333:function:auth-401-checker threw"),
            ),
            BodyKind::GenesysEvent,
        );
        assert_eq!(c.category, TargetError);
        assert_eq!(c.http_status, None);
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let cases = [
            ("RATE EXCEEDED for target", RateLimitExceeded),
            ("Too Many Requests", RateLimitExceeded),
            ("Request was THROTTLED", RateLimitExceeded),
            ("timeout calling endpoint", EndpointUnreachable),
            ("Operation Timed Out", EndpointUnreachable),
            ("socket closed.", EndpointUnreachable),
            ("Connection Refused", EndpointUnreachable),
            ("connection reset by peer", EndpointUnreachable),
            (
                "API destination endpoint cannot be reached.",
                EndpointUnreachable,
            ),
            (
                "java.net.UnknownHostException: crm.example.com",
                EndpointUnreachable,
            ),
            ("Name or service not known", EndpointUnreachable),
            ("UNAUTHORIZED", AuthenticationRejected),
            ("forbidden by policy", AuthenticationRejected),
            ("invalid token", AuthenticationRejected),
            (
                "User: arn:aws:sts::1:assumed-role/x is not authorized to perform: lambda:InvokeFunction",
                PermissionDenied,
            ),
            ("access denied to the queue", PermissionDenied),
            (
                "the connection was refused by the host",
                EndpointUnreachable,
            ),
            ("Queue not found", TargetNotFound),
            ("Function does not exist", TargetNotFound),
            ("malformed input", PayloadMalformed),
            ("Invalid JSON in body", PayloadMalformed),
            ("Event size exceeded", PayloadMalformed),
            ("entity too large", PayloadMalformed),
        ];
        for (message, want) in cases {
            let c = classify(
                &failure(Some("UNKNOWN"), Some(message)),
                BodyKind::GenesysEvent,
            );
            assert_eq!(c.category, want, "{message}");
            assert_eq!(c.evidence.rule, Rule::Keyword, "{message}");
        }
    }

    /// Every row of the AWS error-code table, in each form the AWS SDKs print an error
    /// (Java v1 `Error Code:`, boto/CLI `An error occurred (X)`, Go v2 `api error X:`, and
    /// the bare `XException:` of Java v2 / JavaScript v3 / .NET where the name allows).
    #[test]
    fn every_aws_error_code_decides_in_every_sdk_form() {
        for (code, want) in AWS_ERROR_CODES {
            let mut forms = vec![
                format!(
                    "Failed to invoke target (Service: AWSLambda; Status Code: 403; Error Code: {code}; Request ID: 5f2c-1)"
                ),
                format!("An error occurred ({code}) when calling the Invoke operation: refused"),
                format!(
                    "operation error Lambda: Invoke, https response error StatusCode: 400, RequestID: 1, api error {code}: refused"
                ),
            ];
            if code.ends_with("Exception") {
                forms.push(format!("{code}: refused by the service"));
            }
            for message in forms {
                let c = classify(
                    &failure(Some("UNKNOWN"), Some(&message)),
                    BodyKind::GenesysEvent,
                );
                assert_eq!(c.category, *want, "{message}");
                assert_eq!(c.evidence.rule, Rule::AwsErrorCode, "{message}");
                assert!(c.evidence.matched.eq_ignore_ascii_case(code), "{message}");
            }
        }
    }

    /// Realistic texts. The first is the issue's own: a generic code, "Status Code: 403"
    /// and AccessDeniedException — the rule's role or the target's policy, not the
    /// endpoint's credentials.
    #[test]
    fn the_aws_error_code_decides_over_a_bare_status() {
        let cases = [
            (
                "User is not allowed to invoke (Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException; Request ID: 7a1b)",
                PermissionDenied,
            ),
            (
                "An error occurred (ThrottlingException) when calling the PutEvents operation (reached max retries: 4): Rate exceeded",
                RateLimitExceeded,
            ),
            (
                "RequestEntityTooLargeException: Request must be smaller than 6291456 bytes for the InvokeFunction operation",
                PayloadMalformed,
            ),
            (
                "api error TooManyRequestsException: Rate Exceeded. StatusCode: 429",
                RateLimitExceeded,
            ),
            (
                "AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist for this wsdl version.",
                TargetNotFound,
            ),
            (
                "ProvisionedThroughputExceededException: Rate exceeded for shard shardId-000000000001 in stream genesys",
                RateLimitExceeded,
            ),
            (
                "KMSAccessDeniedException: Lambda was unable to decrypt the environment variables because KMS access was denied (Status Code: 502)",
                PermissionDenied,
            ),
        ];
        for (message, want) in cases {
            let c = classify(
                &failure(Some("ERROR_FROM_TARGET"), Some(message)),
                BodyKind::GenesysEvent,
            );
            assert_eq!(c.category, want, "{message}");
            assert_eq!(c.evidence.rule, Rule::AwsErrorCode, "{message}");
        }
        // A name that is no AWS error code leaves the status to decide.
        let c = classify(
            &failure(Some("UNKNOWN"), Some("MyCustomException thrown, HTTP 503")),
            BodyKind::GenesysEvent,
        );
        assert_eq!(
            (c.category, c.evidence.rule),
            (EndpointUnreachable, Rule::HttpStatus)
        );
    }

    #[test]
    fn the_real_socket_timeout_sample_is_unreachable() {
        let c = classify(
            &failure(
                Some("UNKNOWN"),
                Some(
                    "Unable to invoke ApiDestination endpoint: Timeout calling endpoint for API Destination: socket closed.",
                ),
            ),
            BodyKind::GenesysEvent,
        );
        assert_eq!(c.category, EndpointUnreachable);
        assert_eq!(
            c.evidence,
            Evidence {
                rule: Rule::Keyword,
                matched: "timeout".into()
            }
        );
    }

    #[test]
    fn error_from_target_without_status_or_keyword_is_a_target_error() {
        let c = classify(
            &failure(
                Some("ERROR_FROM_TARGET"),
                Some("Lambda function returned an error"),
            ),
            BodyKind::GenesysEvent,
        );
        assert_eq!(c.category, TargetError);
        assert_eq!(c.evidence.rule, Rule::GenericErrorCode);
    }

    #[test]
    fn no_evidence_and_a_non_event_body_is_a_payload_problem() {
        for kind in [
            BodyKind::NotJson,
            BodyKind::NotAnEvent,
            BodyKind::CustomBusFailure,
        ] {
            let c = classify(&FailureContext::default(), kind);
            assert_eq!(c.category, PayloadMalformed, "{kind:?}");
            assert_eq!(c.evidence.rule, Rule::BodyNotEvent);
        }
    }

    #[test]
    fn no_evidence_and_an_event_body_is_unknown() {
        for kind in [
            BodyKind::GenesysEvent,
            BodyKind::OtherEvent,
            BodyKind::FlatInteraction,
        ] {
            let c = classify(&FailureContext::default(), kind);
            assert_eq!(c.category, Unknown, "{kind:?}");
            assert_eq!(c.evidence.rule, Rule::NoEvidence);
        }
    }

    #[test]
    fn unknown_future_codes_fall_through_to_keywords() {
        assert_eq!(
            category(Some("SOME_NEW_CODE"), Some("rate exceeded")),
            RateLimitExceeded
        );
        assert_eq!(
            category(Some("SOME_NEW_CODE"), Some("nothing useful")),
            Unknown
        );
    }

    #[test]
    fn codes_match_regardless_of_case_and_blank_codes_count_as_missing() {
        assert_eq!(category(Some("throttling"), None), RateLimitExceeded);
        assert_eq!(category(Some("  "), Some("HTTP 503")), EndpointUnreachable);
    }

    #[test]
    fn every_status_class_maps() {
        assert_eq!(category_for_status(429), RateLimitExceeded);
        for s in [401, 403, 407] {
            assert_eq!(category_for_status(s), AuthenticationRejected);
        }
        for s in [502, 503, 504] {
            assert_eq!(category_for_status(s), EndpointUnreachable);
        }
        for s in [400, 413, 415, 422] {
            assert_eq!(category_for_status(s), PayloadMalformed);
        }
        for s in [404, 410] {
            assert_eq!(category_for_status(s), TargetNotFound);
        }
        for s in [500, 501, 505, 599, 409] {
            assert_eq!(category_for_status(s), TargetError);
        }
    }

    #[test]
    fn success_and_redirect_codes_are_not_failure_statuses() {
        assert_eq!(find_http_status("status 200"), None);
        assert_eq!(find_http_status("returned 302"), None);
    }

    #[test]
    fn category_names_are_the_contract_names() {
        let names: Vec<String> = FailureCategory::ALL
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "RATE_LIMIT_EXCEEDED",
                "AUTHENTICATION_REJECTED",
                "ENDPOINT_UNREACHABLE",
                "PAYLOAD_MALFORMED",
                "UNKNOWN",
                "PERMISSION_DENIED",
                "TARGET_NOT_FOUND",
                "TARGET_ERROR",
                "ROUTING_REJECTED"
            ]
        );
        for c in FailureCategory::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
