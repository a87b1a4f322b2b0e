//! The text of an `alertmanager.yml` with its secrets replaced by `<secret>`, as
//! Alertmanager shows its configuration (`GET /api/v2/status`, `amtool config show`):
//! receiver URLs that carry tokens, routing and API keys, passwords, bearer credentials.
//!
//! Written over the text rather than the parsed configuration so that comments, order
//! and layout stay as the operator wrote them (and no YAML writer is needed). A value is
//! what follows `key:` — a quoted string, or up to the end of the line in block style, or
//! up to `,` `}` `]` inside a flow collection.

/// Keys whose values are secrets: Alertmanager's `Secret` and `SecretURL` fields, the
/// `http_config` credentials, and Dozor's own receivers' keys. `*_file` keys hold paths
/// and stay.
const SECRET_KEYS: &[&str] = &[
    "api_url",
    "slack_api_url",
    "webhook_url",
    "url",
    "proxy_url",
    "routing_key",
    "service_key",
    "auth_password",
    "auth_secret",
    "smtp_auth_password",
    "smtp_auth_secret",
    "api_key",
    "api_secret",
    "opsgenie_api_key",
    "victorops_api_key",
    "wechat_api_secret",
    "bot_token",
    "token",
    "user_key",
    "auth_token",
    "password",
    "credentials",
    "bearer_token",
    "client_secret",
    "secret_key",
    "signing_secret",
];

/// What replaces a secret.
pub const MASK: &str = "<secret>";

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `yaml` with the value of every secret key replaced by [`MASK`].
pub fn redact_secrets(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len());
    for line in yaml.split_inclusive('\n') {
        redact_line(line, &mut out);
    }
    out
}

/// One line: finds `key:` at word boundaries, outside quotes, and masks its value.
fn redact_line(line: &str, out: &mut String) {
    let b = line.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    // Open flow collections on this line: a plain value ends at `,` `}` `]` inside one.
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'#' if i == 0 || b[i - 1].is_ascii_whitespace() => break,
            b'\'' | b'"' => i = quoted_end(b, i),
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if is_key_byte(c) && (i == 0 || !is_key_byte(b[i - 1])) => {
                let start = i;
                while i < b.len() && is_key_byte(b[i]) {
                    i += 1;
                }
                let key = &line[start..i];
                let mut j = i;
                while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                    j += 1;
                }
                if j >= b.len() || b[j] != b':' {
                    continue;
                }
                j += 1;
                while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                    j += 1;
                }
                if j < b.len() && (b[j] == b'{' || b[j] == b'[') {
                    // A flow collection: its keys are looked at one by one.
                    i = j;
                    continue;
                }
                let end = value_end(b, j, depth > 0);
                if end > j && SECRET_KEYS.contains(&key) {
                    out.push_str(&line[copied..j]);
                    out.push_str(MASK);
                    copied = end;
                }
                i = end.max(j);
            }
            _ => i += 1,
        }
    }
    out.push_str(&line[copied..]);
}

/// The index just past the quoted string that starts at `start`.
fn quoted_end(b: &[u8], start: usize) -> usize {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        if quote == b'"' && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            // '' is an escaped quote inside a single-quoted string.
            if quote == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// Where the value starting at `start` ends (exclusive); `start` itself when there is
/// none (a nested mapping follows on the next lines).
fn value_end(b: &[u8], start: usize, in_flow: bool) -> usize {
    if start >= b.len() || b[start] == b'\n' || b[start] == b'\r' || b[start] == b'#' {
        return start;
    }
    if b[start] == b'\'' || b[start] == b'"' {
        return quoted_end(b, start);
    }
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'\n' | b'\r' => break,
            b'#' if b[i - 1].is_ascii_whitespace() => break,
            b',' | b'}' | b']' if in_flow => break,
            _ => i += 1,
        }
    }
    // Trailing blanks before a comment or the line end stay.
    while i > start && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_style_values_are_masked_and_the_rest_kept() {
        let yaml = "global:\n  slack_api_url: https://hooks.slack.com/services/T0/B0/XYZ # team\n  smtp_auth_password: 'hunter2'\n  smtp_from: dozor@example.com\nreceivers:\n  - name: pd\n    pagerduty_configs:\n      - routing_key: \"abc\\\"def\"\n        description: routing_key is secret\n        http_config:\n          authorization:\n            credentials: tok\n          basic_auth: {username: u, password: p@ss, }\n  - name: hook\n    webhook_configs: [{url: 'http://h/x?token=1', send_resolved: true}]\n    slack_configs:\n      - api_url_file: /etc/slack-url\n";
        let got = redact_secrets(yaml);
        let want = "global:\n  slack_api_url: <secret> # team\n  smtp_auth_password: <secret>\n  smtp_from: dozor@example.com\nreceivers:\n  - name: pd\n    pagerduty_configs:\n      - routing_key: <secret>\n        description: routing_key is secret\n        http_config:\n          authorization:\n            credentials: <secret>\n          basic_auth: {username: u, password: <secret>, }\n  - name: hook\n    webhook_configs: [{url: <secret>, send_resolved: true}]\n    slack_configs:\n      - api_url_file: /etc/slack-url\n";
        assert_eq!(got, want);
    }

    #[test]
    fn keys_inside_values_and_comments_are_left_alone() {
        for text in [
            "# password: not a key, a comment\n",
            "text: 'the password: is here'\n",
            "description: the password: is here\n",
            "title: \"url: x\"\n",
            "mypassword: kept\n",
            "password_file: /run/secrets/p\n",
            "route:\n  receiver: web\n",
        ] {
            assert_eq!(redact_secrets(text), text, "{text}");
        }
        // A key with a nested mapping below has no value on its line.
        assert_eq!(redact_secrets("url:\n  x: 1\n"), "url:\n  x: 1\n");
        // No trailing newline, CRLF.
        assert_eq!(redact_secrets("token: abc"), "token: <secret>");
        assert_eq!(redact_secrets("token: abc\r\n"), "token: <secret>\r\n");
    }
}
