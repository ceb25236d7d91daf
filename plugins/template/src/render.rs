//! Renders a minijinja template against the step's input.
//!
//! Config (a JSON object; other keys are refused, to catch typos):
//!
//! * `template` (string, required): the template source.
//! * `output` (`"text"`, the default, or `"json"`): return `{"text": ...}`,
//!   or parse the rendered text as JSON and return that.
//! * `strict` (bool, default `true`): printing or iterating an undefined
//!   variable is an error (testing it in `{% if %}` or with `is defined` is
//!   not). With `false`, undefined variables, and attributes of undefined
//!   variables, render as nothing.
//!
//! The input's keys are the template's variables when it is a JSON object;
//! `input` is always the whole input (unless the object has its own
//! `input` key), so arrays, strings and numbers can be rendered too.

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

/// Why the step refused or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    InvalidInput(String),
}

/// What `config.output` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// A parsed step configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub template: String,
    pub output: Output,
    pub strict: bool,
}

/// The keys `config` may have.
pub const CONFIG_KEYS: [&str; 3] = ["template", "output", "strict"];

/// Name of the template in error messages: `(in template:LINE)`.
pub const TEMPLATE_NAME: &str = "template";

pub fn parse_config(config: &str) -> Result<Config, Error> {
    let invalid = |m: String| Error::InvalidInput(m);
    let config: Value = if config.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(config)
            .map_err(|e| invalid(format!("config is not valid JSON: {e}")))?
    };
    let Value::Object(config) = config else {
        return Err(invalid("config must be a JSON object".into()));
    };
    if let Some(key) = config.keys().find(|k| !CONFIG_KEYS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown config key {key:?} (expected one of: {})",
            CONFIG_KEYS.join(", ")
        )));
    }
    let template = match config.get("template") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(invalid("config.template must be a string".into())),
        None => {
            return Err(invalid(
                "config.template is required: the template to render, e.g. {\"template\": \"Hello {{ name }}!\"}"
                    .into(),
            ));
        }
    };
    let output = match config.get("output") {
        None => Output::Text,
        Some(Value::String(s)) if s == "text" => Output::Text,
        Some(Value::String(s)) if s == "json" => Output::Json,
        Some(other) => {
            return Err(invalid(format!(
                "config.output must be \"text\" or \"json\", not {other}"
            )));
        }
    };
    let strict = match config.get("strict") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid(format!(
                "config.strict must be true or false, not {other}"
            )));
        }
    };
    Ok(Config {
        template,
        output,
        strict,
    })
}

/// The template's variables for `input`.
pub fn context(input: Value) -> Map<String, Value> {
    match input {
        Value::Object(mut map) => {
            if !map.contains_key("input") {
                let whole = Value::Object(map.clone());
                map.insert("input".to_string(), whole);
            }
            map
        }
        other => {
            let mut map = Map::new();
            map.insert("input".to_string(), other);
            map
        }
    }
}

/// Renders `config.template` with `input` (JSON text); returns the step's
/// output as JSON text.
pub fn run(input: &str, config: &Config) -> Result<String, Error> {
    let input: Value = serde_json::from_str(input)
        .map_err(|e| Error::InvalidInput(format!("input is not valid JSON: {e}")))?;
    let rendered = render(&config.template, context(input), config.strict)?;
    match config.output {
        Output::Text => Ok(serde_json::json!({ "text": rendered }).to_string()),
        Output::Json => {
            let value: Value = serde_json::from_str(&rendered).map_err(|e| {
                Error::InvalidInput(format!(
                    "config.output is \"json\" but the rendered template is not valid JSON: {e}"
                ))
            })?;
            Ok(value.to_string())
        }
    }
}

/// Renders `template` with the variables in `context`.
pub fn render(template: &str, context: Map<String, Value>, strict: bool) -> Result<String, Error> {
    let mut env = Environment::new();
    // Keeps the failing expression's source range for error messages.
    env.set_debug(true);
    env.set_undefined_behavior(if strict {
        UndefinedBehavior::SemiStrict
    } else {
        UndefinedBehavior::Chainable
    });
    let error = |e| template_error(e, template);
    env.add_template(TEMPLATE_NAME, template).map_err(error)?;
    let compiled = env.get_template(TEMPLATE_NAME).map_err(error)?;
    compiled
        .render(Serde(Value::Object(context)))
        .map_err(error)
}

/// minijinja's message (`KIND: DETAIL (in template:LINE)`), the failing
/// expression when known (`, at `name``), and the error's causes.
fn template_error(e: minijinja::Error, source: &str) -> Error {
    let mut message = format!("template error: {e}");
    if let Some(snippet) = e.range().and_then(|r| source.get(r)) {
        let snippet = snippet.trim();
        if !snippet.is_empty() && snippet.len() <= 200 {
            message.push_str(&format!(", at `{snippet}`"));
        }
    }
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    Error::InvalidInput(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> Config {
        parse_config(json).unwrap()
    }

    fn invalid(r: Result<impl std::fmt::Debug, Error>) -> String {
        match r {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    #[test]
    fn renders_text() {
        let out = run(
            r#"{"name": "Ada"}"#,
            &cfg(r#"{"template": "Hello {{ name }}!"}"#),
        );
        assert_eq!(out.unwrap(), r#"{"text":"Hello Ada!"}"#);
    }

    #[test]
    fn loops_filters_and_the_whole_input() {
        let c = cfg(
            r#"{"template": "{% for r in results %}{{ loop.index }}. {{ r.source|upper }}\n{% endfor %}{{ input.results|length }}"}"#,
        );
        let out = run(r#"{"results": [{"source": "a"}, {"source": "b"}]}"#, &c).unwrap();
        assert_eq!(out, r#"{"text":"1. A\n2. B\n2"}"#);
        let out = run(
            r#"[1, 2, 3]"#,
            &cfg(r#"{"template": "{{ input|join(',') }}"}"#),
        );
        assert_eq!(out.unwrap(), r#"{"text":"1,2,3"}"#);
        let out = run(r#""plain""#, &cfg(r#"{"template": "{{ input }}"}"#));
        assert_eq!(out.unwrap(), r#"{"text":"plain"}"#);
    }

    #[test]
    fn an_input_key_named_input_wins() {
        let out = run(
            r#"{"input": "mine"}"#,
            &cfg(r#"{"template": "{{ input }}"}"#),
        );
        assert_eq!(out.unwrap(), r#"{"text":"mine"}"#);
    }

    #[test]
    fn json_output() {
        let c = cfg(
            r#"{"template": "{\"greeting\": {{ (\"hi \" ~ name)|tojson }}, \"n\": {{ n + 1 }}}", "output": "json"}"#,
        );
        let out = run(r#"{"name": "<Bo>", "n": 1}"#, &c).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v, serde_json::json!({"greeting": "hi <Bo>", "n": 2}));
        let bad = cfg(r#"{"template": "not json", "output": "json"}"#);
        assert!(invalid(run("{}", &bad)).contains("not valid JSON"));
    }

    #[test]
    fn no_html_escaping() {
        let out = run(r#"{"x": "<a&b>"}"#, &cfg(r#"{"template": "{{ x }}"}"#));
        assert_eq!(out.unwrap(), r#"{"text":"<a&b>"}"#);
    }

    #[test]
    fn strict_by_default() {
        let m = invalid(run(
            "{}",
            &cfg(r#"{"template": "line one\nHello {{ name }}!"}"#),
        ));
        assert!(
            m.starts_with("template error: undefined value: `name` is undefined"),
            "{m}"
        );
        assert!(m.contains("(in template:2)"), "{m}");
        // Testing an undefined variable is fine even when strict.
        let out = run(
            "{}",
            &cfg(r#"{"template": "{% if name %}x{% else %}none{% endif %}"}"#),
        );
        assert_eq!(out.unwrap(), r#"{"text":"none"}"#);
    }

    #[test]
    fn lenient_when_asked() {
        let out = run(
            "{}",
            &cfg(r#"{"template": "Hello {{ name }}{{ user.name }}!", "strict": false}"#),
        );
        assert_eq!(out.unwrap(), r#"{"text":"Hello !"}"#);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let m = invalid(run("{}", &cfg(r#"{"template": "ok\n{% if %}"}"#)));
        assert_eq!(
            m,
            "template error: syntax error: unexpected end of block (in template:2), at `%}`"
        );
    }

    #[test]
    fn config_errors() {
        assert!(invalid(parse_config("{}")).contains("config.template is required"));
        assert!(invalid(parse_config("")).contains("config.template is required"));
        assert!(invalid(parse_config(r#"{"template": 1}"#)).contains("must be a string"));
        assert!(
            invalid(parse_config(r#"{"template": "", "output": "xml"}"#)).contains("config.output")
        );
        assert!(
            invalid(parse_config(r#"{"template": "", "strict": "no"}"#)).contains("config.strict")
        );
        assert!(
            invalid(parse_config(r#"{"templte": "x"}"#)).contains("unknown config key \"templte\"")
        );
        assert!(invalid(parse_config("[1]")).contains("must be a JSON object"));
        assert!(invalid(parse_config("{")).contains("config is not valid JSON"));
    }

    #[test]
    fn bad_input() {
        assert!(
            invalid(run("{nope", &cfg(r#"{"template": "x"}"#)))
                .starts_with("input is not valid JSON")
        );
    }
}
