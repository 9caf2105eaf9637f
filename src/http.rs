//! The crate's HTTP clients start here, so every request says who sends it.

/// A client builder with the crate's User-Agent; callers add their own timeouts.
pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().user_agent(concat!("genesys-dlq-triage/", env!("CARGO_PKG_VERSION")))
}

/// The client of the Genesys Cloud calls (each of its requests sets its own timeout).
pub(crate) fn client() -> reqwest::Client {
    client_builder().build().unwrap_or_default()
}

/// A local server that answers every request with `status`, `content_type` and `body`,
/// once it has read the whole request (its head, then as many bytes as its
/// `Content-Length` says); its `http://127.0.0.1:PORT`. For tests.
#[cfg(test)]
pub(crate) async fn answering(
    status: u16,
    content_type: &'static str,
    body: &'static str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut read = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                read.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&read).to_ascii_lowercase();
                let Some(end) = text.find("\r\n\r\n") else {
                    if n == 0 {
                        break;
                    }
                    continue;
                };
                let length: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if n == 0 || read.len() >= end + 4 + length {
                    break;
                }
            }
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    endpoint
}
