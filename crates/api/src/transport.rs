//! What every answer and every caller goes through besides authentication: secure response
//! headers, a request rate per principal, and the tenant that a trusted proxy asserts in
//! `X-Scope-OrgID` (the header Loki, Mimir and Cortex take it from).
//!
//! CORS stays off: no `Access-Control-Allow-*` header is ever sent, so browsers keep other
//! origins' scripts from reading answers; the UI is served from the API's own origin.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::PoisonError;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use dozor_model::TenantId;

use crate::ApiError;

/// `transport` settings (`server:` in `dozor.yml`).
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// The listener speaks TLS: answers carry `Strict-Transport-Security`.
    pub https: bool,
    /// Requests per principal.
    pub rate_limit: RateLimit,
    /// Peers whose `X-Scope-OrgID` sets the tenant of a request (CIDR ranges).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Requests a second per principal (user or API token), with bursts up to `burst`;
/// `per_second == 0`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests a second.
    pub per_second: u32,
    /// Requests allowed at once after a quiet spell (at least `per_second`).
    pub burst: u32,
}

/// The Content-Security-Policy of every answer: the UI loads its own scripts, styles,
/// images and API (WebSocket included) and nothing else; no plug-ins, no framing, no
/// `<base>` rewriting. `'unsafe-inline'` styles: the chart library positions its elements
/// with `style` attributes.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// Headers set on every answer that does not set them itself.
const SECURE_HEADERS: [(HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
];

/// HSTS for a year once the listener speaks TLS.
const HSTS: &str = "max-age=31536000";

/// Middleware: the secure headers on every answer (state: whether the listener is TLS).
pub async fn secure_headers(State(https): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURE_HEADERS {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    if https {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static(HSTS));
    }
    response
}

/// Token buckets by key: each refills at a rate and holds at most a capacity. In memory,
/// per node (the limits that must hold across nodes, like lock-out, are in the state
/// store).
#[derive(Debug, Default)]
pub struct RateBuckets(std::sync::Mutex<HashMap<String, (f64, Instant)>>);

impl RateBuckets {
    /// Most keys tracked; beyond it the buckets that are full again are forgotten.
    const MAX: usize = 100_000;

    /// Takes one request for `key` from a bucket refilled at `per_second` holding
    /// `capacity`; `Err(seconds)` until the next request is allowed.
    pub fn take(&self, key: &str, per_second: f64, capacity: f64) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= Self::MAX {
            map.retain(|_, (tokens, at)| {
                *tokens + at.elapsed().as_secs_f64() * per_second < capacity
            });
        }
        let (tokens, at) = map.entry(key.to_owned()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let wait = ((1.0 - *tokens) / per_second).ceil() as u64;
            Err(wait.max(1))
        }
    }
}

impl RateLimit {
    /// Takes one request of `key` from `buckets`: 429 with `Retry-After` beyond the limit.
    pub fn check(&self, buckets: &RateBuckets, key: &str) -> Result<(), ApiError> {
        if self.per_second == 0 {
            return Ok(());
        }
        let capacity = self.burst.max(self.per_second);
        buckets
            .take(key, f64::from(self.per_second), f64::from(capacity))
            .map_err(|wait| {
                ApiError::too_many_requests(
                    format!(
                        "more than {} requests a second with these credentials \
                         (server.rate_limit)",
                        self.per_second
                    ),
                    wait,
                )
            })
    }
}

/// The header a proxy names the tenant in.
pub const ORG_HEADER: &str = "x-scope-orgid";

/// The tenant a request runs as, given the principal's `own`: the `X-Scope-OrgID` of a
/// peer in `trusted` switches it; from anyone else the header must name `own` (403
/// otherwise, so a client cannot believe it wrote to a tenant it did not).
pub fn asserted_tenant(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: &[ipnet::IpNet],
    own: &TenantId,
) -> Result<Option<TenantId>, ApiError> {
    let Some(value) = headers.get(ORG_HEADER) else {
        return Ok(None);
    };
    let tenant: TenantId = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ApiError::bad_data("X-Scope-OrgID: not a tenant id"))?;
    if &tenant == own {
        return Ok(None);
    }
    let peer = peer.map(|ip| ip.to_canonical());
    if peer.is_some_and(|ip| trusted.iter().any(|net| net.contains(&ip))) {
        return Ok(Some(tenant));
    }
    Err(ApiError::forbidden(
        "X-Scope-OrgID names another tenant; it is honoured only from server.trusted_proxies",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_the_burst_then_refuse_with_a_wait() {
        let b = RateBuckets::default();
        for _ in 0..3 {
            assert!(b.take("k", 1.0, 3.0).is_ok());
        }
        assert_eq!(b.take("k", 1.0, 3.0), Err(1));
        assert!(b.take("other", 1.0, 3.0).is_ok(), "keys are separate");
        assert_eq!(b.take("slow", 0.1, 1.0), Ok(()));
        assert_eq!(b.take("slow", 0.1, 1.0), Err(10));
    }

    #[test]
    fn a_limit_of_zero_never_refuses() {
        let b = RateBuckets::default();
        let off = RateLimit::default();
        assert!((0..1000).all(|_| off.check(&b, "k").is_ok()));
        let on = RateLimit {
            per_second: 2,
            burst: 0,
        };
        assert!(on.check(&b, "k").is_ok() && on.check(&b, "k").is_ok());
        let e = on.check(&b, "k").unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
    }

    #[test]
    fn only_trusted_peers_switch_the_tenant() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let own = TenantId::default_tenant();
        let mut h = HeaderMap::new();
        assert_eq!(asserted_tenant(&h, None, &trusted, &own).unwrap(), None);
        h.insert(ORG_HEADER, HeaderValue::from_static("shop"));
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.1.1.1".parse().unwrap();
        let other: IpAddr = "192.168.1.1".parse().unwrap();
        let shop: TenantId = "shop".parse().unwrap();
        assert_eq!(
            asserted_tenant(&h, Some(proxy), &trusted, &own).unwrap(),
            Some(shop.clone())
        );
        assert_eq!(
            asserted_tenant(&h, Some(mapped), &trusted, &own).unwrap(),
            Some(shop.clone())
        );
        for peer in [Some(other), None] {
            let e = asserted_tenant(&h, peer, &trusted, &own).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::FORBIDDEN);
        }
        // Naming one's own tenant is fine from anywhere.
        assert_eq!(
            asserted_tenant(&h, Some(other), &trusted, &shop).unwrap(),
            None
        );
        h.insert(ORG_HEADER, HeaderValue::from_static("not a tenant!"));
        let e = asserted_tenant(&h, Some(proxy), &trusted, &own).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
    }
}
