//! OpenID Connect login (`auth.oidc` in `dozor.yml`): the authorization-code flow with PKCE
//! (RFC 7636, S256) and a nonce, against any issuer that publishes its discovery document
//! (Keycloak, Authentik, Dex, Okta, Azure AD, Google…).
//!
//! [`Oidc::begin`] makes a login's state, nonce and code verifier, keeps them ten minutes,
//! and gives the issuer's authorization URL; [`Oidc::finish`] takes the code and state the
//! browser comes back with (each state once), exchanges the code at the token endpoint with
//! the client's credentials (HTTP basic, `client_secret_basic`), and verifies the ID token:
//! signature by a key of the issuer's JWKS (fetched again when a token names an unknown key,
//! at most once a minute), issuer, audience, expiry, nonce. The user's role comes from a
//! claim (`groups` by default) through `role_map`. The routes that use it are in
//! `routes/auth.rs`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use dozor_model::{Role, TenantId};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{ApiError, Secret};

/// How long a started login may take.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Most logins in flight; beyond it the oldest are forgotten.
const MAX_PENDING: usize = 10_000;
/// How long the discovery document is trusted.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Shortest time between two JWKS fetches (a token naming an unknown key triggers one).
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(60);
/// Timeout of each call to the issuer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Signature algorithms accepted in ID tokens (never `none`, never HMAC with a public key).
const ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// `auth.oidc`.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The issuer's URL, exactly as its tokens' `iss` (discovery is under it).
    pub issuer: String,
    /// Dozor's client id at the issuer.
    pub client_id: String,
    /// Its secret.
    pub client_secret: Secret,
    /// Where the issuer sends the browser back: Dozor's `/api/v1/auth/oidc/callback`.
    pub redirect_url: String,
    /// Scopes asked for (`openid` is always among them).
    pub scopes: Vec<String>,
    /// The claim that names the user (`preferred_username`, `email`…).
    pub username_claim: String,
    /// The claim that lists the user's groups or roles (a string or an array).
    pub roles_claim: String,
    /// Group → role; the first group the user has wins.
    pub role_map: Vec<(String, Role)>,
    /// The role of users in none of the groups; `None`: they may not log in.
    pub default_role: Option<Role>,
    /// The tenant users are created in.
    pub tenant: TenantId,
}

/// Who the issuer vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The issuer's stable id of the user (`sub`).
    pub subject: String,
    /// The user name (from `username_claim`).
    pub username: String,
    /// The role from the groups.
    pub role: Role,
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Debug)]
struct Pending {
    nonce: String,
    verifier: String,
    at: Instant,
}

/// A configured OpenID Connect client.
#[derive(Debug)]
pub struct Oidc {
    settings: OidcSettings,
    discovery: tokio::sync::Mutex<Option<(Discovery, Instant)>>,
    jwks: tokio::sync::Mutex<Option<(JwkSet, Instant)>>,
    pending: Mutex<HashMap<String, Pending>>,
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The state is unknown, used already or too old.
    #[error("unknown or expired login state; start the login again")]
    State,
    /// The issuer could not be reached or answered nonsense.
    #[error("identity provider: {0}")]
    Issuer(String),
    /// The ID token did not verify.
    #[error("ID token rejected: {0}")]
    Token(String),
    /// The user is in none of the mapped groups and there is no default role.
    #[error("{0} is in none of the groups auth.oidc.role_map names")]
    NoRole(String),
}

impl From<OidcError> for ApiError {
    fn from(e: OidcError) -> ApiError {
        match e {
            OidcError::State => ApiError::bad_data(e.to_string()),
            OidcError::Issuer(_) => ApiError::bad_gateway(e.to_string()),
            OidcError::Token(_) => ApiError::unauthorized(e.to_string()),
            OidcError::NoRole(_) => ApiError::forbidden(e.to_string()),
        }
    }
}

fn random_text<const N: usize>() -> Result<String, OidcError> {
    dozor_state::random_bytes::<N>()
        .map(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
        .map_err(|e| OidcError::Issuer(format!("no randomness: {e}")))
}

/// The PKCE challenge of `verifier` (S256).
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Oidc {
    /// A client for `settings`; nothing is fetched until the first login.
    pub fn new(settings: OidcSettings) -> Oidc {
        Oidc {
            settings,
            discovery: tokio::sync::Mutex::new(None),
            jwks: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// GETs `url` from the issuer as JSON.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let (status, body) =
            dozor_ingest::probe::send_http_body(url, "GET", &[], None, CALL_TIMEOUT)
                .await
                .map_err(OidcError::Issuer)?;
        if status != 200 {
            return Err(OidcError::Issuer(format!("{url} answered HTTP {status}")));
        }
        serde_json::from_slice(&body).map_err(|e| OidcError::Issuer(format!("{url}: {e}")))
    }

    async fn discovery(&self) -> Result<Discovery, OidcError> {
        let mut cached = self.discovery.lock().await;
        if let Some((d, at)) = cached.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let d: Discovery = self.get_json(&url).await?;
        if d.issuer.trim_end_matches('/') != self.settings.issuer.trim_end_matches('/') {
            return Err(OidcError::Issuer(format!(
                "the discovery document names issuer {:?}, not {:?}",
                d.issuer, self.settings.issuer
            )));
        }
        *cached = Some((d.clone(), Instant::now()));
        Ok(d)
    }

    /// Starts a login: the issuer's authorization URL to send the browser to.
    pub async fn begin(&self) -> Result<String, OidcError> {
        let d = self.discovery().await?;
        let state = random_text::<16>()?;
        let nonce = random_text::<16>()?;
        let verifier = random_text::<32>()?;
        let mut scopes = self.settings.scopes.clone();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", self.settings.client_id.as_str()),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("scope", scopes.join(" ").as_str()),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge(&verifier).as_str()),
            ("code_challenge_method", "S256"),
        ])
        .map_err(|e| OidcError::Issuer(e.to_string()))?;
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.retain(|_, p| p.at.elapsed() < PENDING_TTL);
            if pending.len() >= MAX_PENDING {
                // A flood of started logins: the newest get a chance, not unbounded memory.
                pending.clear();
            }
            pending.insert(
                state,
                Pending {
                    nonce,
                    verifier,
                    at: Instant::now(),
                },
            );
        }
        let sep = if d.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{query}", d.authorization_endpoint))
    }

    /// Finishes a login with the `code` and `state` the browser brought back.
    pub async fn finish(&self, code: &str, state: &str) -> Result<Identity, OidcError> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(state)
            .filter(|p| p.at.elapsed() < PENDING_TTL)
            .ok_or(OidcError::State)?;
        let d = self.discovery().await?;
        let form = serde_urlencoded::to_string([
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ])
        .map_err(|e| OidcError::Issuer(e.to_string()))?;
        // client_secret_basic: both parts form-urlencoded first (RFC 6749 §2.3.1).
        let enc =
            |s: &str| serde_urlencoded::to_string([("", s)]).unwrap_or_default()[1..].to_owned();
        let secret = String::from_utf8_lossy(&self.settings.client_secret.0).into_owned();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(&self.settings.client_id),
            enc(&secret)
        ));
        let headers = [
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("accept".to_owned(), "application/json".to_owned()),
            ("authorization".to_owned(), format!("Basic {basic}")),
        ];
        let (status, body) = dozor_ingest::probe::send_http_body(
            &d.token_endpoint,
            "POST",
            &headers,
            Some(form.into_bytes()),
            CALL_TIMEOUT,
        )
        .await
        .map_err(OidcError::Issuer)?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status != 200 {
            // The token endpoint's error code (RFC 6749 §5.2), never the request.
            let why = answer["error"].as_str().unwrap_or("no error code");
            return Err(OidcError::Token(format!(
                "the token endpoint refused the code: HTTP {status}, {why}"
            )));
        }
        let id_token = answer["id_token"]
            .as_str()
            .ok_or_else(|| OidcError::Token("no id_token in the token answer".into()))?;
        let claims = self.verify(&d, id_token).await?;
        if claims["nonce"].as_str() != Some(pending.nonce.as_str()) {
            return Err(OidcError::Token("nonce does not match this login".into()));
        }
        self.identity(&claims)
    }

    /// Checks the ID token's signature and standard claims; its claims.
    async fn verify(&self, d: &Discovery, token: &str) -> Result<Value, OidcError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| OidcError::Token(e.to_string()))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(OidcError::Token(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = self.key(d, header.kid.as_deref()).await?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[self.settings.issuer.as_str()]);
        v.set_audience(&[self.settings.client_id.as_str()]);
        v.leeway = 60;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Value>(token, &key, &v)
            .map(|t| t.claims)
            .map_err(|e| OidcError::Token(e.to_string()))
    }

    /// The issuer's key `kid` (or its only key), fetching the JWKS again when it is not
    /// known yet.
    async fn key(&self, d: &Discovery, kid: Option<&str>) -> Result<DecodingKey, OidcError> {
        let mut cached = self.jwks.lock().await;
        for fetch in [false, true] {
            let fresh = cached
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() < JWKS_MIN_REFETCH);
            if fetch && !fresh || cached.is_none() {
                let set: JwkSet = self.get_json(&d.jwks_uri).await?;
                *cached = Some((set, Instant::now()));
            }
            if let Some((set, _)) = cached.as_ref() {
                let found = match kid {
                    Some(k) => set.find(k),
                    None if set.keys.len() == 1 => set.keys.first(),
                    None => None,
                };
                if let Some(jwk) = found {
                    return DecodingKey::from_jwk(jwk).map_err(|e| OidcError::Token(e.to_string()));
                }
            }
        }
        Err(OidcError::Token(format!(
            "no key {kid:?} in the issuer's JWKS"
        )))
    }

    /// The user and role the verified claims name.
    fn identity(&self, claims: &Value) -> Result<Identity, OidcError> {
        let s = &self.settings;
        let subject = claims["sub"]
            .as_str()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OidcError::Token("no sub".into()))?
            .to_owned();
        let username = claims[s.username_claim.as_str()]
            .as_str()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OidcError::Token(format!("no {} claim", s.username_claim)))?
            .to_owned();
        let groups: Vec<&str> = match &claims[s.roles_claim.as_str()] {
            Value::String(g) => vec![g.as_str()],
            Value::Array(gs) => gs.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let role = s
            .role_map
            .iter()
            .find(|(g, _)| groups.contains(&g.as_str()))
            .map(|(_, r)| *r)
            .or(s.default_role)
            .ok_or_else(|| OidcError::NoRole(username.clone()))?;
        Ok(Identity {
            subject,
            username,
            role,
        })
    }

    /// What a user made by this issuer keeps in its password field: not a password hash
    /// (so the password login never accepts it), but the mark of this issuer's subject — a
    /// later login of the same name from elsewhere is refused rather than taken over.
    pub fn account_mark(&self, subject: &str) -> String {
        let digest = Sha256::digest(format!("{}\0{subject}", self.settings.issuer).as_bytes());
        format!("!oidc:{}", hex::encode(digest))
    }
}
