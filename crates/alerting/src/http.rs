//! The integrations' `http_config` (Prometheus' HTTP client settings), the part that
//! decides what a request carries: `authorization` (`type`, default `Bearer`, with
//! `credentials` or `credentials_file`), `basic_auth` (`username`, `password` or
//! `password_file`), the older `bearer_token` / `bearer_token_file`, and `http_headers`
//! (each header's `values`, `secrets` or `files`). Secrets in files are read at each send,
//! so a rotated one is picked up. Other keys (`tls_config`, `proxy_url`, `oauth2`,
//! `follow_redirects`…) are reported as not applied.

use serde_json::Value;

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SecretSource {
    /// Written in the configuration.
    Inline(String),
    /// Read from this file at each send.
    File(String),
}

/// A header value: literal, or parts of it from a secret.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    /// As written.
    Plain(String),
    /// `prefix` followed by a secret.
    Secret {
        /// Written before the secret (`Bearer `).
        prefix: String,
        /// The secret.
        secret: SecretSource,
    },
    /// `Basic` credentials: a user and a secret password.
    Basic {
        /// User.
        user: String,
        /// Password.
        password: SecretSource,
    },
}

/// What an `http_config` adds to requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpSettings {
    /// Headers in order.
    pub headers: Vec<(String, HeaderValue)>,
    /// Keys accepted but not applied.
    pub unsupported: Vec<String>,
}

fn string(v: &Value, at: &str) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{at}: a string"))
}

fn one_of(
    obj: &serde_json::Map<String, Value>,
    inline: &str,
    file: &str,
    at: &str,
) -> Result<Option<SecretSource>, String> {
    match (obj.get(inline), obj.get(file)) {
        (Some(_), Some(_)) => Err(format!("{at}: {inline} or {file}, not both")),
        (Some(v), None) => Ok(Some(SecretSource::Inline(string(
            v,
            &format!("{at}.{inline}"),
        )?))),
        (None, Some(v)) => Ok(Some(SecretSource::File(string(
            v,
            &format!("{at}.{file}"),
        )?))),
        (None, None) => Ok(None),
    }
}

/// Reads an `http_config` (absent: nothing); errors name the key under `at`.
pub fn settings(v: Option<&Value>, at: &str) -> Result<HttpSettings, String> {
    let mut out = HttpSettings::default();
    let Some(v) = v else {
        return Ok(out);
    };
    let obj = v.as_object().ok_or_else(|| format!("{at}: a mapping"))?;
    for (key, value) in obj {
        let here = format!("{at}.{key}");
        match key.as_str() {
            "authorization" => {
                let a = value
                    .as_object()
                    .ok_or_else(|| format!("{here}: a mapping"))?;
                let kind = match a.get("type") {
                    Some(t) => string(t, &format!("{here}.type"))?,
                    None => "Bearer".into(),
                };
                let secret = one_of(a, "credentials", "credentials_file", &here)?
                    .ok_or_else(|| format!("{here}: credentials or credentials_file"))?;
                out.headers.push((
                    "Authorization".into(),
                    HeaderValue::Secret {
                        prefix: format!("{kind} "),
                        secret,
                    },
                ));
            }
            "basic_auth" => {
                let b = value
                    .as_object()
                    .ok_or_else(|| format!("{here}: a mapping"))?;
                let user = string(
                    b.get("username")
                        .ok_or_else(|| format!("{here}.username: required"))?,
                    &format!("{here}.username"),
                )?;
                let password = one_of(b, "password", "password_file", &here)?
                    .unwrap_or(SecretSource::Inline(String::new()));
                out.headers.push((
                    "Authorization".into(),
                    HeaderValue::Basic { user, password },
                ));
            }
            "bearer_token" | "bearer_token_file" => {
                let secret = one_of(obj, "bearer_token", "bearer_token_file", at)?
                    .ok_or_else(|| format!("{here}: empty"))?;
                if key == "bearer_token" || !obj.contains_key("bearer_token") {
                    out.headers.push((
                        "Authorization".into(),
                        HeaderValue::Secret {
                            prefix: "Bearer ".into(),
                            secret,
                        },
                    ));
                }
            }
            "http_headers" => {
                let h = value
                    .as_object()
                    .ok_or_else(|| format!("{here}: a mapping"))?;
                for (name, spec) in h {
                    let at_h = format!("{here}.{name}");
                    let s = spec
                        .as_object()
                        .ok_or_else(|| format!("{at_h}: a mapping"))?;
                    for (kind, list) in s {
                        let items = list
                            .as_array()
                            .ok_or_else(|| format!("{at_h}.{kind}: a list"))?;
                        for item in items {
                            let text = string(item, &format!("{at_h}.{kind}"))?;
                            let value = match kind.as_str() {
                                "values" => HeaderValue::Plain(text),
                                "secrets" => HeaderValue::Secret {
                                    prefix: String::new(),
                                    secret: SecretSource::Inline(text),
                                },
                                "files" => HeaderValue::Secret {
                                    prefix: String::new(),
                                    secret: SecretSource::File(text),
                                },
                                other => return Err(format!("{at_h}: unknown key {other:?}")),
                            };
                            out.headers.push((name.clone(), value));
                        }
                    }
                }
            }
            other => out.unsupported.push(other.to_owned()),
        }
    }
    if out
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .count()
        > 1
    {
        return Err(format!(
            "{at}: one of authorization, basic_auth and bearer_token"
        ));
    }
    Ok(out)
}

/// An `Authorization: Basic …` value.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl HttpSettings {
    /// The headers, secrets read through `read` (a file's contents, trimmed).
    pub fn resolve(
        &self,
        read: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Vec<(String, String)>, String> {
        let secret = |s: &SecretSource| match s {
            SecretSource::Inline(v) => Ok(v.clone()),
            SecretSource::File(f) => read(f),
        };
        self.headers
            .iter()
            .map(|(name, v)| {
                let value = match v {
                    HeaderValue::Plain(p) => p.clone(),
                    HeaderValue::Secret { prefix, secret: s } => format!("{prefix}{}", secret(s)?),
                    HeaderValue::Basic { user, password } => basic(user, &secret(password)?),
                };
                Ok((name.clone(), value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<HttpSettings, String> {
        let v: Value = serde_saphyr::from_str(yaml).unwrap();
        settings(Some(&v), "http_config")
    }

    fn files(f: &str) -> Result<String, String> {
        Ok(format!("<{f}>"))
    }

    #[test]
    fn every_way_of_saying_credentials_and_headers() {
        let s = parse("authorization: {credentials: t0k}\nhttp_headers: {X-Team: {values: [ops]}, X-Key: {files: [/k]}}\ntls_config: {insecure_skip_verify: true}\n").unwrap();
        assert_eq!(s.unsupported, ["tls_config"]);
        let h = s.resolve(&files).unwrap();
        assert!(h.contains(&("Authorization".into(), "Bearer t0k".into())));
        assert!(h.contains(&("X-Team".into(), "ops".into())));
        assert!(h.contains(&("X-Key".into(), "</k>".into())));
        let basic = parse("basic_auth: {username: am, password_file: /p}\n").unwrap();
        assert_eq!(
            basic.resolve(&files).unwrap(),
            [("Authorization".to_owned(), "Basic YW06PC9wPg==".to_owned())],
            "am:</p>"
        );
        let old = parse("bearer_token_file: /t\n").unwrap();
        assert_eq!(old.resolve(&files).unwrap()[0].1, "Bearer </t>");
        let custom = parse("authorization: {type: Token, credentials_file: /c}\n").unwrap();
        assert_eq!(custom.resolve(&files).unwrap()[0].1, "Token </c>");
        assert_eq!(settings(None, "x").unwrap(), HttpSettings::default());
    }

    #[test]
    fn mistakes_name_the_key() {
        for (yaml, want) in [
            (
                "authorization: {}\n",
                "http_config.authorization: credentials",
            ),
            (
                "authorization: {credentials: a, credentials_file: b}\n",
                "not both",
            ),
            ("basic_auth: {password: x}\n", "basic_auth.username"),
            ("http_headers: {X: {colours: [red]}}\n", "unknown key"),
            (
                "http_headers: {X: {values: [1]}}\n",
                "http_headers.X.values",
            ),
            (
                "authorization: {credentials: a}\nbasic_auth: {username: u}\n",
                "one of",
            ),
            ("[]\n", "a mapping"),
        ] {
            let e = parse(yaml).unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }
}
