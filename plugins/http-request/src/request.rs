//! The `http-request` step's config, URL handling and output, apart from
//! the WASI bindings so they are unit-tested natively.
//!
//! Config (every key but `url` optional):
//!
//! ```json
//! {
//!   "method": "POST",
//!   "url": "https://api.example.com/v1/items",
//!   "query": {"page": "2"},
//!   "headers": {"Authorization": "Bearer ..."},
//!   "body": {"name": "x"},
//!   "timeout_ms": 10000,
//!   "expect": "json",
//!   "fail_on_status": true,
//!   "follow_redirects": 5
//! }
//! ```
//!
//! - `method`: GET (the default), HEAD, POST, PUT, PATCH, DELETE, OPTIONS.
//! - `body`: a JSON value is sent as JSON (with `Content-Type:
//!   application/json` unless a header sets one); a string is sent as is.
//!   Without `body`, the step's input is sent when the method is POST, PUT
//!   or PATCH and `send_input` is true.
//! - `expect`: `json` parses the response body (a body that is not JSON
//!   fails the step), `text` returns it as a string; the default is JSON
//!   when the response says `application/json` (or `+json`), text
//!   otherwise.
//! - `fail_on_status`: a status outside 200–299 fails the step (true by
//!   default); false returns it as output.
//! - `follow_redirects`: how many 301, 302, 303, 307 and 308 answers to
//!   follow (default 5; 0 returns the redirect). Each hop is a new request
//!   that the host checks against the manifest's allowed hosts.
//!
//! Output: `{"status": 200, "headers": {"content-type": "..."}, "body": ...}`.
//!
//! Secrets: `${secret:NAME}` in `url`, a header's value or a string of
//! `body` is replaced by the secret `NAME`, read through `wasi:config` (the
//! plugin's manifest lists it in `grants.secrets`). A secret's value never
//! appears in the step's output, errors or logs: wherever it would (an
//! API that echoes a header), it is written back as `${secret:NAME}`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
pub use wasi_outbound::{Error, Url};

/// Most redirects one step follows.
pub const MAX_REDIRECTS: u32 = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "get")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub query: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
    #[serde(default)]
    pub send_input: bool,
    pub timeout_ms: Option<u64>,
    pub expect: Option<Expect>,
    #[serde(default = "yes")]
    pub fail_on_status: bool,
    #[serde(default = "five")]
    pub follow_redirects: u32,
}

fn get() -> String {
    "GET".into()
}
fn yes() -> bool {
    true
}
fn five() -> u32 {
    5
}

/// A query parameter's value: strings, numbers and booleans as written.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Number(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Json,
    Text,
}

pub fn parse_config(config: &str) -> Result<Config, Error> {
    let config: Config =
        serde_json::from_str(config).map_err(|e| Error::InvalidInput(format!("config: {e}")))?;
    let method = config.method.to_ascii_uppercase();
    if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str()) {
        return Err(Error::InvalidInput(format!(
            "config.method {:?} is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
            config.method
        )));
    }
    if config.follow_redirects > MAX_REDIRECTS {
        return Err(Error::InvalidInput(format!(
            "config.follow_redirects is at most {MAX_REDIRECTS}"
        )));
    }
    if config.timeout_ms == Some(0) {
        return Err(Error::InvalidInput(
            "config.timeout_ms must be positive".into(),
        ));
    }
    Url::parse(&config.url)?;
    Ok(Config { method, ..config })
}

/// A request body and the content type it implies, if any.
pub type Body = (Vec<u8>, Option<&'static str>);

/// The request body, if there is one.
pub fn body_of(config: &Config, input: &str) -> Result<Option<Body>, Error> {
    match &config.body {
        Some(Value::String(text)) => Ok(Some((
            text.clone().into_bytes(),
            Some("text/plain; charset=utf-8"),
        ))),
        Some(value) => Ok(Some((
            serde_json::to_vec(value).map_err(|e| Error::InvalidInput(e.to_string()))?,
            Some("application/json"),
        ))),
        None if config.send_input && ["POST", "PUT", "PATCH"].contains(&config.method.as_str()) => {
            Ok(Some((input.as_bytes().to_vec(), Some("application/json"))))
        }
        None => Ok(None),
    }
}

/// Whether `status` is a redirect this step follows, and the method the
/// next hop uses (303, and 301/302 after a POST, become GET).
pub fn redirect_method(status: u16, method: &str) -> Option<String> {
    match status {
        307 | 308 => Some(method.to_owned()),
        303 => Some("GET".into()),
        301 | 302 if method == "POST" => Some("GET".into()),
        301 | 302 => Some(method.to_owned()),
        _ => None,
    }
}

/// The step's output for a response.
pub fn output(
    config: &Config,
    url: &Url,
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
) -> Result<String, Error> {
    let mut map = Map::new();
    let mut content_type = String::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(&value).into_owned();
        if name == "content-type" {
            content_type = value.to_ascii_lowercase();
        }
        // Repeated headers join with ", " as HTTP allows.
        match map.get_mut(&name) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&value);
            }
            _ => {
                map.insert(name, Value::String(value));
            }
        }
    }
    let json_type = content_type.starts_with("application/json")
        || content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().ends_with("+json"));
    let expect = config.expect.unwrap_or(if json_type {
        Expect::Json
    } else {
        Expect::Text
    });
    let body = if body.is_empty() && expect == Expect::Json {
        Value::Null
    } else {
        match expect {
            Expect::Json => serde_json::from_slice(&body).map_err(|e| {
                Error::Failed(format!(
                    "{} answered {status} with a body that is not JSON ({e}); set config.expect to \"text\" to take it as text",
                    url.display()
                ))
            })?,
            Expect::Text => Value::String(String::from_utf8_lossy(&body).into_owned()),
        }
    };
    if config.fail_on_status && !(200..300).contains(&status) {
        let snippet: String = match &body {
            Value::String(s) => s.chars().take(200).collect(),
            other => other.to_string().chars().take(200).collect(),
        };
        return Err(Error::Failed(format!(
            "{} {} answered {status}: {snippet} (set config.fail_on_status to false to take it as output)",
            config.method,
            url.display()
        )));
    }
    let out = serde_json::json!({ "status": status, "headers": map, "body": body });
    Ok(out.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_checked() {
        let c = parse_config(r#"{"url": "https://api.example.com/v1?x=1"}"#).unwrap();
        assert_eq!(c.method, "GET");
        assert!(c.fail_on_status);
        assert_eq!(c.follow_redirects, 5);
        for (bad, why) in [
            (r#"{"url": "ftp://x"}"#, "scheme"),
            (r#"{"url": "/relative"}"#, "absolute"),
            (r#"{"url": "https://u:p@x.com/"}"#, "no user"),
            (r#"{"url": "https://x.com", "method": "BREW"}"#, "method"),
            (
                r#"{"url": "https://x.com", "follow_redirects": 100}"#,
                "at most",
            ),
            (r#"{"url": "https://x.com", "nope": 1}"#, "unknown field"),
        ] {
            match parse_config(bad) {
                Err(Error::InvalidInput(m)) => assert!(m.contains(why), "{bad}: {m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn output_parses_json_and_fails_on_status() {
        let c = parse_config(r#"{"url": "http://h/"}"#).unwrap();
        let url = Url::parse("http://h/").unwrap();
        let ct = |t: &str| vec![("Content-Type".to_string(), t.as_bytes().to_vec())];
        let out = output(
            &c,
            &url,
            200,
            ct("application/json"),
            br#"{"ok":true}"#.to_vec(),
        )
        .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["status"], 200);
        assert_eq!(v["body"]["ok"], true);
        assert_eq!(v["headers"]["content-type"], "application/json");
        let out = output(&c, &url, 200, ct("text/plain"), b"hi".to_vec()).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["body"], "hi");
        match output(&c, &url, 404, ct("text/plain"), b"nope".to_vec()) {
            Err(Error::Failed(m)) => assert!(m.contains("404") && m.contains("nope"), "{m}"),
            other => panic!("{other:?}"),
        }
        let lenient = parse_config(r#"{"url": "http://h/", "fail_on_status": false}"#).unwrap();
        assert!(output(&lenient, &url, 500, vec![], vec![]).is_ok());
        assert!(matches!(
            output(&c, &url, 200, ct("application/json"), b"not json".to_vec()),
            Err(Error::Failed(_))
        ));
    }

    #[test]
    fn redirects_change_method_as_browsers_do() {
        assert_eq!(redirect_method(303, "POST").as_deref(), Some("GET"));
        assert_eq!(redirect_method(302, "POST").as_deref(), Some("GET"));
        assert_eq!(redirect_method(307, "POST").as_deref(), Some("POST"));
        assert_eq!(redirect_method(301, "GET").as_deref(), Some("GET"));
        assert_eq!(redirect_method(304, "GET"), None);
    }
}
