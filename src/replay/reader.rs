//! Reading reports and payloads: local files, and S3 objects when a client is given.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::select::{Location, is_report_key};
use crate::aws_error::one_line;

/// The largest report or payload read (a payload is at most 1 MiB; a report of a
/// 10,000-record batch is about 25 MB).
const MAX_READ: u64 = 512 * 1024 * 1024;

/// Reads reports and payloads from files, and from S3 when a client is given.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    s3: Option<aws_sdk_s3::Client>,
}

impl Reader {
    /// A reader of local files only.
    pub fn local() -> Reader {
        Reader { s3: None }
    }

    /// A reader of local files and S3 objects.
    pub fn with_s3(s3: aws_sdk_s3::Client) -> Reader {
        Reader { s3: Some(s3) }
    }

    /// The bytes at `location`.
    pub async fn read(&self, location: &Location) -> Result<Vec<u8>, String> {
        match location {
            Location::File(path) => {
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if meta.len() > MAX_READ {
                    return Err(format!("{}: larger than {MAX_READ} bytes", path.display()));
                }
                tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))
            }
            Location::S3 { bucket, key } => {
                let s3 = self.s3()?;
                let out = s3
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| s3_error(location, e))?;
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| format!("{location}: {e}"))?;
                Ok(bytes.into_bytes().to_vec())
            }
        }
    }

    /// Every report below `s3://bucket/prefix`, in key order (which is date order).
    pub async fn list_reports(&self, bucket: &str, prefix: &str) -> Result<Vec<Location>, String> {
        let s3 = self.s3()?;
        let mut found = Vec::new();
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                s3_error(
                    &Location::S3 {
                        bucket: bucket.to_owned(),
                        key: prefix.to_owned(),
                    },
                    e,
                )
            })?;
            for object in page.contents() {
                if let Some(key) = object.key().filter(|k| is_report_key(k)) {
                    found.push(Location::S3 {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    });
                }
            }
        }
        found.sort_by_key(|l| l.to_string());
        Ok(found)
    }

    fn s3(&self) -> Result<&aws_sdk_s3::Client, String> {
        self.s3
            .as_ref()
            .ok_or_else(|| "S3 is not configured for this run".to_owned())
    }
}

fn s3_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    location: &Location,
    e: SdkError<E>,
) -> String {
    let status = e.raw_response().map(|r| r.status().as_u16());
    match (e.code(), status) {
        (Some("NoSuchKey"), _) | (_, Some(404)) => format!("{location}: no such object"),
        (Some("NoSuchBucket"), _) => format!("{location}: no such bucket"),
        (Some(code), _) if code.contains("AccessDenied") => {
            format!("{location}: access denied (s3:GetObject / s3:ListBucket)")
        }
        (_, Some(403)) => format!("{location}: access denied (s3:GetObject / s3:ListBucket)"),
        _ => format!(
            "{location}: {}",
            one_line(&DisplayErrorContext(&e).to_string())
        ),
    }
}
