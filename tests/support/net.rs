//! Loopback ports for the servers the tests start.

use std::time::Duration;

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// Waits until something accepts connections on `port` (a server the test started),
/// panicking with `what` after `limit`.
pub async fn wait_for_port(port: u16, limit: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not start listening on 127.0.0.1:{port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An endpoint on 127.0.0.1 that accepts connections and never answers (a hung
/// dependency), as `http://127.0.0.1:PORT`.
pub async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// What a stand-in answers: status, headers, body.
pub type Answer = (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>);

/// Serves, on 127.0.0.1, a proxy in front of the AWS JSON-protocol server at `upstream`
/// (dynalite, moto): each request is shown to `intercept` with its `X-Amz-Target` and
/// body first; what `intercept` answers is the answer, and on `None` the request goes on
/// to `upstream` as it came. Returns the endpoint (`http://127.0.0.1:PORT`) and the
/// server's task.
pub async fn amz_json_proxy<F>(
    upstream: &str,
    intercept: F,
) -> (String, tokio::task::JoinHandle<()>)
where
    F: Fn(&str, &[u8]) -> Option<Answer> + Send + Sync + 'static,
{
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let client = reqwest::Client::new();
    let upstream = upstream.to_owned();
    let intercept = std::sync::Arc::new(intercept);
    let handler = move |headers: HeaderMap, body: Bytes| {
        let (client, upstream, intercept) = (client.clone(), upstream.clone(), intercept.clone());
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            match intercept(target, &body) {
                Some(answer) => answer,
                None => forward(&client, "POST", &upstream, &headers, &body).await,
            }
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (endpoint, server)
}

/// Passes one request on to `url` as it came (its method, its headers but `host` and
/// `content-length`, its body) and answers what the upstream answered.
async fn forward(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Answer {
    use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = client.request(method, url).body(body.to_vec());
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = request.send().await.expect("the upstream answers");
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut out = HeaderMap::new();
    for (name, value) in answer.headers() {
        if name == "content-length" || name == "transfer-encoding" {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.insert(n, v);
        }
    }
    let body = answer.bytes().await.expect("the upstream's body").to_vec();
    (status, out, body)
}
