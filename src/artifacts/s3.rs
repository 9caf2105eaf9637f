//! The S3 [`ArtifactStore`] used by the Lambda.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use futures::future::BoxFuture;

use super::{Artifact, ArtifactStore, StoreError};

/// Writes artifacts to one bucket, encrypted at rest (SSE-S3, or SSE-KMS with a key).
#[derive(Debug, Clone)]
pub(crate) struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    kms_key_id: Option<String>,
}

impl S3Store {
    /// A store writing to `bucket`; with `kms_key_id`, objects use SSE-KMS with that key.
    pub(crate) fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        kms_key_id: Option<String>,
    ) -> S3Store {
        S3Store {
            client,
            bucket: bucket.into(),
            kms_key_id,
        }
    }
}

/// Whether S3 needs path-style addressing: an endpoint override is set (a local emulator
/// on an IP address has no virtual-host DNS) or `S3_FORCE_PATH_STYLE=true`.
pub fn path_style_from_env() -> bool {
    let overridden = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
    overridden || std::env::var("S3_FORCE_PATH_STYLE").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The S3 client, path-style when asked.
pub fn s3_client(sdk: &aws_config::SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// S3 user metadata must be ASCII; anything else is replaced so the write never fails on it.
fn metadata_value(v: &str) -> String {
    v.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

impl ArtifactStore for S3Store {
    fn put<'a>(&'a self, artifact: &'a Artifact) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut request = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&artifact.key)
                .body(ByteStream::from(artifact.body.clone()))
                .content_type(artifact.content_type);
            request = match &self.kms_key_id {
                Some(key) => request
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .ssekms_key_id(key),
                None => request.server_side_encryption(ServerSideEncryption::Aes256),
            };
            for (name, value) in &artifact.metadata {
                request = request.metadata(*name, metadata_value(value));
            }
            request.send().await.map(|_| ()).map_err(|e| {
                let reason = match (e.code(), e.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_owned(),
                    _ => crate::aws_error::one_line(&DisplayErrorContext(&e).to_string()),
                };
                StoreError {
                    key: format!("s3://{}/{}", self.bucket, artifact.key),
                    reason,
                }
            })
        })
    }
}
