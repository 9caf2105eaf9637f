//! Reading reports and payloads: local files, and S3 objects when a client is given.

use std::path::{Path, PathBuf};

use std::time::Duration;

use aws_smithy_types::error::display::DisplayErrorContext;

use chrono::NaiveDate;

use super::{Location, ReportArg, is_report_key};
use crate::aws_error::{AwsError, one_line, within};

/// The largest report or payload read (a payload is at most 1 MiB; a report of a
/// 10,000-record batch is about 25 MB).
const MAX_READ: u64 = 512 * 1024 * 1024;

/// How long one S3 call may take: a `GetObject` (its answer, then its body again) or one
/// page of a `ListObjectsV2` listing. A report of a 10,000-record batch (about 25 MB)
/// reads in well under a second inside AWS; a hung S3 (or a proxy that accepts and never
/// answers) ends the read with [`ReadError::TimedOut`] instead of hanging the command or
/// the invocation.
pub(super) const S3_CALL_WITHIN: Duration = Duration::from_secs(30);

/// Why a report, a payload or a listing could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A local file or folder could not be read.
    File {
        /// The file or folder.
        path: PathBuf,
        /// Why (said in the line, so not its `source()` too).
        error: std::io::Error,
    },
    /// A local file larger than the most read.
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// No object (or nothing at all) at the location.
    NotFound {
        /// Where.
        location: Location,
    },
    /// The bucket does not exist.
    NoBucket {
        /// Where.
        location: Location,
    },
    /// S3 refused the read or the listing.
    Denied {
        /// Where.
        location: Location,
        /// The service's code, when it said one.
        code: Option<String>,
    },
    /// Another S3 failure, as one line.
    S3 {
        /// Where.
        location: Location,
        /// The SDK's error, as one line.
        line: String,
        /// The SDK's error (said in the line, so not its `source()` too).
        sdk: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object's body broke off.
    Body {
        /// Where.
        location: Location,
        /// Why (said in the line, so not its `source()` too).
        error: aws_smithy_types::byte_stream::error::Error,
    },
    /// S3 did not answer `call` within `after`.
    TimedOut {
        /// Where.
        location: Location,
        /// The call: `GetObject` or `ListObjectsV2`.
        call: String,
        /// The bound.
        after: Duration,
    },
    /// An S3 location without an S3 client.
    NoS3,
    /// A folder or prefix with no report below it.
    NoReports {
        /// The folder or `s3://bucket/prefix`.
        below: String,
    },
}

impl ReadError {
    /// Where it happened (a path, an `s3://` location), when it is one place.
    pub fn place(&self) -> Option<String> {
        match self {
            ReadError::File { path, .. } | ReadError::TooLarge { path } => {
                Some(path.display().to_string())
            }
            ReadError::NotFound { location }
            | ReadError::NoBucket { location }
            | ReadError::Denied { location, .. }
            | ReadError::S3 { location, .. }
            | ReadError::Body { location, .. }
            | ReadError::TimedOut { location, .. } => Some(location.to_string()),
            ReadError::NoReports { below } => Some(below.clone()),
            ReadError::NoS3 => None,
        }
    }

    /// What went wrong, without where.
    pub fn reason(&self) -> String {
        match self {
            ReadError::File { error, .. } => error.to_string(),
            ReadError::TooLarge { .. } => format!("larger than {MAX_READ} bytes"),
            ReadError::NotFound { .. } => "no such object".to_owned(),
            ReadError::NoBucket { .. } => "no such bucket".to_owned(),
            ReadError::Denied { .. } => "access denied (s3:GetObject / s3:ListBucket)".to_owned(),
            ReadError::S3 { line, .. } => line.clone(),
            ReadError::Body { error, .. } => error.to_string(),
            ReadError::TimedOut { call, after, .. } => {
                format!("{call}: no answer within {after:?}")
            }
            ReadError::NoS3 => "S3 is not configured for this run".to_owned(),
            ReadError::NoReports { .. } => "no reports below it".to_owned(),
        }
    }
}

/// `PLACE: REASON`, or the reason alone.
impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.place() {
            Some(place) => write!(f, "{place}: {}", self.reason()),
            None => f.write_str(&self.reason()),
        }
    }
}

impl From<ReadError> for String {
    fn from(e: ReadError) -> String {
        e.to_string()
    }
}

/// Reads reports and payloads from files, and from S3 when a client is given; each S3
/// call bounded by [`S3_CALL_WITHIN`] (or [`Reader::each_call_within`]).
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    s3: Option<aws_sdk_s3::Client>,
    per_call: Duration,
}

impl Default for Reader {
    fn default() -> Reader {
        Reader::local()
    }
}

impl Reader {
    /// A reader of local files only.
    pub(crate) fn local() -> Reader {
        Reader {
            s3: None,
            per_call: S3_CALL_WITHIN,
        }
    }

    /// A reader of local files and S3 objects.
    pub(crate) fn with_s3(s3: aws_sdk_s3::Client) -> Reader {
        Reader {
            s3: Some(s3),
            per_call: S3_CALL_WITHIN,
        }
    }

    /// The same reader with each S3 call bounded by `after`.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn each_call_within(self, after: Duration) -> Reader {
        Reader {
            per_call: after,
            ..self
        }
    }

    /// The bytes at `location`.
    pub(crate) async fn read(&self, location: &Location) -> Result<Vec<u8>, ReadError> {
        match location {
            Location::File(path) => {
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| file_error(path, e))?;
                if meta.len() > MAX_READ {
                    return Err(ReadError::TooLarge { path: path.clone() });
                }
                tokio::fs::read(path).await.map_err(|e| file_error(path, e))
            }
            Location::S3 { bucket, key } => {
                let s3 = self.s3()?;
                let call = s3.get_object().bucket(bucket).key(key).send();
                let out = within("GetObject", self.per_call, call)
                    .await
                    .map_err(|e| s3_error(location, e))?;
                let bytes = tokio::time::timeout(self.per_call, out.body.collect())
                    .await
                    .map_err(|_| ReadError::TimedOut {
                        location: location.clone(),
                        call: "GetObject".to_owned(),
                        after: self.per_call,
                    })?
                    .map_err(|error| ReadError::Body {
                        location: location.clone(),
                        error,
                    })?;
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
    ) -> Result<usize, ReadError> {
        let s3 = self.s3()?;
        let mut count = 0;
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_start_after(start_after)
            .into_paginator()
            .send();
        let page_of = |e| {
            s3_error(
                &Location::S3 {
                    bucket: bucket.to_owned(),
                    key: prefix.to_owned(),
                },
                e,
            )
        };
        while let Some(page) = within("ListObjectsV2", self.per_call, async {
            pages.next().await.transpose()
        })
        .await
        .map_err(page_of)?
        {
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
    pub(crate) async fn locate(
        &self,
        args: &[ReportArg],
        since: Option<NaiveDate>,
    ) -> Result<Vec<Location>, ReadError> {
        let mut locations = Vec::new();
        self.locate_each(args, since, |l| locations.push(l)).await?;
        Ok(locations)
    }

    /// [`Reader::locate`], handing each report to `found` as soon as it is known (an S3
    /// listing's page at a time), so reading can start before the listing ends.
    pub(crate) async fn locate_each(
        &self,
        args: &[ReportArg],
        since: Option<NaiveDate>,
        mut found: impl FnMut(Location),
    ) -> Result<(), ReadError> {
        for arg in args {
            match arg {
                ReportArg::One(l) => found(l.clone()),
                ReportArg::Folder(dir) => {
                    let below = reports_below(dir)?;
                    if below.is_empty() {
                        return Err(ReadError::NoReports {
                            below: dir.display().to_string(),
                        });
                    }
                    below.into_iter().map(Location::File).for_each(&mut found);
                }
                ReportArg::Prefix { bucket, prefix } => {
                    if self.list_by_day(bucket, prefix, since, &mut found).await? == 0 {
                        return Err(ReadError::NoReports {
                            below: format!("s3://{bucket}/{prefix}"),
                        });
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
    ) -> Result<usize, ReadError> {
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

    fn s3(&self) -> Result<&aws_sdk_s3::Client, ReadError> {
        self.s3.as_ref().ok_or(ReadError::NoS3)
    }
}

fn file_error(path: &Path, error: std::io::Error) -> ReadError {
    ReadError::File {
        path: path.to_path_buf(),
        error,
    }
}

/// What S3's failure (or silence) means for a read at `location`.
fn s3_error(location: &Location, e: AwsError) -> ReadError {
    let location = location.clone();
    let (code, status) = (e.code().map(str::to_owned), e.status());
    let sdk = match e {
        AwsError::TimedOut { action, after } => {
            return ReadError::TimedOut {
                location,
                call: action,
                after,
            };
        }
        AwsError::Failed { sdk, .. } => sdk,
    };
    match (code, status) {
        (Some(c), _) if c == "NoSuchKey" => ReadError::NotFound { location },
        (_, Some(404)) => ReadError::NotFound { location },
        (Some(c), _) if c == "NoSuchBucket" => ReadError::NoBucket { location },
        (Some(c), _) if c.contains("AccessDenied") => ReadError::Denied {
            location,
            code: Some(c),
        },
        (code, Some(403)) => ReadError::Denied { location, code },
        _ => ReadError::S3 {
            location,
            line: one_line(&DisplayErrorContext(sdk.as_ref()).to_string()),
            sdk,
        },
    }
}

/// The reports below a local folder (`report.json`, `reports/…/*.json`), in path order.
fn reports_below(dir: &Path) -> Result<Vec<PathBuf>, ReadError> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| file_error(&folder, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| file_error(&folder, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| file_error(&path, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws_error::shapes;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::client::result::SdkError;

    /// S3 accepts the connection and never answers: the read and the listing each end
    /// with the call named, within their bound.
    #[tokio::test]
    async fn a_hung_s3_is_a_timeout_naming_the_call_not_a_hung_read() {
        let sdk = shapes::hole_sdk().await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        );
        let after = Duration::from_millis(300);
        let reader = Reader::with_s3(s3).each_call_within(after);
        let started = std::time::Instant::now();
        let e = reader.read(&at()).await.unwrap_err();
        assert!(matches!(&e, ReadError::TimedOut { call, .. } if call == "GetObject"));
        assert_eq!(
            e.to_string(),
            "s3://b/reports/x.json: GetObject: no answer within 300ms"
        );
        let prefix = ReportArg::Prefix {
            bucket: "b".into(),
            prefix: "reports/".into(),
        };
        let e = reader.locate(&[prefix], None).await.unwrap_err();
        assert!(matches!(&e, ReadError::TimedOut { call, .. } if call == "ListObjectsV2"));
        assert_eq!(
            e.to_string(),
            "s3://b/reports/: ListObjectsV2: no answer within 300ms"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    fn failed(e: SdkError<GetObjectError, HttpResponse>) -> AwsError {
        AwsError::from_sdk("GetObject", e)
    }

    fn at() -> Location {
        Location::S3 {
            bucket: "b".into(),
            key: "reports/x.json".into(),
        }
    }

    #[test]
    fn s3s_answers_become_what_went_wrong() {
        let denied = GetObjectError::generic(shapes::meta("AccessDenied", "Access Denied"));
        let denied = s3_error(&at(), failed(shapes::service(denied, 403)));
        assert!(matches!(&denied, ReadError::Denied { code: Some(c), .. } if c == "AccessDenied"));
        assert_eq!(
            denied.to_string(),
            "s3://b/reports/x.json: access denied (s3:GetObject / s3:ListBucket)"
        );
        // A proxy's bodiless 403 is a denial too, with no code.
        let bare =
            GetObjectError::generic(aws_smithy_types::error::ErrorMetadata::builder().build());
        let bare = s3_error(&at(), failed(shapes::service(bare, 403)));
        assert!(matches!(bare, ReadError::Denied { code: None, .. }));
        let gone = GetObjectError::generic(shapes::meta("NoSuchKey", "gone"));
        let gone = s3_error(&at(), failed(shapes::service(gone, 404)));
        assert!(matches!(gone, ReadError::NotFound { .. }));
        assert_eq!(gone.to_string(), "s3://b/reports/x.json: no such object");
        assert_eq!(gone.place().as_deref(), Some("s3://b/reports/x.json"));
        assert_eq!(gone.reason(), "no such object");
        let slow = GetObjectError::generic(shapes::meta("SlowDown", "Please reduce"));
        let slow = s3_error(&at(), failed(shapes::service(slow, 503)));
        assert!(matches!(slow, ReadError::S3 { .. }));
        assert_eq!(crate::aws_error::said_twice(&slow), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_local_file_that_is_not_there_says_where_and_why() {
        let path = PathBuf::from("/nonexistent/dlq-triage/report.json");
        let e = Reader::local()
            .read(&Location::File(path.clone()))
            .await
            .unwrap_err();
        assert!(matches!(&e, ReadError::File { path: p, .. } if *p == path));
        assert_eq!(e.to_string(), format!("{}: {}", path.display(), e.reason()));
        assert_eq!(crate::aws_error::said_twice(&e), Vec::<String>::new());
        let e = Reader::local().read(&at()).await.unwrap_err();
        assert!(matches!(e, ReadError::NoS3));
        assert_eq!(e.to_string(), "S3 is not configured for this run");
    }
}
