//! [`ApiError`]: every error answer of the API, in Prometheus' JSON shape
//! `{"status":"error","errorType":…,"error":…}` with the right HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// 400: the request is malformed; the message names the bad field.
    pub fn bad_data(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "bad_data", message)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: valid credentials without the needed scope.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such object (or no such API path).
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409: the object exists already.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 429: slow down; retry after `secs`.
    pub fn too_many_requests(message: impl Into<String>, secs: u64) -> ApiError {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message);
        e.retry_after_secs = Some(secs);
        e
    }

    /// 502: a server Dozor depends on (an identity provider) failed or answered nonsense.
    pub fn bad_gateway(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_GATEWAY, "unavailable", message)
    }

    /// 507: the disk is full; nothing was stored.
    pub fn insufficient_storage(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::INSUFFICIENT_STORAGE, "unavailable", message)
    }

    /// 503: a dependency (the state store) is down.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500: our fault. The detail goes to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// An error with an explicit status (used for body rejections such as 413).
    pub fn with_status(status: StatusCode, message: impl Into<String>) -> ApiError {
        let kind = if status.is_server_error() {
            "internal"
        } else {
            "bad_data"
        };
        Self::new(status, kind, message)
    }

    /// A failed query, typed as Prometheus types it: `bad_data` 400, `execution` 422,
    /// `timeout` and `canceled` 503, a storage failure 500 (detail logged only).
    pub fn query(e: dozor_promql::PromqlError) -> ApiError {
        let kind = e.kind();
        match kind {
            "bad_data" => Self::new(
                StatusCode::BAD_REQUEST,
                "bad_data",
                format!("invalid parameter \"query\": {e}"),
            ),
            "execution" => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "execution", e.to_string()),
            "timeout" => Self::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", e.to_string()),
            "canceled" => Self::new(StatusCode::SERVICE_UNAVAILABLE, "canceled", e.to_string()),
            _ => ApiError::internal(e),
        }
    }

    /// The error type (`bad_data`, `execution`…).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Prometheus' key order, which serde_json's maps would sort away.
        let mut body = String::from("{\"status\":\"error\",\"errorType\":");
        crate::promjson::push_str(&mut body, self.kind);
        body.push_str(",\"error\":");
        crate::promjson::push_str(&mut body, &self.message);
        body.push('}');
        let mut response = (self.status, crate::promjson::response(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dozor\""),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<dozor_state::StateError> for ApiError {
    fn from(e: dozor_state::StateError) -> ApiError {
        match e {
            dozor_state::StateError::Conflict(what) => {
                ApiError::conflict(format!("{what} already exists"))
            }
            dozor_state::StateError::Query {
                source: sqlx_err,
                what,
            } if is_unavailable(&sqlx_err) => {
                tracing::warn!(error = %sqlx_err, "cannot {what}: state store unavailable");
                ApiError::unavailable("the state store is unavailable")
            }
            other => ApiError::internal(other),
        }
    }
}

fn is_unavailable(e: &dozor_state::SqlxError) -> bool {
    matches!(
        e,
        dozor_state::SqlxError::PoolTimedOut
            | dozor_state::SqlxError::PoolClosed
            | dozor_state::SqlxError::Io(_)
    )
}

impl From<dozor_audit::AuditError> for ApiError {
    fn from(e: dozor_audit::AuditError) -> ApiError {
        ApiError::internal(e)
    }
}

/// The success envelope of our JSON API: `{"status":"success","data":…}`.
pub fn success<T: serde::Serialize>(data: T) -> axum::Json<serde_json::Value> {
    axum::Json(json!({"status": "success", "data": data}))
}
