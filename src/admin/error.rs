//! Errors of the admin API as JSON `{"error": "...", "key": "..."}` with their status code.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An answer that is not a success: the status, a stable `key` scripts can match, a message
/// for people, and any details (every error of a refused rules file).
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable snake_case key, e.g. `unauthorized`, `unknown_permit`.
    pub key: &'static str,
    /// What is wrong, for a person.
    pub message: String,
    /// More fields merged into the body.
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, key: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            key,
            message: message.into(),
            details: None,
        }
    }

    /// 400: a path, query or body field the API cannot read; `key` names it.
    pub fn bad_request(key: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, key, message)
    }

    /// 503: the store could not do it now.
    pub fn store(error: &crate::store::StoreError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store",
            format!("the store could not make it durable: {error}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.message, "key": self.key});
        if let (Some(Value::Object(extra)), Value::Object(map)) = (self.details, &mut body) {
            map.extend(extra);
        }
        (self.status, Json(body)).into_response()
    }
}
