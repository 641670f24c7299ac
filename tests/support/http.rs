//! A real HTTP/1.1 client (hyper's) for the admin API: a request with an optional bearer
//! token and body, the status and the JSON answer back.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;

/// An answer: status code and the body as JSON (`Null` if it was not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
    /// The body as text (for `/metrics`).
    pub text: String,
    /// The response's headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Answer {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` to `addr` with `token` as bearer and `body` (JSON or TOML text).
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| ("authorization", b))
        .into_iter()
        .collect();
    call_with(addr, method, path, &headers, body).await
}

/// Sends `method path` to `addr` with these `headers` (a cookie, an origin) and `body`.
pub async fn call_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if body.is_some_and(|b| b.starts_with('{')) {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
        .expect("a request");
    let response = client
        .request(request)
        .await
        .expect("the admin API answers");
    answer(response).await
}

/// Reads a response's status and body.
async fn answer(response: hyper::Response<hyper::body::Incoming>) -> Answer {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a whole body")
        .to_bytes();
    Answer {
        status,
        json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
        headers,
    }
}

/// `method path` over plain HTTP, or the error the client met (a server that speaks TLS).
pub async fn try_call(addr: SocketAddr, method: &str, path: &str) -> Result<Answer, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .expect("a request");
    match client.request(request).await {
        Ok(response) => Ok(answer(response).await),
        Err(e) => Err(e.to_string()),
    }
}

/// `GET path` over HTTPS, trusting `ca` for `localhost`; the answer and the certificate
/// the server presented.
pub async fn get_https(
    ca: &super::tls::TestCa,
    addr: SocketAddr,
    path: &str,
) -> (Answer, rustls::pki_types::CertificateDer<'static>) {
    let tls = ca.connect(addr).await.expect("a TLS handshake");
    let cert = super::tls::served(&tls);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("an HTTP/1.1 connection");
    tokio::spawn(conn);
    let request = Request::builder()
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .expect("a request");
    let response = sender.send_request(request).await.expect("an answer");
    (answer(response).await, cert)
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Answer {
    call(addr, "GET", path, token, None).await
}
