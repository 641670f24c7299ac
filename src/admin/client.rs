//! A client of the admin API for the `icaze verify`, `revoke`, `block`, `unblock` and
//! `stats` commands: one request, its status and JSON answer, over one HTTP/1.1 connection
//! (hyper), plain or HTTPS (rustls, trusting a `ca` file or the compiled-in roots).

use crate::tls::Dialling;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::Value;
use std::path::PathBuf;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

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
    /// The certificates an `https://` API must be signed by; `None`: the Mozilla roots.
    ca: Option<PathBuf>,
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
        AdminClient {
            base,
            token,
            ca: None,
        }
    }

    /// Trusts the certificates in `ca` (PEM) for an `https://` API, instead of the
    /// compiled-in Mozilla roots (an admin certificate from an in-house CA, or the served
    /// chain itself).
    pub fn trusting(mut self, ca: Option<PathBuf>) -> Self {
        self.ca = ca;
        self
    }

    /// The URL requests go to (`http://…` or `https://…`, no trailing slash).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let bad = |reason: String| ClientError::Request {
            url: url.clone(),
            reason,
        };
        let unreachable = |e: &dyn std::fmt::Display| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or_else(|| bad("no host".to_string()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
            .header("host", authority);
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
            .map_err(|e| bad(e.to_string()))?;
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| unreachable(&e))?;
        let response = if https {
            let name = ServerName::try_from(host.clone()).map_err(|e| bad(e.to_string()))?;
            let dialling = Dialling::new(name, self.ca.clone()).map_err(|e| bad(e.to_string()))?;
            let tls = dialling.connect(tcp).await.map_err(|e| {
                unreachable(&format!("TLS handshake with {host}:{port} failed: {e}"))
            })?;
            send(tls, request).await
        } else {
            send(tcp, request).await
        }
        .map_err(|e| unreachable(&e))?;
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

/// Sends `request` on a new HTTP/1.1 connection over `io`.
async fn send<S>(
    io: S,
    request: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    sender.send_request(request).await
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
