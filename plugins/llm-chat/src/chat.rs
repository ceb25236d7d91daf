//! The `llm-chat` step's config, request and answer, apart from the WASI
//! bindings so they are unit-tested natively.
//!
//! Config:
//!
//! ```json
//! {
//!   "base_url": "https://api.openai.com/v1",
//!   "model": "gpt-4o-mini",
//!   "messages": [
//!     {"role": "system", "content": "You answer in one sentence."},
//!     {"role": "user", "content": "Summarise: {{ text }}"}
//!   ],
//!   "temperature": 0.2,
//!   "max_tokens": 256,
//!   "timeout_ms": 60000,
//!   "api_key_secret": "llm_api_key"
//! }
//! ```
//!
//! Each message's `content` is a minijinja template rendered with the
//! step's input: its keys are variables, and `input` is the whole input.
//! The request is `POST {base_url}/chat/completions` with `Authorization:
//! Bearer <the secret api_key_secret>` (`""`: no key, for a local server).
//! Output: `{"content", "usage", "model", "finish_reason"}`.

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;
use serde_json::{Map, Value, json};
pub use wasi_outbound::{Error, Url};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub base_url: String,
    pub model: String,
    pub messages: Vec<Message>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub timeout_ms: Option<u64>,
    #[serde(default = "default_secret")]
    pub api_key_secret: String,
}

fn default_secret() -> String {
    "llm_api_key".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: String,
    pub content: String,
}

pub fn parse_config(text: &str) -> Result<Config, Error> {
    let config: Config =
        serde_json::from_str(text).map_err(|e| Error::InvalidInput(format!("config: {e}")))?;
    if config.messages.is_empty() {
        return Err(Error::InvalidInput("config.messages is empty".into()));
    }
    for m in &config.messages {
        if !["system", "user", "assistant", "developer"].contains(&m.role.as_str()) {
            return Err(Error::InvalidInput(format!(
                "config.messages: role {:?} is not system, developer, user or assistant",
                m.role
            )));
        }
    }
    if let Some(t) = config.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(Error::InvalidInput("config.temperature is 0 to 2".into()));
    }
    if config.model.is_empty() {
        return Err(Error::InvalidInput("config.model is empty".into()));
    }
    endpoint(&config)?;
    Ok(config)
}

/// `{base_url}/chat/completions`.
pub fn endpoint(config: &Config) -> Result<Url, Error> {
    let base = config.base_url.trim_end_matches('/');
    Ok(Url::parse(&format!("{base}/chat/completions"))?)
}

/// The messages with their contents rendered from `input`.
pub fn render(messages: &[Message], input: &str) -> Result<Vec<Message>, Error> {
    let input: Value = serde_json::from_str(input)
        .map_err(|e| Error::InvalidInput(format!("the input is not JSON: {e}")))?;
    let mut vars = match &input {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    vars.entry("input").or_insert(input.clone());
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let content = env
                .render_str(&m.content, Serde(&vars))
                .map_err(|e| Error::InvalidInput(format!("config.messages[{i}].content: {e}")))?;
            Ok(Message {
                role: m.role.clone(),
                content,
            })
        })
        .collect()
}

/// The request body.
pub fn body(config: &Config, messages: &[Message]) -> Vec<u8> {
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| json!({"role": m.role, "content": m.content}))
        .collect();
    let mut body = json!({"model": config.model, "messages": messages});
    if let Some(t) = config.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(n) = config.max_tokens {
        body["max_tokens"] = json!(n);
    }
    body.to_string().into_bytes()
}

/// The step's output from the endpoint's answer.
pub fn answer(url: &Url, status: u16, body: &[u8]) -> Result<String, Error> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    if !(200..300).contains(&status) {
        let why = parsed
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
        return Err(Error::Failed(format!(
            "{} answered {status}: {why}",
            url.display()
        )));
    }
    let v = parsed.map_err(|e| {
        Error::Failed(format!(
            "{} answered with a body that is not JSON: {e}",
            url.display()
        ))
    })?;
    let choice = &v["choices"][0];
    let content = choice["message"]["content"].as_str().ok_or_else(|| {
        Error::Failed(format!(
            "{} answered without choices[0].message.content",
            url.display()
        ))
    })?;
    Ok(json!({
        "content": content,
        "usage": v.get("usage").cloned().unwrap_or(Value::Null),
        "model": v.get("model").cloned().unwrap_or(Value::Null),
        "finish_reason": choice.get("finish_reason").cloned().unwrap_or(Value::Null),
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        parse_config(
            r#"{"base_url": "http://127.0.0.1:9/v1/", "model": "m",
                "messages": [{"role": "user", "content": "Hi {{ name }}, {{ input.n }}"}],
                "temperature": 0.5, "max_tokens": 7}"#,
        )
        .unwrap()
    }

    #[test]
    fn config_renders_into_an_openai_request() {
        let c = config();
        assert_eq!(c.api_key_secret, "llm_api_key");
        assert_eq!(
            endpoint(&c).unwrap().display(),
            "http://127.0.0.1:9/v1/chat/completions"
        );
        let messages = render(&c.messages, r#"{"name": "Ada", "n": 3}"#).unwrap();
        assert_eq!(messages[0].content, "Hi Ada, 3");
        let body: Value = serde_json::from_slice(&body(&c, &messages)).unwrap();
        assert_eq!(
            body,
            json!({"model": "m", "messages": [{"role": "user", "content": "Hi Ada, 3"}],
                   "temperature": 0.5, "max_tokens": 7})
        );
        assert!(matches!(
            render(&c.messages, "{}"),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn bad_configs_say_why() {
        for (bad, why) in [
            (
                r#"{"base_url": "x", "model": "m", "messages": [{"role": "user", "content": ""}]}"#,
                "URL",
            ),
            (
                r#"{"base_url": "http://h", "model": "m", "messages": []}"#,
                "empty",
            ),
            (
                r#"{"base_url": "http://h", "model": "m", "messages": [{"role": "robot", "content": ""}]}"#,
                "role",
            ),
            (
                r#"{"base_url": "http://h", "model": "m", "messages": [{"role": "user", "content": ""}], "temperature": 3}"#,
                "temperature",
            ),
            (
                r#"{"base_url": "http://h", "model": "m", "messages": [{"role": "user", "content": ""}], "tmperature": 1}"#,
                "unknown field",
            ),
        ] {
            match parse_config(bad) {
                Err(Error::InvalidInput(m)) => assert!(m.contains(why), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn answers_and_api_errors_are_read() {
        let url = Url::parse("http://h/v1/chat/completions").unwrap();
        let ok = br#"{"model": "m-1", "choices": [{"message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}], "usage": {"total_tokens": 9}}"#;
        let out: Value = serde_json::from_str(&answer(&url, 200, ok).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"content": "Hello", "usage": {"total_tokens": 9}, "model": "m-1", "finish_reason": "stop"})
        );
        let err = br#"{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}"#;
        match answer(&url, 401, err) {
            Err(Error::Failed(m)) => {
                assert!(m.contains("401") && m.contains("Incorrect API key"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(answer(&url, 200, b"{}"), Err(Error::Failed(_))));
    }
}
