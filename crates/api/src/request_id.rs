//! Request ids: every request gets one — the client's `X-Request-Id` when it is sensible
//! (1 to 128 visible ASCII characters), otherwise 16 random bytes in hex — echoed in the
//! response's `X-Request-Id`, written into every audit record the request appends (so
//! `GET /api/v1/audit/records?request_id=…` finds all of them).
//!
//! The id travels in a task-local: a handler and what it awaits run inside the future the
//! middleware wraps, so [`current`] sees it without threading it through every call.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The header read and written.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Whether a client's id is kept: 1 to 128 visible ASCII characters.
fn sensible(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Middleware: assigns the id, serves the request inside its scope, echoes it.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sensible(v))
        .map(str::to_owned);
    let id = match given {
        Some(id) => id,
        None => dozor_state::random_bytes::<16>()
            .map(hex::encode)
            .unwrap_or_else(|_| "unavailable".to_owned()),
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(HEADER, v.clone());
        let mut response = REQUEST_ID.scope(id, next.run(request)).await;
        response.headers_mut().insert(HEADER, v);
        return response;
    }
    REQUEST_ID.scope(id, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sensible_ids_are_kept() {
        assert!(sensible("req-7"));
        assert!(sensible(&"a".repeat(128)));
        assert!(!sensible(""));
        assert!(!sensible(&"a".repeat(129)));
        assert!(!sensible("has space"));
        assert!(!sensible("ünïcode"));
    }
}
