//! Expressions in workflow steps: a JSON value in which a string that
//! begins with `$.` is a JSONPath query (RFC 9535, `serde_json_path`) and
//! a string that begins with `$$` is a literal string beginning with `$`.
//!
//! Queries are evaluated against the run's scope:
//! `{"input": <run input>, "steps": {"<id>": {"output": …}}}`, plus `item`
//! and `index` inside a `for_each`. A *singular* query (only names and
//! indices: `$.steps.fetch.output.items[0]`) yields its value, or `null`
//! when nothing is there; any other query (wildcards, slices, filters,
//! descendants) yields the array of what it matched, in document order.
//!
//! Everything is parsed once, when a definition or a run is checked, so a
//! bad expression is refused with its place before anything runs.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;

/// A parsed query, with its text (for messages) and whether it is singular.
#[derive(Debug, Clone)]
pub struct Query {
    text: String,
    path: JsonPath,
    singular: bool,
}

/// Why an expression cannot be used: the place in the definition and the
/// reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place}: {message}")]
pub struct ExprError {
    pub place: String,
    pub message: String,
}

impl Query {
    /// Parses `text` (which begins with `$.`); `place` names it in errors.
    pub fn parse(text: &str, place: &str) -> Result<Query, ExprError> {
        if !text.starts_with("$.") && !text.starts_with("$[") {
            return Err(ExprError {
                place: place.to_owned(),
                message: format!("{text:?} is not a JSONPath query: it must begin with `$.`"),
            });
        }
        let path = JsonPath::parse(text).map_err(|e| ExprError {
            place: place.to_owned(),
            message: format!(
                "{text:?} is not a valid JSONPath query: {} (at character {})",
                e.message(),
                e.position()
            ),
        })?;
        Ok(Query {
            singular: is_singular(text),
            text: text.to_owned(),
            path,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The query's value in `scope`: see the module docs.
    pub fn eval(&self, scope: &Value) -> Value {
        let nodes = self.path.query(scope);
        if self.singular {
            nodes.first().cloned().unwrap_or(Value::Null)
        } else {
            Value::Array(nodes.all().into_iter().cloned().collect())
        }
    }

    /// [`eval`](Query::eval), its size as JSON taken from `budget` first:
    /// refused, before anything is copied, when it would pass it.
    pub fn eval_within(&self, scope: &Value, budget: &mut u64) -> Result<Value, OverBudget> {
        let nodes = self.path.query(scope);
        if self.singular {
            let node = nodes.first().unwrap_or(&Value::Null);
            take(budget, node)?;
            return Ok(node.clone());
        }
        let nodes = nodes.all();
        // The brackets and commas.
        spend(budget, nodes.len() as u64 + 2)?;
        for node in &nodes {
            take(budget, node)?;
        }
        Ok(Value::Array(nodes.into_iter().cloned().collect()))
    }

    /// The step id this query reads the output of (`$.steps.ID…` or
    /// `$.steps['ID']…`), if it names one; none for a query over `$.steps`
    /// as a whole or steps picked by a wildcard or filter.
    pub fn step_ref(&self) -> Option<&str> {
        let rest = self.text.strip_prefix("$.steps")?;
        let id = if let Some(rest) = rest.strip_prefix('.') {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            &rest[..end]
        } else {
            let rest = rest
                .strip_prefix("['")
                .or_else(|| rest.strip_prefix("[\""))?;
            &rest[..rest.find(['\'', '"'])?]
        };
        (!id.is_empty() && id != "*").then_some(id)
    }
}

/// Whether a query can only ever select one node (RFC 9535's singular
/// queries): only name and index selectors, one per segment, no
/// descendants. Read from the text: outside quotes, any of `*`, `?`, `:`,
/// `,` or `..` makes it not singular.
fn is_singular(text: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut previous = '\0';
    for c in text.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            previous = c;
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '*' | '?' | ':' | ',' => return false,
            '.' if previous == '.' => return false,
            _ => {}
        }
        previous = c;
    }
    true
}

/// An expression's value would have been larger than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget;

/// Takes `bytes` from `budget`, if it holds them.
fn spend(budget: &mut u64, bytes: u64) -> Result<(), OverBudget> {
    *budget = budget.checked_sub(bytes).ok_or(OverBudget)?;
    Ok(())
}

/// Takes `value`'s size as compact JSON from `budget`; measuring stops as
/// soon as it would pass it.
fn take(budget: &mut u64, value: &Value) -> Result<(), OverBudget> {
    struct Counter {
        left: u64,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.left = self
                .left
                .checked_sub(bytes.len() as u64)
                .ok_or_else(|| std::io::Error::other("over budget"))?;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { left: *budget };
    serde_json::to_writer(&mut counter, value).map_err(|_| OverBudget)?;
    *budget = counter.left;
    Ok(())
}

/// A JSON value with queries in it, parsed: a step's `input`, a
/// definition's `output`.
#[derive(Debug, Clone)]
pub enum Template {
    Literal(Value),
    Query(Query),
    Array(Vec<Template>),
    Object(Vec<(String, Template)>),
}

impl Template {
    /// Parses `value`; `place` (e.g. `steps[2].input`) names where it is,
    /// and errors point inside it (`steps[2].input.user.id`).
    pub fn parse(value: &Value, place: &str) -> Result<Template, ExprError> {
        Ok(match value {
            Value::String(s) if s.starts_with("$$") => {
                Template::Literal(Value::String(s[1..].to_owned()))
            }
            Value::String(s) if s.starts_with("$.") || s.starts_with("$[") => {
                Template::Query(Query::parse(s, place)?)
            }
            Value::Array(items) => Template::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Template::parse(v, &format!("{place}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Template::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), Template::parse(v, &format!("{place}.{k}"))?)))
                    .collect::<Result<_, ExprError>>()?,
            ),
            other => Template::Literal(other.clone()),
        })
    }

    /// The value with every query replaced by its value in `scope`, its
    /// size as JSON taken from `budget` piece by piece: refused as soon as
    /// it would pass it, so a template that repeats a large value many
    /// times never builds it.
    pub fn eval_within(&self, scope: &Value, budget: &mut u64) -> Result<Value, OverBudget> {
        Ok(match self {
            Template::Literal(v) => {
                take(budget, v)?;
                v.clone()
            }
            Template::Query(q) => q.eval_within(scope, budget)?,
            Template::Array(items) => {
                spend(budget, items.len() as u64 + 2)?;
                Value::Array(
                    items
                        .iter()
                        .map(|t| t.eval_within(scope, budget))
                        .collect::<Result<_, _>>()?,
                )
            }
            Template::Object(fields) => {
                spend(budget, 2)?;
                let mut map = Map::new();
                for (k, t) in fields {
                    // The key, its quotes, the colon and a comma.
                    spend(budget, k.len() as u64 + 4)?;
                    map.insert(k.clone(), t.eval_within(scope, budget)?);
                }
                Value::Object(map)
            }
        })
    }

    /// Every query in it.
    pub fn queries(&self) -> Vec<&Query> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Query>) {
        match self {
            Template::Literal(_) => {}
            Template::Query(q) => out.push(q),
            Template::Array(items) => items.iter().for_each(|t| t.collect(out)),
            Template::Object(fields) => fields.iter().for_each(|(_, t)| t.collect(out)),
        }
    }
}

/// Whether a value counts as true for `if`: everything but `null`,
/// `false`, `0`, `""`, `[]` and `{}`.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Value {
        json!({
            "input": {"user": {"id": 7, "tags": ["a", "b"]}, "n": 0},
            "steps": {
                "fetch": {"output": {"items": [{"price": 2}, {"price": 3}]}},
                "my-step": {"output": "x"}
            }
        })
    }

    /// A template's value, with no bound.
    fn full(t: &Template) -> Value {
        let mut unbounded = u64::MAX;
        t.eval_within(&scope(), &mut unbounded).unwrap()
    }

    fn eval(text: &str) -> Value {
        full(&Template::parse(&json!(text), "input").unwrap())
    }

    #[test]
    fn singular_queries_give_a_value_others_a_list() {
        assert_eq!(eval("$.input.user.id"), json!(7));
        assert_eq!(eval("$.input.user.tags[1]"), json!("b"));
        assert_eq!(eval("$.input.missing"), Value::Null);
        assert_eq!(eval("$.steps['my-step'].output"), json!("x"));
        assert_eq!(eval("$.steps.fetch.output.items[*].price"), json!([2, 3]));
        assert_eq!(
            eval("$.steps.fetch.output.items[?@.price > 2]"),
            json!([{"price": 3}])
        );
        assert_eq!(eval("$..price"), json!([2, 3]));
        assert_eq!(eval("$.input.user.tags[0:1]"), json!(["a"]));
        assert_eq!(eval("$.input.nothing[*]"), json!([]));
    }

    #[test]
    fn templates_replace_queries_anywhere_and_keep_literals() {
        let t = Template::parse(
            &json!({"id": "$.input.user.id", "list": ["$.input.n", 1, "$$.not.a.path"], "s": "plain $.x"}),
            "steps[0].input",
        )
        .unwrap();
        assert_eq!(
            full(&t),
            json!({"id": 7, "list": [0, 1, "$.not.a.path"], "s": "plain $.x"})
        );
        assert_eq!(eval("$$"), json!("$"));
    }

    #[test]
    fn bad_queries_are_refused_with_their_place() {
        let e = Template::parse(&json!({"a": ["$.input[", 1]}), "steps[1].input").unwrap_err();
        assert_eq!(e.place, "steps[1].input.a[0]");
        assert!(e.message.contains("not a valid JSONPath query"), "{e}");
        let e = Query::parse("input.x", "steps[0].if").unwrap_err();
        assert!(e.message.contains("must begin with `$.`"), "{e}");
    }

    #[test]
    fn step_references_are_named() {
        let named = |text: &str| {
            Query::parse(text, "x")
                .unwrap()
                .step_ref()
                .map(str::to_owned)
        };
        assert_eq!(named("$.steps.fetch.output").as_deref(), Some("fetch"));
        assert_eq!(
            named("$.steps['my-step'].output").as_deref(),
            Some("my-step")
        );
        assert_eq!(named("$.steps.fetch").as_deref(), Some("fetch"));
        for broad in [
            "$.steps.*.output",
            "$.steps[*]",
            "$.steps..output",
            "$.steps",
            "$.input",
        ] {
            assert_eq!(named(broad), None, "{broad}");
        }
    }

    #[test]
    fn singularity_is_read_from_the_text() {
        for s in ["$.a", "$.a.b[0]", "$['a.b'][\"c,d\"]", "$.a[-1]"] {
            assert!(is_singular(s), "{s}");
        }
        for s in ["$.a[*]", "$..a", "$.a[0:2]", "$.a[0,1]", "$.a[?@.b]", "$.*"] {
            assert!(!is_singular(s), "{s}");
        }
    }

    #[test]
    fn a_budget_bounds_what_a_template_builds() {
        let scope = json!({"input": {"big": "x".repeat(1000), "n": [1, 2, 3]}});
        let once = Template::parse(&json!({"a": "$.input.big"}), "input").unwrap();
        let mut budget = 2_000;
        let value = once.eval_within(&scope, &mut budget).unwrap();
        assert_eq!(value, json!({"a": "x".repeat(1000)}));
        // {"a":"x…x"}: 2 braces, the key with its quotes, colon and a
        // comma (5), and the string with its quotes (1,002).
        assert_eq!(budget, 2_000 - 1_009);
        let many =
            Template::parse(&Value::Array(vec![json!("$.input.big"); 100]), "input").unwrap();
        let mut budget = 50_000;
        assert_eq!(many.eval_within(&scope, &mut budget), Err(OverBudget));
        let list = Template::parse(&json!("$.input.n[*]"), "input").unwrap();
        let mut budget = 100;
        assert_eq!(
            list.eval_within(&scope, &mut budget).unwrap(),
            json!([1, 2, 3])
        );
        let mut budget = 4;
        assert_eq!(list.eval_within(&scope, &mut budget), Err(OverBudget));
    }

    #[test]
    fn truthiness() {
        for v in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [
            json!(true),
            json!(1),
            json!(-0.5),
            json!("no"),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(truthy(&v), "{v}");
        }
    }
}
