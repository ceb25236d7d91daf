//! nova's `llm-chat` step: a chat completion on any OpenAI-compatible
//! endpoint (`POST {base_url}/chat/completions`), through `wasi:http`, with
//! the API key read from a secret through `wasi:config`. The config,
//! templating and answer live in [`chat`], unit-tested natively; its module
//! docs give the config.

pub mod chat;

use chat::Error;
use nova_plugin::RawStep;
use wasi_outbound::{Request, redacting, secret, send};

// Natively (unit tests) the export is compiled out.
struct LlmChat;

impl RawStep for LlmChat {
    const DESCRIPTION: &'static str = "A chat completion on an OpenAI-compatible endpoint \
                                       (config.base_url, model, messages templated from the \
                                       input); the API key is the secret llm_api_key; returns \
                                       {\"content\", \"usage\", \"model\"}.";

    fn run(input: &str, config: &str) -> Result<String, nova_plugin::Error> {
        let output = redacting(|revealed| run(input, config, revealed)).map_err(|e| match e {
            Error::InvalidInput(m) => nova_plugin::Error::InvalidInput(m),
            Error::Failed(m) => nova_plugin::Error::Failed(m),
        })?;
        Ok(output)
    }
}

fn run(input: &str, config: &str, revealed: &mut Vec<(String, String)>) -> Result<String, Error> {
    let config = chat::parse_config(config)?;
    let url = chat::endpoint(&config)?;
    let messages = chat::render(&config.messages, input)?;
    let mut headers = vec![
        ("content-type".to_string(), b"application/json".to_vec()),
        ("accept".to_string(), b"application/json".to_vec()),
    ];
    if !config.api_key_secret.is_empty() {
        let key = secret(&config.api_key_secret)?;
        revealed.push((config.api_key_secret.clone(), key.clone()));
        headers.push((
            "authorization".to_string(),
            format!("Bearer {key}").into_bytes(),
        ));
    }
    let body = chat::body(&config, &messages);
    nova_plugin::debug!(
        "chat completion: model {}, {} messages, {} bytes, to {}",
        config.model,
        messages.len(),
        body.len(),
        url.display()
    );
    let response = send(&Request {
        method: "POST",
        url: &url,
        headers: &headers,
        body: Some(&body),
        timeout_ms: config.timeout_ms,
    })?;
    chat::answer(&url, response.status, &response.body)
}

nova_plugin::export_raw_step!(LlmChat);
