//! Stored reports: where they are (a file, a folder, an S3 object or prefix), reading them
//! ([`Reader`]), parsing them (whole for `replay`, only what a summary needs for
//! `summarize`: [`ReportDigest`]), and the one [`Filter`] both apply to their records.

mod digest;
mod filter;
mod reader;

use std::fmt;
use std::path::{Component, Path, PathBuf};

pub(crate) use digest::DigestError;
pub use digest::ReportDigest;
pub(crate) use filter::{Filter, WhenError, Window, dead_lettered_at, parse_when};
pub(crate) use reader::{ReadError, Reader};

/// Where a report or a payload is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A local file.
    File(PathBuf),
    /// An S3 object.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
}

impl Location {
    /// The payload of a record of the report here: beside the report in S3 (keys are full
    /// keys there), or in the out folder a local report belongs to (the report's folder,
    /// or its parent for a report under `reports/`). A key that would leave that folder is
    /// refused.
    pub fn payload(&self, key: &str) -> Result<Location, ArgError> {
        match self {
            Location::S3 { bucket, .. } => Ok(Location::S3 {
                bucket: bucket.clone(),
                key: key.to_owned(),
            }),
            Location::File(path) => {
                let relative = Path::new(key);
                if key.is_empty()
                    || !relative
                        .components()
                        .all(|c| matches!(c, Component::Normal(_)))
                {
                    return Err(ArgError::LeavesFolder {
                        key: key.to_owned(),
                    });
                }
                let mut base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                if base.file_name().is_some_and(|n| n == "reports") {
                    base.pop();
                }
                Ok(Location::File(base.join(relative)))
            }
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// A report argument or a payload key that names no place to read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// `s3://` with no bucket after it.
    #[error("{arg}: no bucket name after s3://")]
    NoBucket {
        /// The argument.
        arg: String,
    },
    /// A payload key that would leave the local report's folder.
    #[error("payload key {key:?} leaves the report's folder; refused")]
    LeavesFolder {
        /// The key.
        key: String,
    },
}

impl From<ArgError> for String {
    fn from(e: ArgError) -> String {
        e.to_string()
    }
}

/// A `REPORT` argument: a local `report.json`, every report below a local folder, one S3
/// report, or every report below an S3 prefix (an argument ending in `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReportArg {
    /// One report.
    One(Location),
    /// A local folder: every report below it (`report.json`, `reports/…/*.json`).
    Folder(PathBuf),
    /// `s3://bucket/prefix/`: every `.json` report below it.
    Prefix {
        /// The bucket.
        bucket: String,
        /// The prefix (may be empty).
        prefix: String,
    },
}

impl ReportArg {
    /// Whether it names local files only (no S3 client is needed for it).
    pub(crate) fn is_local(&self) -> bool {
        matches!(
            self,
            ReportArg::One(Location::File(_)) | ReportArg::Folder(_)
        )
    }

    /// Reads a command-line argument.
    pub(crate) fn parse(arg: &str) -> Result<ReportArg, ArgError> {
        let Some(rest) = arg.strip_prefix("s3://") else {
            let path = PathBuf::from(arg);
            return Ok(if path.is_dir() {
                ReportArg::Folder(path)
            } else {
                ReportArg::One(Location::File(path))
            });
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ArgError::NoBucket {
                arg: arg.to_owned(),
            });
        }
        if key.is_empty() || key.ends_with('/') {
            Ok(ReportArg::Prefix {
                bucket: bucket.to_owned(),
                prefix: key.to_owned(),
            })
        } else {
            Ok(ReportArg::One(Location::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            }))
        }
    }
}

/// Whether an S3 key listed below a prefix is a report (`…/reports/…/<id>.json`).
pub(crate) fn is_report_key(key: &str) -> bool {
    key.ends_with(".json") && (key.contains("reports/") || key.ends_with("report.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that are not JSON say the parser's reason once.
    #[test]
    fn bytes_that_are_not_json_say_why_once() {
        for parse in [ReportDigest::parse, ReportDigest::parse_with_serde_json] {
            let e = parse(b"{").unwrap_err();
            assert!(e.to_string().starts_with("not JSON: "), "{e}");
            assert_eq!(
                crate::aws_error::said_twice(&e),
                Vec::<String>::new(),
                "{e}"
            );
        }
    }

    fn local(path: &str) -> Location {
        Location::File(PathBuf::from(path))
    }

    #[test]
    fn arguments_name_a_file_an_object_or_a_prefix() {
        assert_eq!(
            ReportArg::parse("out/report.json").unwrap(),
            ReportArg::One(local("out/report.json"))
        );
        assert_eq!(
            ReportArg::parse("s3://b/genesys-dlq/reports/dt=2026-11-28/r.json").unwrap(),
            ReportArg::One(Location::S3 {
                bucket: "b".into(),
                key: "genesys-dlq/reports/dt=2026-11-28/r.json".into()
            })
        );
        assert_eq!(
            ReportArg::parse("s3://b/genesys-dlq/").unwrap(),
            ReportArg::Prefix {
                bucket: "b".into(),
                prefix: "genesys-dlq/".into()
            }
        );
        assert_eq!(
            ReportArg::parse("s3://b").unwrap(),
            ReportArg::Prefix {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert!(ReportArg::parse("s3:///x").is_err());
    }

    #[test]
    fn payloads_are_found_beside_the_report_they_belong_to() {
        let key = "replay/UNKNOWN/m1.json";
        assert_eq!(
            local("out/report.json").payload(key).unwrap(),
            local("out/replay/UNKNOWN/m1.json")
        );
        assert_eq!(
            local("out/reports/r1.json").payload(key).unwrap(),
            local("out/replay/UNKNOWN/m1.json")
        );
        let s3 = Location::S3 {
            bucket: "b".into(),
            key: "p/reports/dt=2026-11-28/r.json".into(),
        };
        assert_eq!(
            s3.payload("p/replay/dt=2026-11-28/UNKNOWN/m1.json")
                .unwrap(),
            Location::S3 {
                bucket: "b".into(),
                key: "p/replay/dt=2026-11-28/UNKNOWN/m1.json".into()
            }
        );
    }

    #[test]
    fn a_tampered_key_never_leaves_the_folder() {
        for key in ["../../etc/passwd", "/etc/passwd", "replay/../../x", ""] {
            assert!(local("out/report.json").payload(key).is_err(), "{key}");
        }
    }

    #[test]
    fn report_keys_below_a_prefix_are_recognised() {
        assert!(is_report_key("genesys-dlq/reports/dt=2026-11-28/abc.json"));
        assert!(!is_report_key("genesys-dlq/reports/dt=2026-11-28/abc.md"));
        assert!(!is_report_key(
            "genesys-dlq/replay/dt=2026-11-28/UNKNOWN/m.json"
        ));
    }
}
