//! The web UI: static files built from `ui/` by `build.rs` and embedded in the binary, served
//! at `/` with a single-page-app fallback for UI paths only.
//!
//! API and protocol prefixes never fall back to `index.html`: a wrong API path gets a JSON
//! 404, so a misconfigured client sees an error it can read instead of an HTML page.

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

#[derive(rust_embed::Embed)]
#[folder = "$OUT_DIR/ui"]
struct Assets;

/// Path prefixes that belong to APIs and protocols, never to the UI.
pub const NON_UI_PREFIXES: &[&str] = &[
    "/api/",
    "/insert/",
    "/loki/",
    "/prometheus/",
    "/metrics",
    "/healthz",
    "/readyz",
    "/ws/",
];

/// Serves an embedded file, or `index.html` for UI routes, or a JSON 404.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if NON_UI_PREFIXES
        .iter()
        .any(|p| path.starts_with(p) || path == p.trim_end_matches('/'))
    {
        return ApiError::not_found(format!("no route {path}")).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::with_status(StatusCode::METHOD_NOT_ALLOWED, "the UI serves GET only")
            .into_response();
    }
    let file = path.trim_start_matches('/');
    if let Some(response) = serve(file) {
        return response;
    }
    // A path with an extension is a missing asset; anything else is a UI route.
    let last = file.rsplit('/').next().unwrap_or("");
    if last.contains('.') {
        return ApiError::not_found(format!("no file {path}")).into_response();
    }
    serve("index.html")
        .unwrap_or_else(|| ApiError::not_found("the UI is not built").into_response())
}

fn serve(file: &str) -> Option<Response> {
    let file = if file.is_empty() { "index.html" } else { file };
    let asset = Assets::get(file)?;
    let mime = asset.metadata.mimetype().to_owned();
    // Vite puts content-hashed files under assets/: cache them forever; never index.html.
    let cache = if file.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = (StatusCode::OK, asset.data.into_owned()).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Some(response)
}
