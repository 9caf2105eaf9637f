//! Reading reports and payloads: local files, and S3 objects when a client is given.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::{Location, ReportArg, is_report_key};
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

    /// Every report below `s3://bucket/prefix` from the first key after `start_after`,
    /// each handed to `found` as its page of the listing arrives, in key order (which is
    /// date order); how many. S3 lists in key order, so a day partition
    /// (`reports/dt=YYYY-MM-DD/`) before `start_after` is never listed.
    async fn list_each(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<String>,
        found: &mut impl FnMut(Location),
    ) -> Result<usize, String> {
        let s3 = self.s3()?;
        let mut count = 0;
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after)
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
                    count += 1;
                    found(Location::S3 {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    });
                }
            }
        }
        Ok(count)
    }

    /// Where the reports the arguments name are, in order: S3 prefixes listed (from the
    /// day partition of `since` on, when given), local folders walked.
    pub async fn locate(
        &self,
        args: &[ReportArg],
        since: Option<NaiveDate>,
    ) -> Result<Vec<Location>, String> {
        let mut locations = Vec::new();
        self.locate_each(args, since, |l| locations.push(l)).await?;
        Ok(locations)
    }

    /// [`Reader::locate`], handing each report to `found` as soon as it is known (an S3
    /// listing's page at a time), so reading can start before the listing ends.
    pub async fn locate_each(
        &self,
        args: &[ReportArg],
        since: Option<NaiveDate>,
        mut found: impl FnMut(Location),
    ) -> Result<(), String> {
        for arg in args {
            match arg {
                ReportArg::One(l) => found(l.clone()),
                ReportArg::Folder(dir) => {
                    let below = reports_below(dir)?;
                    if below.is_empty() {
                        return Err(format!("{}: no reports below it", dir.display()));
                    }
                    below.into_iter().map(Location::File).for_each(&mut found);
                }
                ReportArg::Prefix { bucket, prefix } => {
                    if self.list_by_day(bucket, prefix, since, &mut found).await? == 0 {
                        return Err(format!("s3://{bucket}/{prefix}: no reports below it"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The reports below a prefix, handed to `found`; how many. With `since`, the
    /// Lambda's layout is listed from that day's partition on: the prefix's own
    /// `reports/` folder (or the prefix, when it is one), from `dt=<since>`; when that
    /// folder holds no report, the whole prefix.
    async fn list_by_day(
        &self,
        bucket: &str,
        prefix: &str,
        since: Option<NaiveDate>,
        found: &mut impl FnMut(Location),
    ) -> Result<usize, String> {
        let Some(day) = since else {
            return self.list_each(bucket, prefix, None, found).await;
        };
        let reports = if prefix.is_empty() || prefix.ends_with('/') {
            if prefix.ends_with("reports/") {
                prefix.to_owned()
            } else {
                format!("{prefix}reports/")
            }
        } else {
            return self.list_each(bucket, prefix, None, found).await;
        };
        let from_day = format!("{reports}dt={day}");
        let count = self
            .list_each(bucket, &reports, Some(from_day), found)
            .await?;
        if count > 0 || reports == prefix {
            return Ok(count);
        }
        self.list_each(bucket, prefix, None, found).await
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

/// The reports below a local folder (`report.json`, `reports/…/*.json`), in path order.
fn reports_below(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", folder.display()))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if kind.is_dir() {
                folders.push(path);
            } else if kind.is_file() {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                let key: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if is_report_key(&key.join("/")) && !key.iter().any(|c| c == "replay") {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    Ok(found)
}
