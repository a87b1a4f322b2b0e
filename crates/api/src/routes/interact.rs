//! Chat buttons coming back (`dozor_alerting::interact`):
//!
//! - `POST /api/v1/integrations/slack/interactions`: Slack's interactivity request URL.
//!   Public to the registry, authenticated by Slack's signature (`X-Slack-Signature`,
//!   `X-Slack-Request-Timestamp`) under `alerting.slack.signing_secret_file`; refused with
//!   401 otherwise, and 404 when no secret is configured.
//! - `POST /api/v1/integrations/telegram`: the bot's webhook (`setWebhook` with a
//!   `secret_token`). Public to the registry, authenticated by
//!   `X-Telegram-Bot-Api-Secret-Token` against `alerting.telegram.webhook_secret_file`.
//!
//! Acknowledge: the group's incident becomes acknowledged and its firing alerts are
//! acknowledged in the alert history, by `slack:<user>` or `telegram:<user>`; Resolve: the
//! incident resolves. Each change is audited as if the user had called the API. A button
//! of a group that is over is answered politely and changes nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::IntoResponse;
use dozor_alerting::interact::{self, Click, Intent};
use dozor_audit::{Entry, Outcome};
use dozor_model::time::now_ms;
use dozor_model::{Scope, ScopeSet};
use serde_json::{Value, json};

use crate::policy::{Policy, Registry};
use crate::{ApiError, AppState, ClientAddr, Principal};

pub(crate) fn register(r: Registry) -> Registry {
    r.route(
        Method::POST,
        "/api/v1/integrations/slack/interactions",
        Policy::Public,
        slack,
    )
    .route(
        Method::POST,
        "/api/v1/integrations/telegram",
        Policy::Public,
        telegram,
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn slack(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let Some(secret) = &state.settings().chat.slack_signing_secret else {
        return Err(ApiError::not_found("Slack interactions are not configured"));
    };
    let now_s = now_ms() / 1000;
    if let Err(e) = interact::slack_verify(
        &secret.0,
        header(&headers, "x-slack-request-timestamp"),
        header(&headers, "x-slack-signature"),
        &body,
        now_s,
    ) {
        refused(&state, source, "slack", &e).await?;
        return Err(ApiError::unauthorized(e));
    }
    let click = interact::slack_click(&body).map_err(ApiError::bad_data)?;
    let text = act(&state, source, "slack", &click).await?;
    Ok(axum::Json(
        json!({"response_type": "ephemeral", "replace_original": false, "text": text}),
    ))
}

async fn telegram(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let Some(secret) = &state.settings().chat.telegram_webhook_secret else {
        return Err(ApiError::not_found("Telegram updates are not configured"));
    };
    let given = header(&headers, "x-telegram-bot-api-secret-token").as_bytes();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(given, secret.0.as_slice())) {
        let e = "X-Telegram-Bot-Api-Secret-Token: does not match";
        refused(&state, source, "telegram", e).await?;
        return Err(ApiError::unauthorized(e));
    }
    let Some(click) = interact::telegram_click(&body).map_err(ApiError::bad_data)? else {
        return Ok(axum::Json(Value::Null));
    };
    let text = act(&state, source, "telegram", &click).await?;
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["callback_query"]["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    // Telegram takes a method call as the webhook's answer.
    Ok(axum::Json(
        json!({"method": "answerCallbackQuery", "callback_query_id": id, "text": text}),
    ))
}

async fn refused(state: &AppState, source: String, chat: &str, why: &str) -> Result<(), ApiError> {
    let entry = Entry::new(
        "",
        format!("{chat}:?"),
        "chat.interaction",
        chat,
        Outcome::Denied,
    )
    .source(source)
    .detail("reason", why);
    state.audit_entry(entry).await
}

/// Does what the button asks; a sentence for the chat.
async fn act(
    state: &AppState,
    source: String,
    chat: &str,
    click: &Click,
) -> Result<String, ApiError> {
    let now = now_ms();
    let Some((tenant, group_key, alerts)) = state.notifications().find_group(&click.key, now)
    else {
        return Ok("This alert group is over.".into());
    };
    let actor = format!("{chat}:{}", click.user);
    let principal = Principal {
        tenant: tenant.clone(),
        actor: actor.clone(),
        user_id: None,
        role: None,
        scopes: ScopeSet::from_iter([Scope::Write]),
    };
    let incident = state
        .store()
        .open_incident_of_group(&tenant, &group_key)
        .await?;
    let mut done = Vec::new();
    if let Some(i) = &incident {
        let to = match click.intent {
            Intent::Acknowledge => "acknowledged",
            Intent::Resolve => "resolved",
        };
        let comment = format!(r#"{{"comment": "from {chat}"}}"#);
        match crate::routes::incidents::transition(
            state,
            &principal,
            source.clone(),
            &i.id,
            comment.as_bytes(),
            to,
        )
        .await
        {
            Ok(_) => done.push(format!("incident {to}")),
            Err(e) => done.push(e.message().to_owned()),
        }
    }
    if click.intent == Intent::Acknowledge {
        let mut acked = 0;
        for a in &alerts {
            let fp = a.fingerprint();
            if state
                .store()
                .alert_acknowledged(&tenant, &fp, now, &actor, Some(&format!("from {chat}")))
                .await?
                .is_some()
            {
                acked += 1;
                let entry = Entry::new(
                    tenant.as_str(),
                    actor.as_str(),
                    "alert.acknowledge",
                    format!("alert/{fp}"),
                    Outcome::Success,
                )
                .source(source.clone());
                state.audit_entry(entry).await?;
            }
        }
        if acked > 0 {
            done.push(format!("{acked} alert(s) acknowledged"));
        }
    }
    Ok(if done.is_empty() {
        "Nothing to change.".into()
    } else {
        format!("{} by {}.", done.join(", "), click.user)
    })
}
