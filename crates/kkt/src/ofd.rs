//! OFD API clients: what the fiscal data operator received from each register, its FN end
//! date and the contract's paid-until date (`KKT.md` §2.8, §3.5).
//!
//! Three dialects, each from the providers' real shapes:
//! - `ofdru` (ОФД.ру): `POST /api/Authorization/CreateAuthToken` with `{Login, Password}`
//!   gives a token passed as `?AuthToken=`; `GET /api/integration/v1/inn/{inn}/kkts` lists
//!   the registers (`KktRegId`, `FnNumber`, `FnEndDate`, `ContractEndDate`,
//!   `LastDocOnOfdDateTimeUtc`, …);
//! - `taxcom` (Такском API v2): `POST /API/v2/Login` with the `Integrator-ID` header gives a
//!   `sessionToken` sent as `Session-Token`; `OutletList` → `KKTList?id=` → `KKTInfo?fn=`
//!   (`fnEndDateTime`, `cashdeskState`, `cashdeskEndDateTime`, `lastDocumentState`, …);
//! - `neutral`: `GET /mock/v1/kkts`, a list of `KKT.md` §3.5's status objects, with bearer or
//!   basic authentication — the shape `dozor sim ofd` serves and a provider-neutral gateway
//!   can.
//!
//! Sessions are kept until they expire or are refused; a refused session is replaced once
//! per poll. Real OFD APIs do not report a register's unsent documents; the neutral dialect
//! may (`unsent_documents`), and `null` means unknown.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// One register as an OFD sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OfdKkt {
    /// Registration number (tag 1037).
    pub reg_number: String,
    /// The FN the OFD knows.
    pub fn_number: Option<String>,
    /// The FN's end date, Unix ms.
    pub fn_end_at: Option<i64>,
    /// The newest document the OFD received, Unix ms.
    pub last_document_at: Option<i64>,
    /// The contract's (paid-until) end, Unix ms.
    pub contract_end_at: Option<i64>,
    /// The OFD's state of the register (`active`, `fn_expiring`, `unpaid`, …), lower case.
    pub state: Option<String>,
    /// The last document's processing state (`ok`, `warning`, `problem`).
    pub last_document_state: Option<String>,
    /// Unsent documents, when the OFD can know.
    pub unsent_documents: Option<u64>,
    /// When this view was fetched, Unix ms (set by the fleet).
    pub checked_at: i64,
}

/// Why a poll failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfdError {
    /// Connection refused, DNS, TLS.
    #[error("OFD unreachable: {0}")]
    Unreachable(String),
    /// No answer in time.
    #[error("OFD did not answer within {0:?}")]
    Timeout(Duration),
    /// Credentials refused.
    #[error("OFD refused the credentials (HTTP {0})")]
    Auth(u16),
    /// Any other non-2xx answer.
    #[error("OFD answered HTTP {0}")]
    Status(u16),
    /// A 2xx answer that is not what the dialect promises.
    #[error("OFD answer malformed: {0}")]
    Malformed(String),
}

impl OfdError {
    /// The `code` label of `ofd_api_errors_total`.
    pub fn code(&self) -> &'static str {
        match self {
            OfdError::Unreachable(_) => "unreachable",
            OfdError::Timeout(_) => "timeout",
            OfdError::Auth(_) => "auth",
            OfdError::Status(s) if *s >= 500 => "http_5xx",
            OfdError::Status(_) => "http_4xx",
            OfdError::Malformed(_) => "malformed",
        }
    }
}

/// The API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// ОФД.ру's integration API.
    Ofdru,
    /// Такском's API v2.
    Taxcom,
    /// `GET /mock/v1/kkts` with bearer or basic auth.
    Neutral,
}

/// A secret that never prints.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Hidden(pub String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// How to authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// Nothing (a local gateway).
    #[default]
    None,
    /// `Authorization: Bearer`.
    Bearer(Hidden),
    /// `Authorization: Basic`.
    Basic {
        /// User.
        username: String,
        /// Password.
        password: Hidden,
    },
    /// The dialect's login call (ОФД.ру, Такском).
    Login {
        /// Login.
        login: String,
        /// Password.
        password: Hidden,
    },
}

/// One provider to poll.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Its name: the `ofd` label.
    pub name: String,
    /// Its API.
    pub dialect: Dialect,
    /// Base URL (`https://ofd.ru`, `https://api-lk-ofd.taxcom.ru`).
    pub url: String,
    /// Credentials.
    pub auth: Auth,
    /// The organisation's INN (ОФД.ру lists registers per INN).
    pub inn: Option<String>,
    /// Такском's integrator id.
    pub integrator_id: Option<Hidden>,
    /// Deadline of each call.
    pub timeout: Duration,
}

/// A provider with its session.
pub struct Client {
    provider: Provider,
    session: Option<String>,
}

impl Client {
    /// A client of `provider`, not logged in yet.
    pub fn new(provider: Provider) -> Client {
        Client {
            provider,
            session: None,
        }
    }

    /// The provider.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// Every register the provider reports.
    pub async fn poll(&mut self) -> Result<Vec<OfdKkt>, OfdError> {
        match self.poll_once().await {
            Err(OfdError::Auth(_)) if self.session.is_some() => {
                // The session expired or was revoked: log in again, once.
                self.session = None;
                self.poll_once().await
            }
            other => other,
        }
    }

    async fn poll_once(&mut self) -> Result<Vec<OfdKkt>, OfdError> {
        match self.provider.dialect {
            Dialect::Neutral => self.neutral().await,
            Dialect::Ofdru => self.ofdru().await,
            Dialect::Taxcom => self.taxcom().await,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.provider.url.trim_end_matches('/'))
    }

    fn auth_headers(&self) -> Vec<(String, String)> {
        use base64::Engine as _;
        match &self.provider.auth {
            Auth::Bearer(t) => vec![("authorization".into(), format!("Bearer {}", t.0))],
            Auth::Basic { username, password } => {
                let raw = format!("{username}:{}", password.0);
                let enc = base64::engine::general_purpose::STANDARD.encode(raw);
                vec![("authorization".into(), format!("Basic {enc}"))]
            }
            Auth::None | Auth::Login { .. } => Vec::new(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<Value>,
    ) -> Result<Value, OfdError> {
        let timeout = self.provider.timeout;
        let mut headers = headers.to_vec();
        let body = body.map(|b| {
            headers.push(("content-type".into(), "application/json".into()));
            b.to_string().into_bytes()
        });
        let (status, answer) =
            dozor_ingest::probe::send_http_body(&self.url(path), method, &headers, body, timeout)
                .await
                .map_err(|e| {
                    if e.starts_with("no answer within") {
                        OfdError::Timeout(timeout)
                    } else {
                        OfdError::Unreachable(e)
                    }
                })?;
        match status {
            200..=299 => serde_json::from_slice(&answer)
                .map_err(|e| OfdError::Malformed(format!("{path}: {e}"))),
            401 | 403 => Err(OfdError::Auth(status)),
            s => Err(OfdError::Status(s)),
        }
    }

    fn login(&self) -> Result<(&str, &str), OfdError> {
        match &self.provider.auth {
            Auth::Login { login, password } => Ok((login, &password.0)),
            _ => Err(OfdError::Malformed(format!(
                "the {:?} dialect needs `auth: {{login, password}}`",
                self.provider.dialect
            ))),
        }
    }

    async fn neutral(&mut self) -> Result<Vec<OfdKkt>, OfdError> {
        let headers = self.auth_headers();
        let v = self.call("GET", "/mock/v1/kkts", &headers, None).await?;
        let list = v
            .as_array()
            .or_else(|| v.get("kkts").and_then(Value::as_array))
            .ok_or_else(|| OfdError::Malformed("/mock/v1/kkts: expected a list".into()))?;
        list.iter()
            .enumerate()
            .map(|(i, k)| neutral_kkt(k).map_err(|f| OfdError::Malformed(format!("[{i}].{f}"))))
            .collect()
    }

    async fn ofdru(&mut self) -> Result<Vec<OfdKkt>, OfdError> {
        let inn = self
            .provider
            .inn
            .clone()
            .ok_or_else(|| OfdError::Malformed("the ofdru dialect needs `inn`".into()))?;
        if self.session.is_none() {
            let (login, password) = self.login()?;
            let body = json!({"Login": login, "Password": password});
            let v = self
                .call(
                    "POST",
                    "/api/Authorization/CreateAuthToken",
                    &[],
                    Some(body),
                )
                .await?;
            let token = v
                .get("AuthToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| OfdError::Malformed("CreateAuthToken: no AuthToken".into()))?;
            self.session = Some(token.to_owned());
        }
        let token = self.session.clone().unwrap_or_default();
        let path = format!(
            "/api/integration/v1/inn/{}/kkts?AuthToken={}",
            dozor_ingest::percent_encode(&inn),
            dozor_ingest::percent_encode(&token)
        );
        let v = self.call("GET", &path, &[], None).await?;
        if v.get("Status").and_then(Value::as_str) != Some("Success") {
            return Err(OfdError::Malformed(format!(
                "kkts: Status is {}",
                v.get("Status").unwrap_or(&Value::Null)
            )));
        }
        let data = v
            .get("Data")
            .and_then(Value::as_array)
            .ok_or_else(|| OfdError::Malformed("kkts: no Data list".into()))?;
        data.iter()
            .enumerate()
            .map(|(i, k)| {
                let reg = k
                    .get("KktRegId")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| OfdError::Malformed(format!("Data[{i}].KktRegId: missing")))?;
                // Contract and FN dates are calendar dates; the *Utc fields are UTC.
                Ok(OfdKkt {
                    reg_number: reg.to_owned(),
                    fn_number: str_field(k, "FnNumber"),
                    fn_end_at: date_field(k, "FnEndDate"),
                    last_document_at: date_field(k, "LastDocOnOfdDateTimeUtc"),
                    contract_end_at: date_field(k, "ContractEndDate"),
                    state: None,
                    last_document_state: None,
                    unsent_documents: None,
                    checked_at: 0,
                })
            })
            .collect()
    }

    async fn taxcom(&mut self) -> Result<Vec<OfdKkt>, OfdError> {
        let integrator = self.provider.integrator_id.clone().ok_or_else(|| {
            OfdError::Malformed("the taxcom dialect needs `integrator_id`".into())
        })?;
        if self.session.is_none() {
            let (login, password) = self.login()?;
            let v = self
                .call(
                    "POST",
                    "/API/v2/Login",
                    &[("integrator-id".into(), integrator.0.clone())],
                    Some(json!({"login": login, "password": password})),
                )
                .await?;
            let token = v
                .get("sessionToken")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| OfdError::Malformed("Login: no sessionToken".into()))?;
            self.session = Some(token.to_owned());
        }
        let headers = vec![(
            "session-token".to_owned(),
            self.session.clone().unwrap_or_default(),
        )];
        let outlets = self
            .call("GET", "/API/v2/OutletList", &headers, None)
            .await?;
        let mut out = Vec::new();
        for outlet in records(&outlets, "OutletList")? {
            let id = outlet
                .get("id")
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .ok_or_else(|| OfdError::Malformed("OutletList: a record without id".into()))?;
            let path = format!("/API/v2/KKTList?id={}", dozor_ingest::percent_encode(&id));
            let kkts = self.call("GET", &path, &headers, None).await?;
            for k in records(&kkts, "KKTList")? {
                let Some(fn_number) = str_field(k, "fnFactoryNumber") else {
                    continue;
                };
                let path = format!(
                    "/API/v2/KKTInfo?fn={}",
                    dozor_ingest::percent_encode(&fn_number)
                );
                let info = self.call("GET", &path, &headers, None).await?;
                let c = info
                    .get("cashdesk")
                    .ok_or_else(|| OfdError::Malformed("KKTInfo: no cashdesk".into()))?;
                let reg = str_field(c, "kktRegNumber")
                    .or_else(|| str_field(k, "kktRegNumber"))
                    .ok_or_else(|| OfdError::Malformed("KKTInfo: no kktRegNumber".into()))?;
                out.push(OfdKkt {
                    reg_number: reg,
                    fn_number: Some(fn_number),
                    fn_end_at: date_field(c, "fnEndDateTime"),
                    last_document_at: date_field(c, "lastDocumentDateTime"),
                    contract_end_at: date_field(c, "cashdeskEndDateTime"),
                    state: str_field(c, "cashdeskState").map(|s| snake(&s)),
                    last_document_state: str_field(c, "lastDocumentState")
                        .map(|s| s.to_lowercase()),
                    unsent_documents: None,
                    checked_at: 0,
                });
            }
        }
        Ok(out)
    }
}

fn records<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, OfdError> {
    v.get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| OfdError::Malformed(format!("{what}: no records list")))
}

fn neutral_kkt(k: &Value) -> Result<OfdKkt, String> {
    let reg = str_field(k, "kkt_reg_number").ok_or("kkt_reg_number: missing")?;
    let unsent = match k.get("unsent_documents") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or("unsent_documents: expected a count or null")?,
        ),
    };
    let date = |f: &str| -> Result<Option<i64>, String> {
        match k.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => date_field(k, f)
                .map(Some)
                .ok_or_else(|| format!("{f}: expected a date-time")),
        }
    };
    Ok(OfdKkt {
        reg_number: reg,
        fn_number: str_field(k, "fn_number"),
        fn_end_at: date("fn_end_at")?,
        last_document_at: date("last_document_at_ofd")?,
        contract_end_at: date("contract_end_at")?,
        state: str_field(k, "state"),
        last_document_state: str_field(k, "last_document_state"),
        unsent_documents: unsent,
        checked_at: 0,
    })
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// RFC 3339, or a date-time without offset (read as UTC), or a bare date.
fn date_field(v: &Value, key: &str) -> Option<i64> {
    let s = v.get(key)?.as_str()?.trim();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond());
    }
    let civil: jiff::civil::DateTime = s
        .parse()
        .or_else(|_| {
            s.parse::<jiff::civil::Date>()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .ok()?;
    Some(
        jiff::tz::TimeZone::UTC
            .to_timestamp(civil)
            .ok()?
            .as_millisecond(),
    )
}

/// `FNSRegistrationError` → `fns_registration_error`.
fn snake(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && chars[i - 1].is_lowercase();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_become_snake_case() {
        assert_eq!(snake("FNSRegistrationError"), "fns_registration_error");
        assert_eq!(snake("FNChange"), "fn_change");
        assert_eq!(snake("Active"), "active");
        assert_eq!(snake("Expires"), "expires");
    }

    #[test]
    fn dates_in_every_shape() {
        let v = json!({"a": "2026-11-23T09:00:00", "b": "2026-11-23T09:00:00Z", "c": "2026-11-23", "d": "x"});
        assert_eq!(date_field(&v, "a"), date_field(&v, "b"));
        assert_eq!(
            date_field(&v, "c").map(|c| date_field(&v, "a").unwrap() - c),
            Some(9 * 3_600_000)
        );
        assert_eq!(date_field(&v, "d"), None);
        assert_eq!(dozor_ingest::percent_encode("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn neutral_records_name_bad_fields() {
        let ok = json!({"kkt_reg_number": "1", "fn_end_at": "2027-01-01T00:00:00Z", "unsent_documents": null});
        assert_eq!(neutral_kkt(&ok).unwrap().unsent_documents, None);
        let bad = json!({"kkt_reg_number": "1", "unsent_documents": -1});
        assert!(
            neutral_kkt(&bad)
                .unwrap_err()
                .starts_with("unsent_documents")
        );
        let bad = json!({"kkt_reg_number": "1", "fn_end_at": "soon"});
        assert!(neutral_kkt(&bad).unwrap_err().starts_with("fn_end_at"));
        assert!(
            neutral_kkt(&json!({}))
                .unwrap_err()
                .starts_with("kkt_reg_number")
        );
    }
}
