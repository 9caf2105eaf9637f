//! An S3 stand-in for the summarize benchmark: `ListObjectsV2` and `GetObject` over HTTP,
//! path-style, as the AWS SDK calls them, from objects held in memory, each request held a
//! fixed latency first. moto's S3 judges the protocol (the tests use it); it serves a few
//! hundred MB/s from Python, which on two cores is itself the whole job, so the benchmark
//! of "1,000 reports at 20 ms a request" needs a server that costs next to nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The most keys one listing page holds, as S3's.
const PAGE: usize = 1000;

type Objects = Arc<BTreeMap<String, Bytes>>;

/// A running stand-in.
pub struct S3Standin {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    _server: tokio::task::JoinHandle<()>,
}

impl S3Standin {
    /// Serves `objects` (key → body) as bucket `bucket`, each request `delay` late.
    pub async fn start(
        bucket: &str,
        objects: BTreeMap<String, Bytes>,
        delay: Duration,
    ) -> S3Standin {
        let state = (bucket.to_owned(), Arc::new(objects), delay);
        let app = axum::Router::new()
            .route("/{bucket}", axum::routing::get(list))
            .route("/{bucket}/", axum::routing::get(list))
            .route("/{bucket}/{*key}", axum::routing::get(get))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        S3Standin {
            endpoint,
            _server: server,
        }
    }
}

type Shared = (String, Objects, Duration);

fn no_such(code: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>"
    );
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `GET /bucket?list-type=2&prefix=…&start-after=…&continuation-token=…`.
async fn list(
    State((name, objects, delay)): State<Shared>,
    Path(bucket): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    tokio::time::sleep(delay).await;
    if bucket != name {
        return no_such("NoSuchBucket");
    }
    let prefix = query.get("prefix").cloned().unwrap_or_default();
    // The continuation token is the last key of the previous page.
    let after = query
        .get("continuation-token")
        .or(query.get("start-after"))
        .cloned()
        .unwrap_or_default();
    let keys: Vec<(&String, &Bytes)> = objects
        .range::<String, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
        .filter(|(k, _)| k.starts_with(&prefix))
        .take(PAGE + 1)
        .collect();
    let truncated = keys.len() > PAGE;
    let page = &keys[..keys.len().min(PAGE)];
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{PAGE}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        xml_text(&name),
        xml_text(&prefix),
        page.len()
    );
    for (key, body) in page {
        xml.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>2026-11-28T00:00:00.000Z</LastModified><ETag>\"0\"</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            xml_text(key),
            body.len()
        ));
    }
    if let (true, Some((last, _))) = (truncated, page.last()) {
        xml.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            xml_text(last)
        ));
    }
    xml.push_str("</ListBucketResult>");
    ([(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

/// `GET /bucket/key`.
async fn get(
    State((name, objects, delay)): State<Shared>,
    Path((bucket, key)): Path<(String, String)>,
) -> Response {
    tokio::time::sleep(delay).await;
    if bucket != name {
        return no_such("NoSuchBucket");
    }
    match objects.get(&key) {
        Some(body) => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            headers.insert(header::ETAG, "\"0\"".parse().unwrap());
            (headers, body.clone()).into_response()
        }
        None => no_such("NoSuchKey"),
    }
}
