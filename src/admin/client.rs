//! A client of the admin API for the `icaze verify`, `revoke` and `block` commands: one
//! request, its status and JSON answer, over hyper's HTTP/1.1 client.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be built (a bad address or path).
    #[error("bad request to {url}: {reason}")]
    Request {
        /// Where it was going.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The API did not answer (not running, wrong address, network).
    #[error("no answer from the admin API at {url}: {reason}")]
    Unreachable {
        /// Where it was going.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// An answer: status and body as JSON (`Null` if it was not JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub json: Value,
}

/// The admin API at `base` (`http://127.0.0.1:9103`), called with `token`.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    token: Option<String>,
}

impl AdminClient {
    /// A client of the API at `base` (an `http://` URL or a bare `host:port`).
    pub fn new(base: &str, token: Option<String>) -> Self {
        let base = base.trim_end_matches('/');
        let base = if base.starts_with("http://") || base.starts_with("https://") {
            base.to_string()
        } else {
            format!("http://{base}")
        };
        AdminClient { base, token }
    }

    /// Sends one request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = hyper::Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let bytes = match body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(bytes))
            .map_err(|e| ClientError::Request {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let unreachable = |e: &dyn std::fmt::Display| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let response = client.request(request).await.map_err(|e| unreachable(&e))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        Ok(Reply {
            status,
            json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        })
    }
}

/// `text` with every character but unreserved ones percent-encoded, for a path segment or
/// a query value (documents have spaces, `İ`, Cyrillic letters).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_encoded_for_urls() {
        assert_eq!(encode("AZE 1111-1111"), "AZE%201111-1111");
        assert_eq!(encode("MYİ"), "MY%C4%B0");
        assert_eq!(
            AdminClient::new("127.0.0.1:9103/", None).base,
            "http://127.0.0.1:9103"
        );
    }
}
