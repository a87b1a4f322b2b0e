//! Authentication: passwords, JWT access tokens, API and refresh tokens, the [`Principal`]
//! of a request, and the [`authorize`] middleware that enforces the route-policy registry.
//!
//! Credentials a request may carry, in `Authorization`:
//! - `Bearer <jwt>`: a short-lived access token from `POST /api/v1/auth/login` (HS256, secret
//!   shared by all nodes through the state store's `settings`);
//! - `Bearer dzr_…`: an API token (shown once at creation, stored as SHA-256);
//! - `Basic base64(any-user:dzr_…)`: the same API token as a basic-auth password, for the
//!   many shippers and tools that speak only basic auth.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use dozor_audit::{Entry, Outcome};
use dozor_model::time::{Millis, now_ms};
use dozor_model::{Role, ScopeSet, TenantId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::{Policy, PolicyTable, lookup};
use crate::{ApiError, AppState};

/// Prefix of API tokens, so they are recognisable in configs and by secret scanners.
pub const API_TOKEN_PREFIX: &str = "dzr_";
/// Prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "dzrr_";

/// Who is calling, established once per request by [`authorize`].
#[derive(Debug, Clone, Serialize)]
pub struct Principal {
    /// The tenant every store call of this request is scoped to.
    pub tenant: TenantId,
    /// How the principal is named in the audit chain: a user name or `token:<id>`.
    pub actor: String,
    /// The user id, for principals that logged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The user's role, for principals that logged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// What this principal may do.
    pub scopes: ScopeSet,
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("authentication required"))
    }
}

/// Where a request came from, for the audit chain ("unknown" in in-process tests).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

impl ClientAddr {
    fn of(parts: &Parts) -> ClientAddr {
        ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(parts))
    }
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes) into a PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt_bytes = dozor_state::random_bytes::<16>().map_err(ApiError::internal)?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(ApiError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Checks a password against a PHC string; a malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The hash of a random password nobody knows, verified when a login names an unknown user
/// so that the answer takes as long as for a wrong password.
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret = new_secret("").unwrap_or_default();
        hash_password(&secret).unwrap_or_default()
    })
}

/// A new random secret with `prefix`: 32 random bytes, base64url.
pub fn new_secret(prefix: &str) -> Result<String, ApiError> {
    let bytes = dozor_state::random_bytes::<32>().map_err(ApiError::internal)?;
    Ok(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// SHA-256 of a token, lowercase hex: what the state store keeps.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// User name.
    pub name: String,
    /// Tenant.
    pub tenant: TenantId,
    /// Role.
    pub role: Role,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// The session (refresh-token family) the token was issued in; logging out, or a
    /// refresh token used twice, revokes it. Absent in tokens of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// The HS256 key pair for access tokens and their lifetime.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// How long an access token lives.
    pub access_ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("access_ttl", &self.access_ttl)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys from a shared secret.
    pub fn new(secret: &[u8], access_ttl: Duration) -> JwtKeys {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            access_ttl,
        }
    }

    /// Issues an access token for `user` in session `sid`, valid from `now_ms` for
    /// `access_ttl`.
    pub fn issue(
        &self,
        user: &dozor_state::users::User,
        sid: &str,
        now_ms: Millis,
    ) -> Result<String, ApiError> {
        let iat = now_ms / 1000;
        let claims = Claims {
            sub: user.id.clone(),
            name: user.name.clone(),
            tenant: user.tenant.clone(),
            role: user.role,
            iat,
            exp: iat + i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX / 2),
            sid: Some(sid.to_owned()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// Checks signature and expiry (no leeway: a token is dead the second it expires).
    pub fn check(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}

/// What the `Authorization` header carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// A JWT access token (not yet checked).
    Jwt(&'a str),
    /// An API token secret (not yet looked up), from `Bearer` or basic auth's password.
    ApiToken(String),
}

/// Parses an `Authorization` header value; `None` for schemes and shapes we do not accept.
pub fn parse_authorization(value: &str) -> Option<Credentials<'_>> {
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if rest.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.starts_with(API_TOKEN_PREFIX) {
            return Some(Credentials::ApiToken(rest.to_owned()));
        }
        return Some(Credentials::Jwt(rest));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        if password.starts_with(API_TOKEN_PREFIX) {
            return Some(Credentials::ApiToken(password.to_owned()));
        }
    }
    None
}

/// The routes that serve metrics to scrapers, which `server.metrics_access` guards.
pub const METRICS_EXPORT_PATHS: [&str; 2] = ["/metrics", "/api/v1/metrics/export"];

/// Who may read the metrics exports ([`METRICS_EXPORT_PATHS`]) besides what their policy
/// says (seed 004's IP-allow-listed, basic-auth Prometheus export): `server.metrics_access`.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    /// Client addresses allowed, v4 and v6 ranges (empty: any address). An IPv4 client
    /// reaching a dual-stack listener as `::ffff:a.b.c.d` is matched as `a.b.c.d`.
    pub allow: Vec<ipnet::IpNet>,
    /// A user name and password accepted as basic auth on these routes only.
    pub basic: Option<BasicAccount>,
}

/// A basic-auth account of the metrics export: read-only, in one tenant.
#[derive(Debug, Clone)]
pub struct BasicAccount {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: crate::Secret,
    /// The tenant its scrapes read.
    pub tenant: TenantId,
}

impl MetricsAccess {
    /// Whether a client at `addr` (`None`: unknown) may call the export routes.
    pub fn admits(&self, addr: Option<std::net::IpAddr>) -> bool {
        self.allow.is_empty()
            || addr.is_some_and(|a| {
                let a = a.to_canonical();
                self.allow.iter().any(|net| net.contains(&a))
            })
    }

    /// The principal of basic-auth credentials `value` (an `Authorization` header) when they
    /// are the configured account's. Compared in constant time.
    fn basic_principal(&self, value: &str) -> Option<Principal> {
        use subtle::ConstantTimeEq as _;
        let account = self.basic.as_ref()?;
        let (scheme, rest) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        // Hash both sides: equal lengths, so the comparison's time says nothing.
        let digest = |b: &[u8]| Sha256::digest(b);
        let user_ok = digest(user.as_bytes()).ct_eq(&digest(account.username.as_bytes()));
        let password_ok = digest(password.as_bytes()).ct_eq(&digest(&account.password.0));
        bool::from(user_ok & password_ok).then(|| Principal {
            tenant: account.tenant.clone(),
            actor: format!("metrics:{}", account.username),
            user_id: None,
            role: None,
            scopes: ScopeSet::from_iter([dozor_model::Scope::Read]),
        })
    }
}

/// Resolves the request's credentials to a principal; `Ok(None)` when none were sent.
/// `export` says the route is a metrics export, where the configured basic-auth account
/// is also accepted.
async fn authenticate(
    state: &AppState,
    parts: &Parts,
    export: bool,
) -> Result<Option<Principal>, ApiError> {
    let invalid = || ApiError::unauthorized("invalid or expired credentials");
    let from_protocol;
    let value = match parts.headers.get(AUTHORIZATION) {
        Some(header) => header.to_str().map_err(|_| invalid())?,
        None => match websocket_bearer(parts) {
            Some(token) => {
                from_protocol = format!("Bearer {token}");
                from_protocol.as_str()
            }
            None => return Ok(None),
        },
    };
    if export && let Some(p) = state.settings().metrics_access.basic_principal(value) {
        return Ok(Some(p));
    }
    match parse_authorization(value).ok_or_else(invalid)? {
        Credentials::Jwt(jwt) => {
            let claims = state.jwt().check(jwt).ok_or_else(invalid)?;
            if let Some(sid) = &claims.sid
                && session_revoked(state, sid).await?
            {
                return Err(invalid());
            }
            Ok(Some(Principal {
                tenant: claims.tenant,
                actor: claims.name,
                user_id: Some(claims.sub),
                role: Some(claims.role),
                scopes: claims.role.scopes(),
            }))
        }
        Credentials::ApiToken(secret) => {
            let hash = token_hash(&secret);
            let token = match state.token_cache().get(&hash) {
                Some(t) => Some(t),
                None => {
                    let t = state.store().api_token_by_hash(&hash).await?;
                    if let Some(t) = &t {
                        state.token_cache().put(hash, t.clone());
                    }
                    t
                }
            };
            let token = token.filter(|t| t.is_live(now_ms())).ok_or_else(invalid)?;
            Ok(Some(Principal {
                tenant: token.tenant,
                actor: format!("token:{}", token.id),
                user_id: None,
                role: None,
                scopes: token.scopes,
            }))
        }
    }
}

/// Whether the session `sid` was revoked, from the cache or the store.
async fn session_revoked(state: &AppState, sid: &str) -> Result<bool, ApiError> {
    if let Some(revoked) = state.session_cache().get(sid) {
        return Ok(revoked);
    }
    let revoked = state.store().session_revoked(sid).await?;
    state.session_cache().put(sid, revoked);
    Ok(revoked)
}

/// API tokens looked up in the last [`TokenCache::TTL`], by the hash of their secret: a
/// busy shipper's every request would otherwise read the state store. A token revoked on
/// this node stops at once (the revocation clears the cache); one revoked on another node
/// sharing the store stops within the TTL. Expiry is checked on every request.
#[derive(Debug, Default)]
pub struct TokenCache(std::sync::Mutex<HashMap<String, (dozor_state::tokens::ApiToken, Instant)>>);

impl TokenCache {
    /// How long a looked-up token is trusted without reading the store again.
    pub const TTL: Duration = Duration::from_secs(10);
    /// Most tokens kept; beyond it the cache starts over.
    const MAX: usize = 10_000;

    fn get(&self, hash: &str) -> Option<dozor_state::tokens::ApiToken> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(t, _)| t.clone())
    }

    fn put(&self, hash: String, token: dozor_state::tokens::ApiToken) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(hash, (token, Instant::now()));
    }

    /// Forgets every token (after a revocation).
    pub fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// How logins are guarded and passwords chosen (`auth:` in `dozor.yml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPolicy {
    /// Failed logins that lock a user name, and for how long.
    pub lockout: dozor_state::lockout::LockoutPolicy,
    /// Login attempts per minute from one client address; more get 429 (0: no limit).
    pub logins_per_minute: u32,
    /// Shortest password accepted.
    pub password_min_length: usize,
}

impl Default for AuthPolicy {
    fn default() -> AuthPolicy {
        AuthPolicy {
            lockout: dozor_state::lockout::LockoutPolicy {
                max_failures: 5,
                window_ms: 15 * 60_000,
                lock_ms: 15 * 60_000,
            },
            logins_per_minute: 60,
            password_min_length: 12,
        }
    }
}

/// Longest password accepted (argon2 hashes whatever it is given: a bound on its work).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Passwords refused whatever their length: the most common ones in public breach lists
/// that are 12 characters or longer, and patterns people reach for. NIST SP 800-63B §5.1.1.2
/// asks for a check against such a list rather than composition rules.
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "qwertyuiopasdfghjkl",
    "qwertyuiop123",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "passwordpassword",
    "password1234",
    "password12345",
    "password123456",
    "administrator",
    "iloveyou1234",
    "abc123456789",
    "abcdefghijkl",
    "changeme1234",
    "letmein12345",
    "welcome12345",
    "qwerty123456",
    "zaq12wsxcde3",
    "monitoring123",
    "adminadmin123",
    "administrator1",
];

/// Checks a new password of user `name` against `policy` (NIST SP 800-63B: length, a
/// list of common passwords, not the user name; no composition rules). The message names
/// what is wrong, never the password.
pub fn check_password(policy: &AuthPolicy, name: &str, password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < policy.password_min_length {
        return Err(format!(
            "at least {} characters",
            policy.password_min_length
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!("at most {MAX_PASSWORD_CHARS} characters"));
    }
    let lower = password.to_lowercase();
    if name.chars().count() >= 3 && lower.contains(&name.to_lowercase()) {
        return Err("must not contain the user name".to_owned());
    }
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 || COMMON_PASSWORDS.contains(&lower.as_str()) {
        return Err("too common or too repetitive".to_owned());
    }
    Ok(())
}

/// Sessions known to be revoked or live, by family id, for [`TokenCache::TTL`]: an access
/// token's session is checked on every request, the store read at most once per TTL. A
/// session revoked on this node stops at once; on another node sharing the store, within
/// the TTL.
#[derive(Debug, Default)]
pub struct SessionCache(std::sync::Mutex<HashMap<String, (bool, Instant)>>);

impl SessionCache {
    const MAX: usize = 100_000;

    fn get(&self, family: &str) -> Option<bool> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(family)
            .filter(|(revoked, at)| *revoked || at.elapsed() < TokenCache::TTL)
            .map(|(revoked, _)| *revoked)
    }

    /// Records what the store said about `family` (or that this node revoked it).
    pub fn put(&self, family: &str, revoked: bool) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= Self::MAX {
            map.retain(|_, (revoked, _)| *revoked);
            if map.len() >= Self::MAX {
                map.clear();
            }
        }
        map.insert(family.to_owned(), (revoked, Instant::now()));
    }
}

/// The sub-protocol a browser's WebSocket names its access token in: browsers cannot set
/// an `Authorization` header on a WebSocket, and a token in the URL would land in logs. The
/// client offers `dozor` and `bearer.<token>`; the server answers `dozor`
/// ([`WS_PROTOCOL`]).
const WS_BEARER_PREFIX: &str = "bearer.";

/// The sub-protocol Dozor's WebSocket routes answer with.
pub const WS_PROTOCOL: &str = "dozor";

fn websocket_bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix(WS_BEARER_PREFIX))
        .filter(|t| !t.is_empty())
}

/// State of the [`authorize`] middleware.
#[derive(Clone)]
pub struct AuthLayer {
    /// The application.
    pub app: AppState,
    /// The registry's policies.
    pub policies: PolicyTable,
}

/// Middleware run on every routed request: looks up the route's policy (refusing routes
/// that have none), authenticates, checks the scope, and stores the [`Principal`] in the
/// request's extensions for handlers.
pub async fn authorize(State(layer): State<AuthLayer>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .extensions
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(policy) = path
        .as_deref()
        .and_then(|p| lookup(&layer.policies, &parts.method, p))
    else {
        tracing::error!(method = %parts.method, path = ?path, "BUG: route has no policy; refused");
        return ApiError::forbidden("this route has no access policy").into_response();
    };
    if policy == Policy::Public {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let export = path
        .as_deref()
        .is_some_and(|p| METRICS_EXPORT_PATHS.contains(&p));
    if export {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if !layer.app.settings().metrics_access.admits(addr) {
            let entry = Entry::new(
                TenantId::DEFAULT,
                "anonymous",
                "metrics.export",
                path.clone().unwrap_or_default(),
                Outcome::Denied,
            )
            .source(ClientAddr::of(&parts).0)
            .detail("reason", "address not in server.metrics_access.allow");
            layer.app.audit_best_effort(entry).await;
            return ApiError::forbidden("this address may not read the metrics export")
                .into_response();
        }
    }
    let principal = match authenticate(&layer.app, &parts, export).await {
        Ok(Some(p)) => p,
        Ok(None) => return ApiError::unauthorized("authentication required").into_response(),
        Err(e) => {
            if e.status() == axum::http::StatusCode::UNAUTHORIZED {
                let entry = Entry::new(
                    TenantId::DEFAULT,
                    "anonymous",
                    "auth.credentials",
                    path.unwrap_or_default(),
                    Outcome::Failure,
                )
                .source(ClientAddr::of(&parts).0);
                layer.app.audit_best_effort(entry).await;
            }
            return e.into_response();
        }
    };
    if let Policy::Scope(scope) = policy
        && !principal.scopes.contains(scope)
    {
        return ApiError::forbidden(format!("this route needs the {scope} scope")).into_response();
    }
    let transport = &layer.app.settings().transport;
    if let Err(e) = transport.rate_limit.check(
        layer.app.rate_buckets(),
        &format!("{}/{}", principal.tenant, principal.actor),
    ) {
        return e.into_response();
    }
    let mut principal = principal;
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match crate::transport::asserted_tenant(
        &parts.headers,
        peer,
        &transport.trusted_proxies,
        &principal.tenant,
    ) {
        Ok(None) => {}
        Ok(Some(tenant)) => principal.tenant = tenant,
        Err(e) => {
            let entry = Entry::new(
                principal.tenant.as_str(),
                principal.actor.as_str(),
                "auth.tenant",
                path.unwrap_or_default(),
                Outcome::Denied,
            )
            .source(ClientAddr::of(&parts).0)
            .detail("reason", "X-Scope-OrgID from an untrusted peer");
            layer.app.audit_best_effort(entry).await;
            return e.into_response();
        }
    }
    parts.extensions.insert(principal);
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("anything", "not a phc string"));
        assert!(!verify_password("anything", dummy_hash()));
    }

    #[test]
    fn basic_auth_carries_api_tokens_only() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(matches!(
            parse_authorization(&format!("Basic {}", b64("promtool:dzr_abc"))),
            Some(Credentials::ApiToken(t)) if t == "dzr_abc"
        ));
        assert!(parse_authorization(&format!("Basic {}", b64("alice:password"))).is_none());
        assert!(parse_authorization("Basic !!!").is_none());
        assert!(matches!(
            parse_authorization("Bearer dzr_x"),
            Some(Credentials::ApiToken(_))
        ));
        assert!(matches!(
            parse_authorization("bearer eyJ.a.b"),
            Some(Credentials::Jwt(_))
        ));
        assert!(parse_authorization("Digest x").is_none());
        assert!(parse_authorization("Bearer").is_none());
        assert!(parse_authorization("Bearer  ").is_none());
    }

    #[test]
    fn secrets_are_prefixed_and_distinct() {
        let a = new_secret(API_TOKEN_PREFIX).unwrap();
        let b = new_secret(API_TOKEN_PREFIX).unwrap();
        assert!(a.starts_with("dzr_") && a.len() > 40);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
    }
}
