//! The json-transform step: config parsing and applying it to the input.
//!
//! Config (a JSON object; other keys are refused, to catch typos):
//!
//! * `fields` (object): the output's fields. A string value is an
//!   expression ([`crate::expr`]); an object value is a nested object of
//!   fields; any other value (number, boolean, null, array) is a literal.
//! * `keep` (bool, default `false`): start from the current value (an
//!   object) and set or override `fields` in it, instead of building only
//!   `fields`.
//! * `drop` (array of strings, needs `keep`): top-level keys to remove
//!   from the kept object before `fields` are set; with `keep` this renames:
//!   `{"keep": true, "fields": {"new": "$.old"}, "drop": ["old"]}`.
//! * `select` (expression, usually a path): narrows the input to a
//!   sub-value first; `$` is then that value.
//! * `each` (expression evaluating to an array, after `select`): apply
//!   `fields` to every element (`$` is the element) and output an array.
//!
//! `$$` is always the whole input. Without `fields`, `keep` and `drop`,
//! the output is the selected value itself (or the `each` array). At least
//! one of `fields`, `select` and `each` is required.

use serde_json::{Map, Value};

use crate::expr::{self, Expr, Scope, type_name};

/// Why the step refused the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    InvalidInput(String),
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidInput(message.into())
}

/// The keys `config` may have.
pub const CONFIG_KEYS: [&str; 5] = ["fields", "keep", "drop", "select", "each"];

/// An expression with its source and where it came from in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// `fields.total`, `select`, ...
    pub name: String,
    pub source: String,
    pub expr: Expr,
}

impl Compiled {
    fn new(name: String, source: &str) -> Result<Compiled, Error> {
        match expr::parse(source) {
            Ok(expr) => Ok(Compiled {
                name,
                source: source.to_string(),
                expr,
            }),
            Err(e) => Err(invalid(format!(
                "{name}: parse error at column {} of `{source}`: {}",
                e.column, e.message
            ))),
        }
    }

    fn eval(&self, scope: Scope<'_>, element: Option<usize>) -> Result<Value, Error> {
        self.expr.eval(scope).map_err(|e| {
            let at = element.map_or(String::new(), |i| format!(" (element {i} of each)"));
            invalid(format!(
                "{}{at}: {} (at column {} of `{}`)",
                self.name, e.message, e.column, self.source
            ))
        })
    }
}

/// One output field's definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Expr(Compiled),
    Object(Vec<(String, Field)>),
    Literal(Value),
}

/// A parsed step configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub fields: Option<Vec<(String, Field)>>,
    pub keep: bool,
    pub drop: Vec<String>,
    pub select: Option<Compiled>,
    pub each: Option<Compiled>,
}

pub fn parse_config(config: &str) -> Result<Config, Error> {
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
    let expression = |key: &str| -> Result<Option<Compiled>, Error> {
        match config.get(key) {
            None => Ok(None),
            Some(Value::String(source)) => Compiled::new(key.to_string(), source).map(Some),
            Some(other) => Err(invalid(format!(
                "config.{key} must be an expression string such as \"$.items\", not {other}"
            ))),
        }
    };
    let select = expression("select")?;
    let each = expression("each")?;
    let fields = match config.get("fields") {
        None => None,
        Some(Value::Object(map)) => Some(parse_fields(map, "fields")?),
        Some(other) => {
            return Err(invalid(format!(
                "config.fields must be an object of field name to expression, not {other}"
            )));
        }
    };
    let keep = match config.get("keep") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid(format!(
                "config.keep must be true or false, not {other}"
            )));
        }
    };
    let drop = match config.get("drop") {
        None => Vec::new(),
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| match k {
                Value::String(s) => Ok(s.clone()),
                other => Err(invalid(format!(
                    "config.drop must list field names (strings), not {other}"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(invalid(format!(
                "config.drop must be an array of field names, not {other}"
            )));
        }
    };
    if !drop.is_empty() && !keep {
        return Err(invalid(
            "config.drop removes keys from the kept input: it needs \"keep\": true",
        ));
    }
    if fields.is_none() && select.is_none() && each.is_none() {
        return Err(invalid(
            "config needs \"fields\" (and/or \"select\", \"each\"), e.g. \
             {\"fields\": {\"total\": \"sum($.items[*].price)\"}}",
        ));
    }
    Ok(Config {
        fields,
        keep,
        drop,
        select,
        each,
    })
}

fn parse_fields(map: &Map<String, Value>, path: &str) -> Result<Vec<(String, Field)>, Error> {
    map.iter()
        .map(|(key, value)| {
            let name = format!("{path}.{key}");
            let field = match value {
                Value::String(source) => Field::Expr(Compiled::new(name, source)?),
                Value::Object(inner) => Field::Object(parse_fields(inner, &name)?),
                literal => Field::Literal(literal.clone()),
            };
            Ok((key.clone(), field))
        })
        .collect()
}

/// Applies `config` to `input` (JSON text); returns the output as JSON text.
pub fn run(input: &str, config: &Config) -> Result<String, Error> {
    let input: Value = serde_json::from_str(input)
        .map_err(|e| invalid(format!("input is not valid JSON: {e}")))?;
    Ok(apply(&input, config)?.to_string())
}

/// Applies `config` to `input`.
pub fn apply(input: &Value, config: &Config) -> Result<Value, Error> {
    let root = input;
    let selected = match &config.select {
        Some(select) => select.eval(
            Scope {
                current: root,
                root,
            },
            None,
        )?,
        None => root.clone(),
    };
    let Some(each) = &config.each else {
        return build(&selected, root, config, None);
    };
    let list = each.eval(
        Scope {
            current: &selected,
            root,
        },
        None,
    )?;
    let list = match list {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => {
            return Err(invalid(format!(
                "each: `{}` is {} {}, not an array",
                each.source,
                article(&other),
                type_name(&other)
            )));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, item)| build(item, root, config, Some(i)))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn article(value: &Value) -> &'static str {
    match value {
        Value::Array(_) | Value::Object(_) => "an",
        _ => "a",
    }
}

/// The output for one current value.
fn build(
    current: &Value,
    root: &Value,
    config: &Config,
    element: Option<usize>,
) -> Result<Value, Error> {
    if config.fields.is_none() && !config.keep {
        return Ok(current.clone());
    }
    let mut out = if config.keep {
        match current {
            Value::Object(map) => map.clone(),
            other => {
                let at = element.map_or(String::new(), |i| format!(" (element {i} of each)"));
                return Err(invalid(format!(
                    "keep{at}: the value to keep is {} {}, not an object",
                    article(other),
                    type_name(other)
                )));
            }
        }
    } else {
        Map::new()
    };
    for key in &config.drop {
        out.remove(key);
    }
    if let Some(fields) = &config.fields {
        let scope = Scope { current, root };
        for (name, field) in fields {
            out.insert(name.clone(), eval_field(field, scope, element)?);
        }
    }
    Ok(Value::Object(out))
}

fn eval_field(field: &Field, scope: Scope<'_>, element: Option<usize>) -> Result<Value, Error> {
    match field {
        Field::Expr(compiled) => compiled.eval(scope, element),
        Field::Literal(value) => Ok(value.clone()),
        Field::Object(fields) => {
            let mut out = Map::new();
            for (name, field) in fields {
                out.insert(name.clone(), eval_field(field, scope, element)?);
            }
            Ok(Value::Object(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(config: Value) -> Config {
        parse_config(&config.to_string()).unwrap_or_else(|e| panic!("{config}: {e:?}"))
    }

    fn out(input: Value, config: Value) -> Value {
        apply(&input, &cfg(config)).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn invalid_msg(r: Result<impl std::fmt::Debug, Error>) -> String {
        match r {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    fn config_error(config: &str) -> String {
        invalid_msg(parse_config(config))
    }

    fn order() -> Value {
        json!({
            "order_id": 1042,
            "customer": {"first": "Ada", "last": "Lovelace"},
            "items": [
                {"sku": "pen", "price": 1.5, "qty": 4},
                {"sku": "ink", "price": 12, "qty": 1, "discount": 2},
            ],
        })
    }

    #[test]
    fn builds_only_the_listed_fields() {
        let o = out(
            order(),
            json!({"fields": {
                "id": "$.order_id",
                "name": "$.customer.first + ' ' + $.customer.last",
                "total": "sum(map($.items, $.price * $.qty - default($.discount, 0)))",
                "count": "len($.items)",
                "currency": "default($.currency, 'EUR')",
                "source": "'shop'",
                "version": 2,
                "flags": [1, "a"],
                "customer": {"first": "$.customer.first", "initial": "split($.customer.last, '')[0]"},
            }}),
        );
        assert_eq!(
            o,
            json!({
                "id": 1042,
                "name": "Ada Lovelace",
                "total": 16,
                "count": 2,
                "currency": "EUR",
                "source": "shop",
                "version": 2,
                "flags": [1, "a"],
                "customer": {"first": "Ada", "initial": "L"},
            })
        );
    }

    #[test]
    fn a_plain_word_is_an_error_not_a_string() {
        // Field values are expressions: a bare word is refused, with a hint.
        assert!(config_error(r#"{"fields": {"source": "shop"}}"#).contains("unknown name `shop`"));
    }

    #[test]
    fn keep_sets_and_drop_renames() {
        let o = out(
            order(),
            json!({"keep": true, "drop": ["order_id", "absent"], "fields": {"id": "$.order_id", "items": "len($.items)"}}),
        );
        assert_eq!(
            o,
            json!({"id": 1042, "customer": {"first": "Ada", "last": "Lovelace"}, "items": 2})
        );
        // keep alone copies.
        assert_eq!(
            out(json!({"a": 1}), json!({"keep": true, "select": "$"})),
            json!({"a": 1})
        );
    }

    #[test]
    fn select_and_each() {
        assert_eq!(
            out(order(), json!({"select": "$.customer.first"})),
            json!("Ada")
        );
        assert_eq!(
            out(
                order(),
                json!({"select": "$.customer", "fields": {"full": "$.first + ' ' + $.last", "id": "$$.order_id"}})
            ),
            json!({"full": "Ada Lovelace", "id": 1042})
        );
        assert_eq!(
            out(
                order(),
                json!({"each": "$.items", "fields": {"sku": "upper($.sku)", "line": "$.price * $.qty", "order": "$$.order_id"}})
            ),
            json!([
                {"sku": "PEN", "line": 6, "order": 1042},
                {"sku": "INK", "line": 12, "order": 1042},
            ])
        );
        // select, then each relative to it; keep per element.
        assert_eq!(
            out(
                json!({"data": {"rows": [{"a": 1}, {"a": 2, "b": 0}]}}),
                json!({"select": "$.data", "each": "$.rows", "keep": true, "fields": {"b": "default($.b, -1)"}})
            ),
            json!([{"a": 1, "b": -1}, {"a": 2, "b": 0}])
        );
        // each alone is the array; a missing array is empty.
        assert_eq!(
            out(order(), json!({"each": "$.items[*].sku"})),
            json!(["pen", "ink"])
        );
        assert_eq!(
            out(order(), json!({"each": "$.nope", "fields": {"x": "1"}})),
            json!([])
        );
        // A non-object input works when fields are built fresh.
        assert_eq!(
            out(json!([3, 4]), json!({"fields": {"n": "sum($)"}})),
            json!({"n": 7})
        );
        assert_eq!(
            out(json!(null), json!({"fields": {"n": "$.x"}})),
            json!({"n": null})
        );
    }

    #[test]
    fn run_takes_and_gives_json_text() {
        let c = cfg(json!({"fields": {"n": "len($)"}}));
        assert_eq!(run("[1,2,3]", &c).unwrap(), r#"{"n":3}"#);
        assert!(invalid_msg(run("nope", &c)).starts_with("input is not valid JSON"));
        // Empty config text is `{}`, which lacks fields.
        assert!(config_error("").contains("config needs \"fields\""));
    }

    #[test]
    fn config_errors() {
        let cases = [
            ("[]", "config must be a JSON object"),
            ("{", "config is not valid JSON"),
            ("{}", "config needs \"fields\""),
            (
                r#"{"field": {}}"#,
                "unknown config key \"field\" (expected one of: fields, keep, drop, select, each)",
            ),
            (r#"{"fields": []}"#, "config.fields must be an object"),
            (
                r#"{"fields": {}, "keep": "yes"}"#,
                "config.keep must be true or false",
            ),
            (
                r#"{"fields": {}, "drop": ["a"]}"#,
                "it needs \"keep\": true",
            ),
            (
                r#"{"fields": {}, "keep": true, "drop": [1]}"#,
                "config.drop must list field names",
            ),
            (
                r#"{"fields": {}, "keep": true, "drop": "a"}"#,
                "config.drop must be an array",
            ),
            (
                r#"{"select": 1}"#,
                "config.select must be an expression string",
            ),
            (
                r#"{"each": null}"#,
                "config.each must be an expression string",
            ),
            (
                r#"{"fields": {"total": "sum($.items[*].price"}}"#,
                "fields.total: parse error at column 21 of `sum($.items[*].price`: expected `,` or `)`, found the end of the expression",
            ),
            (
                r#"{"fields": {"c": {"d": "$.a +"}}}"#,
                "fields.c.d: parse error at column 6 of `$.a +`: expected a value",
            ),
            (r#"{"select": "$..a"}"#, "select: parse error at column 3"),
            (
                r#"{"each": "items"}"#,
                "each: parse error at column 1 of `items`: unknown name `items`",
            ),
        ];
        for (config, message) in cases {
            let got = config_error(config);
            assert!(got.contains(message), "{config}: {got:?} lacks {message:?}");
        }
    }

    #[test]
    fn evaluation_errors_name_the_field_and_expression() {
        let c = cfg(json!({"fields": {"double": "$.name * 2"}}));
        assert_eq!(
            invalid_msg(apply(&json!({"name": "a"}), &c)),
            "fields.double: cannot apply `*` to string and number (at column 8 of `$.name * 2`)"
        );
        let c = cfg(json!({"each": "$.items", "fields": {"line": "$.price * $.qty"}}));
        let msg = invalid_msg(apply(
            &json!({"items": [{"price": 1, "qty": 2}, {"price": "1", "qty": 2}]}),
            &c,
        ));
        assert_eq!(
            msg,
            "fields.line (element 1 of each): cannot apply `*` to string and number (at column 9 of `$.price * $.qty`)"
        );
        let c = cfg(json!({"each": "$.items"}));
        assert_eq!(
            invalid_msg(apply(&json!({"items": {"a": 1}}), &c)),
            "each: `$.items` is an object, not an array"
        );
        let c = cfg(json!({"keep": true, "fields": {}}));
        assert_eq!(
            invalid_msg(apply(&json!([1]), &c)),
            "keep: the value to keep is an array, not an object"
        );
        let c = cfg(json!({"select": "1 / 0"}));
        assert!(invalid_msg(apply(&json!({}), &c)).starts_with("select: division by zero"));
    }
}
