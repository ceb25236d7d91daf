//! nova's `llm-chat` step: a chat completion on any OpenAI-compatible
//! endpoint (`POST {base_url}/chat/completions`), through `wasi:http`, with
//! the API key read from a secret through `wasi:config`. The config,
//! templating and answer live in [`chat`], unit-tested natively; its module
//! docs give the config.

pub mod chat;

wit_bindgen::generate!({ path: "../../wit/v0.1", world: "step" });

use chat::Error;
use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use nova::plugin::log::{Level, log};
use wasi_outbound::{Request, redacting, secret, send};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "A chat completion on an OpenAI-compatible endpoint (config.base_url, \
                          model, messages templated from the input); the API key is the secret \
                          llm_api_key; returns {\"content\", \"usage\", \"model\"}."
                .to_string(),
        }
    }

    fn run(input: String, config: String) -> Result<String, PluginError> {
        redacting(|revealed| run(&input, &config, revealed)).map_err(|e| match e {
            Error::InvalidInput(m) => PluginError::InvalidInput(m),
            Error::Failed(m) => PluginError::Failed(m),
        })
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
    log(
        Level::Debug,
        &format!(
            "chat completion: model {}, {} messages, {} bytes, to {}",
            config.model,
            messages.len(),
            body.len(),
            url.display()
        ),
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

#[cfg(target_arch = "wasm32")]
export!(Component);
