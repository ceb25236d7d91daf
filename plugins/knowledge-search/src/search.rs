//! The knowledge-search step's request parsing and output, apart from the
//! host call itself.
//!
//! Input (JSON): a string, the query; or an object with `query` (string;
//! `text` is accepted in its place, so the template step's `{"text": ...}`
//! can feed this step), and optionally `top_k` (integer, 1 to 100) and `filter`
//! (object of string, number or boolean values; `null` removes a filter
//! set by config). Other keys of the input object are ignored.
//!
//! Config (JSON object; other keys are refused): `top_k` (integer, 1 to 100,
//! default [`DEFAULT_TOP_K`]), `filter` (object, as above), `collection`
//! (string, the same as `filter.collection`). The input's `top_k` and
//! `filter` entries override config's.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// Hits asked for when neither input nor config says.
pub const DEFAULT_TOP_K: u32 = 5;

/// The keys `config` may have.
pub const CONFIG_KEYS: [&str; 3] = ["top_k", "filter", "collection"];

/// Why the step refused the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    InvalidInput(String),
}

/// A search to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The query, trimmed.
    pub query: String,
    pub top_k: u32,
    /// Filter pairs, sorted by key.
    pub filter: Vec<(String, String)>,
}

/// One search result, as the host returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub source: String,
    pub text: String,
    pub score: f32,
    pub metadata: Vec<(String, String)>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidInput(message.into())
}

/// Reads the step's input and config into a request.
pub fn parse(input: &str, config: &str) -> Result<Request, Error> {
    let config: Value = if config.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(config)
            .map_err(|e| invalid(format!("config is not valid JSON: {e}")))?
    };
    let Value::Object(config) = config else {
        return Err(invalid("config must be a JSON object"));
    };
    if let Some(key) = config.keys().find(|k| !CONFIG_KEYS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown config key {key:?} (expected one of: {})",
            CONFIG_KEYS.join(", ")
        )));
    }

    let mut top_k = DEFAULT_TOP_K;
    let mut filter = BTreeMap::new();
    if let Some(value) = config.get("top_k") {
        top_k = parse_top_k(value, "config.top_k")?;
    }
    if let Some(value) = config.get("filter") {
        merge_filter(&mut filter, value, "config.filter")?;
    }
    match config.get("collection") {
        None => {}
        Some(Value::String(c)) => {
            filter.insert("collection".to_string(), c.clone());
        }
        Some(_) => return Err(invalid("config.collection must be a string")),
    }

    let input: Value = serde_json::from_str(input)
        .map_err(|e| invalid(format!("input is not valid JSON: {e}")))?;
    let query = match &input {
        Value::String(q) => q.clone(),
        Value::Object(fields) => {
            let query = match (fields.get("query"), fields.get("text")) {
                (Some(Value::String(q)), _) => q.clone(),
                (Some(_), _) => return Err(invalid("input.query must be a string")),
                (None, Some(Value::String(t))) => t.clone(),
                (None, Some(_)) => return Err(invalid("input.text must be a string")),
                (None, None) => {
                    return Err(invalid(
                        "input has no \"query\": pass a string, or {\"query\": \"...\"}",
                    ));
                }
            };
            if let Some(value) = fields.get("top_k") {
                top_k = parse_top_k(value, "input.top_k")?;
            }
            if let Some(value) = fields.get("filter") {
                merge_filter(&mut filter, value, "input.filter")?;
            }
            query
        }
        _ => {
            return Err(invalid(
                "input must be a query string or an object with \"query\"",
            ));
        }
    };
    let query = query.trim().to_string();
    if query.is_empty() {
        return Err(invalid("the query is empty"));
    }
    Ok(Request {
        query,
        top_k,
        filter: filter.into_iter().collect(),
    })
}

/// The host answers at most this many hits per search.
pub const MAX_TOP_K: u32 = 100;

fn parse_top_k(value: &Value, what: &str) -> Result<u32, Error> {
    value
        .as_u64()
        .filter(|&k| (1..=u64::from(MAX_TOP_K)).contains(&k))
        .and_then(|k| u32::try_from(k).ok())
        .ok_or_else(|| {
            invalid(format!(
                "{what} must be an integer from 1 to {MAX_TOP_K}, not {value}"
            ))
        })
}

fn merge_filter(
    filter: &mut BTreeMap<String, String>,
    value: &Value,
    what: &str,
) -> Result<(), Error> {
    let Value::Object(pairs) = value else {
        return Err(invalid(format!(
            "{what} must be an object of key/value pairs, not {value}"
        )));
    };
    for (key, value) in pairs {
        let value = match value {
            Value::Null => {
                filter.remove(key);
                continue;
            }
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(invalid(format!(
                    "{what}.{key} must be a string, number or boolean, not {value}"
                )));
            }
        };
        filter.insert(key.clone(), value);
    }
    Ok(())
}

#[derive(Serialize)]
struct Output<'a> {
    query: &'a str,
    results: Vec<OutputHit>,
}

#[derive(Serialize)]
struct OutputHit {
    source: String,
    text: String,
    /// Serialized as the shortest decimal that reads back as this f32.
    score: f32,
    metadata: BTreeMap<String, String>,
}

/// The step's output: `{"query", "results": [{"source", "text", "score",
/// "metadata"}]}`, results in the host's order, metadata as an object (a
/// repeated key keeps its last value).
pub fn output(query: &str, hits: Vec<Hit>) -> String {
    let results = hits
        .into_iter()
        .map(|h| OutputHit {
            source: h.source,
            text: h.text,
            score: h.score,
            metadata: h.metadata.into_iter().collect(),
        })
        .collect();
    serde_json::to_string(&Output { query, results })
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialize results: {e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(input: &str, config: &str) -> Request {
        parse(input, config).unwrap()
    }

    fn invalid_msg(input: &str, config: &str) -> String {
        match parse(input, config) {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_string_is_the_query() {
        let r = req(r#""  how do I install?  ""#, "{}");
        assert_eq!(
            r,
            Request {
                query: "how do I install?".into(),
                top_k: 5,
                filter: vec![]
            }
        );
    }

    #[test]
    fn an_object_and_config_defaults() {
        let config = r#"{"top_k": 3, "filter": {"source_prefix": "docs/", "lang": "en"}, "collection": "manuals"}"#;
        let r = req(r#"{"query": "q"}"#, config);
        assert_eq!(r.top_k, 3);
        assert_eq!(
            r.filter,
            pairs(&[
                ("collection", "manuals"),
                ("lang", "en"),
                ("source_prefix", "docs/")
            ])
        );
        let r = req(
            r#"{"query": "q", "top_k": 10, "filter": {"lang": "de", "source_prefix": null, "year": 2024}, "other": 1}"#,
            config,
        );
        assert_eq!(r.top_k, 10);
        assert_eq!(
            r.filter,
            pairs(&[("collection", "manuals"), ("lang", "de"), ("year", "2024")])
        );
    }

    #[test]
    fn text_stands_in_for_query() {
        assert_eq!(
            req(r#"{"text": "from a template"}"#, "").query,
            "from a template"
        );
        assert_eq!(req(r#"{"query": "q", "text": "t"}"#, "").query, "q");
    }

    #[test]
    fn refusals() {
        assert_eq!(invalid_msg(r#""   ""#, "{}"), "the query is empty");
        assert_eq!(invalid_msg(r#"{"query": ""}"#, "{}"), "the query is empty");
        assert!(invalid_msg("{}", "{}").contains("no \"query\""));
        assert!(invalid_msg("42", "{}").contains("query string or an object"));
        assert!(invalid_msg("nope", "{}").starts_with("input is not valid JSON"));
        assert!(invalid_msg(r#"{"query": 1}"#, "{}").contains("input.query must be a string"));
        assert!(
            invalid_msg(r#""q""#, r#"{"top_k": 0}"#)
                .contains("config.top_k must be an integer from 1 to 100")
        );
        assert!(invalid_msg(r#"{"query": "q", "top_k": 2.5}"#, "{}").contains("input.top_k"));
        assert!(invalid_msg(r#"{"query": "q", "top_k": 101}"#, "{}").contains("1 to 100"));
        assert!(
            invalid_msg(r#"{"query": "q", "top_k": 5000000000}"#, "{}").contains("input.top_k")
        );
        assert!(
            invalid_msg(r#""q""#, r#"{"filter": []}"#).contains("config.filter must be an object")
        );
        assert!(
            invalid_msg(r#"{"query": "q", "filter": {"a": [1]}}"#, "{}").contains("input.filter.a")
        );
        assert!(invalid_msg(r#""q""#, r#"{"collection": 1}"#).contains("config.collection"));
        assert!(invalid_msg(r#""q""#, r#"{"topk": 1}"#).contains("unknown config key \"topk\""));
        assert!(invalid_msg(r#""q""#, "[]").contains("config must be a JSON object"));
    }

    #[test]
    fn output_shape() {
        let out = output(
            "q",
            vec![Hit {
                source: "docs/a.md".into(),
                text: "Install it.".into(),
                score: 0.8123,
                metadata: pairs(&[("heading", "Install"), ("level", "1"), ("heading", "Setup")]),
            }],
        );
        assert_eq!(
            out,
            r#"{"query":"q","results":[{"source":"docs/a.md","text":"Install it.","score":0.8123,"metadata":{"heading":"Setup","level":"1"}}]}"#
        );
        assert_eq!(output("q", vec![]), r#"{"query":"q","results":[]}"#);
    }
}
