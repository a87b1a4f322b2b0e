//! Buttons in chat messages and what comes back when someone presses them: Slack's
//! interactive Acknowledge and Resolve buttons (Block Kit `actions`, requests signed by
//! Slack with the app's signing secret) and Telegram's inline Acknowledge button
//! (`callback_query` updates, authenticated by the webhook's secret token). Pure: the
//! signature check, the payloads' reading and the buttons' values; the API acts on them.
//!
//! A button names the alert group by a short key — FNV-1a of tenant and group key, 16 hex
//! digits — which fits Telegram's 64-byte `callback_data`; the API finds the group (and
//! its incident) by it.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// How far a Slack request's timestamp may be from now (Slack's advice: 5 minutes).
pub const SLACK_SKEW_S: i64 = 300;

/// What a button asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Acknowledge the group's incident and alerts.
    Acknowledge,
    /// Resolve the group's incident.
    Resolve,
}

/// A pressed button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    /// What it asks for.
    pub intent: Intent,
    /// The group's short key.
    pub key: String,
    /// Who pressed it (the chat's user name).
    pub user: String,
}

/// The short key of a group: FNV-1a of tenant, a NUL and group key, 16 hex digits.
pub fn short_key(tenant: &str, group_key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.bytes().chain([0]).chain(group_key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Slack's `actions` block with the two buttons for group `key`.
pub fn slack_buttons(key: &str) -> Value {
    json!({
        "type": "actions",
        "block_id": "dozor",
        "elements": [
            {"type": "button", "action_id": "dozor_ack", "style": "primary",
             "text": {"type": "plain_text", "text": "Acknowledge"}, "value": key},
            {"type": "button", "action_id": "dozor_resolve", "style": "danger",
             "text": {"type": "plain_text", "text": "Resolve"}, "value": key},
        ],
    })
}

/// Telegram's `reply_markup` with the Acknowledge button for group `key`.
pub fn telegram_buttons(key: &str) -> Value {
    json!({"inline_keyboard": [[{"text": "Acknowledge", "callback_data": format!("ack:{key}")}]]})
}

/// HMAC-SHA256 of Slack's base string `v0:<timestamp>:<body>` under the signing secret.
fn slack_mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Result<Hmac<Sha256>, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| e.to_string())?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    Ok(mac)
}

/// Checks Slack's signature: `X-Slack-Signature` must be `v0=` and the hex HMAC-SHA256 of
/// `v0:<timestamp>:<body>` under the signing secret, and `X-Slack-Request-Timestamp`
/// within [`SLACK_SKEW_S`] of `now_s` (no replays).
pub fn slack_verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now_s: i64,
) -> Result<(), String> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| "X-Slack-Request-Timestamp: not a number".to_owned())?;
    if (now_s - ts).abs() > SLACK_SKEW_S {
        return Err("X-Slack-Request-Timestamp: too far from now".into());
    }
    let given = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or("X-Slack-Signature: not v0=<hex>")?;
    // Constant-time comparison.
    slack_mac(secret, timestamp.trim(), body)?
        .verify_slice(&given)
        .map_err(|_| "X-Slack-Signature: does not match".to_owned())
}

/// The signature Slack would send (for tests and tools).
pub fn slack_sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    slack_mac(secret, timestamp, body).map_or_else(
        |_| String::new(),
        |mac| format!("v0={}", hex::encode(mac.finalize().into_bytes())),
    )
}

/// Reads Slack's interaction request (`application/x-www-form-urlencoded`, `payload` a
/// JSON `block_actions`): the first of our buttons pressed.
pub fn slack_click(body: &[u8]) -> Result<Click, String> {
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| format!("body: not a form ({e})"))?;
    let payload = form
        .iter()
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v)
        .ok_or("payload: missing")?;
    let v: Value = serde_json::from_str(payload).map_err(|e| format!("payload: not JSON ({e})"))?;
    if v["type"] != "block_actions" {
        return Err("payload.type: only block_actions are handled".into());
    }
    let user = v["user"]["username"]
        .as_str()
        .or_else(|| v["user"]["name"].as_str())
        .or_else(|| v["user"]["id"].as_str())
        .ok_or("payload.user: missing")?
        .to_owned();
    let action = v["actions"]
        .as_array()
        .and_then(|a| a.first())
        .ok_or("payload.actions: empty")?;
    let intent = match action["action_id"].as_str() {
        Some("dozor_ack") => Intent::Acknowledge,
        Some("dozor_resolve") => Intent::Resolve,
        _ => return Err("payload.actions[0].action_id: not a Dozor button".into()),
    };
    let key = action["value"]
        .as_str()
        .filter(|k| k.len() == 16 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("payload.actions[0].value: not a group key")?
        .to_owned();
    Ok(Click { intent, key, user })
}

/// Reads a Telegram update: a `callback_query` of our button (other updates: `Ok(None)`).
pub fn telegram_click(body: &[u8]) -> Result<Option<Click>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body: not JSON ({e})"))?;
    let Some(q) = v.get("callback_query") else {
        return Ok(None);
    };
    let data = q["data"].as_str().ok_or("callback_query.data: missing")?;
    let key = data
        .strip_prefix("ack:")
        .filter(|k| k.len() == 16 && k.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or("callback_query.data: not a Dozor button")?;
    let from = &q["from"];
    let user = from["username"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| from["id"].as_i64().map(|i| i.to_string()))
        .ok_or("callback_query.from: missing")?;
    Ok(Some(Click {
        intent: Intent::Acknowledge,
        key: key.to_owned(),
        user,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_own_example_signature_verifies() {
        // Slack's documentation example ("Verifying requests from Slack").
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        let ts = "1531420618";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(slack_sign(secret, ts, body), sig);
        assert!(slack_verify(secret, ts, sig, body, 1_531_420_618 + 10).is_ok());
        assert!(
            slack_verify(secret, ts, sig, body, 1_531_420_618 + 301)
                .unwrap_err()
                .contains("too far")
        );
        assert!(
            slack_verify(b"other", ts, sig, body, 1_531_420_618)
                .unwrap_err()
                .contains("does not match")
        );
        assert!(slack_verify(secret, ts, "v1=00", body, 1_531_420_618).is_err());
    }

    #[test]
    fn clicks_are_read_from_both_chats() {
        let key = short_key("default", "{}:{alertname=\"Down\"}");
        assert_eq!(key.len(), 16);
        let payload = json!({"type": "block_actions", "user": {"id": "U1", "username": "ann"},
            "actions": [{"action_id": "dozor_resolve", "value": key}]});
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let c = slack_click(body.as_bytes()).unwrap();
        assert_eq!((c.intent, c.user.as_str()), (Intent::Resolve, "ann"));
        assert_eq!(slack_buttons(&key)["elements"][0]["value"], key.as_str());
        let update = json!({"update_id": 1, "callback_query": {"id": "9", "from": {"id": 42, "username": "bob"}, "data": format!("ack:{key}")}});
        let t = telegram_click(update.to_string().as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.intent, t.key.as_str(), t.user.as_str()),
            (Intent::Acknowledge, key.as_str(), "bob")
        );
        assert_eq!(
            telegram_click(br#"{"update_id": 2, "message": {}}"#).unwrap(),
            None
        );
        for (body, want) in [
            (&b"payload=%7B%7D"[..], "block_actions"),
            (b"nothing=1", "payload: missing"),
            (b"payload=not-json", "not JSON"),
        ] {
            assert!(slack_click(body).unwrap_err().contains(want), "{want}");
        }
        let bad = json!({"callback_query": {"from": {"id": 1}, "data": "ack:zz"}});
        assert!(telegram_click(bad.to_string().as_bytes()).is_err());
    }
}
