//! Optional summaries by a language model (`ai.llm` in `dozor.yml`, seed 000's AI
//! providers): an OpenAI-compatible chat-completions API (OpenAI, Azure's compatible
//! endpoint, vLLM, Ollama, LocalAI…) or Anthropic's Messages API, at a configurable base
//! URL. Without one, or when it fails, callers use their own deterministic text: the
//! model only ever rephrases what Dozor already computed, and is sent no raw log lines —
//! only templates and counts.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Secret;

/// Which API the provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `POST {base}/chat/completions`, bearer key.
    OpenAi,
    /// `POST {base}/v1/messages`, `x-api-key` and `anthropic-version`.
    Anthropic,
}

/// `ai.llm`.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// The API.
    pub provider: Provider,
    /// Base URL (`https://api.openai.com/v1`, `https://api.anthropic.com`).
    pub base_url: String,
    /// The model name.
    pub model: String,
    /// The key (never logged).
    pub api_key: Secret,
    /// How long a call may take.
    pub timeout: Duration,
}

/// The instruction every summary starts from.
const SYSTEM: &str = "You are the assistant of Dozor, a monitoring system. Summarise for an \
                      on-call engineer, in at most three sentences, what the data below says. \
                      Use only the data given; do not invent causes.";

/// Asks the model to summarise `data` (a compact text Dozor prepared); the answer's text,
/// or why there is none.
pub async fn summarise(s: &LlmSettings, data: &str) -> Result<String, String> {
    let key = String::from_utf8_lossy(&s.api_key.0).into_owned();
    let base = s.base_url.trim_end_matches('/');
    let json_type = ("content-type".to_owned(), "application/json".to_owned());
    let (url, headers, body) = match s.provider {
        Provider::OpenAi => (
            format!("{base}/chat/completions"),
            vec![
                json_type,
                ("authorization".to_owned(), format!("Bearer {key}")),
            ],
            json!({
                "model": s.model,
                "temperature": 0,
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": data},
                ],
            }),
        ),
        Provider::Anthropic => (
            format!("{base}/v1/messages"),
            vec![
                json_type,
                ("x-api-key".to_owned(), key),
                ("anthropic-version".to_owned(), "2023-06-01".to_owned()),
            ],
            json!({
                "model": s.model,
                "max_tokens": 400,
                "system": SYSTEM,
                "messages": [{"role": "user", "content": data}],
            }),
        ),
    };
    let (status, answer) = dozor_ingest::probe::send_http_body(
        &url,
        "POST",
        &headers,
        Some(body.to_string().into_bytes()),
        s.timeout,
    )
    .await
    .map_err(|e| format!("the model's API did not answer: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("the model's API answered HTTP {status}"));
    }
    let v: Value = serde_json::from_slice(&answer)
        .map_err(|e| format!("the model's answer is not JSON: {e}"))?;
    let text = match s.provider {
        Provider::OpenAi => v["choices"][0]["message"]["content"].as_str(),
        Provider::Anthropic => v["content"][0]["text"].as_str(),
    };
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| "the model's answer has no text".to_owned())
}
