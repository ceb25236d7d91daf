//! The store-doc step: config parsing, key templates and the five
//! operations, over a [`Store`] that the component implements with the
//! host's `store` import (and the tests with a map).
//!
//! Config (a JSON object; other keys are refused, to catch typos):
//!
//! * `op`: `"put"`, `"get"`, `"delete"`, `"list"` or `"merge"` (required).
//! * `key` (template; put, get, delete, merge): the document's key, with
//!   `{$.path}` placeholders filled from the input: `"invoices/{$.id}"`.
//!   `{{` and `}}` are literal braces.
//! * `value` (path; put, merge): store this part of the input instead of
//!   all of it.
//! * `if_version` (put): a whole number, or a path to one in the input;
//!   write only if the document is at that version (`0`: only create).
//! * `prefix` (template; list, default `""`) and `limit` (list, 1 to 1000,
//!   default [`DEFAULT_LIMIT`]).
//! * `after` (template; list): list the keys after this one: the `next` of
//!   the previous page. A page also ends early when its values pass the
//!   host's byte limit for one listing; `next` then says where to go on.
//!
//! Paths: `$`, then `.name` (letters, digits, `_`, `-`), `["any key"]`,
//! `['any key']`, `[0]` or `[-1]` (from the end).

use serde_json::{Map, Value, json};

/// A stored document, as the host returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub key: String,
    /// JSON text.
    pub value: String,
    pub version: u64,
}

/// The host store's errors.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// The current version (none: no document).
    Conflict(Option<u64>),
    Invalid(String),
    Unavailable(String),
}

/// The host's document store, namespaced to this plugin.
pub trait Store {
    fn get(&mut self, key: &str) -> Result<Option<Doc>, StoreError>;
    /// `expected`: none writes unconditionally, some(0) only creates,
    /// some(v) only replaces version v. Returns the new version.
    fn put(&mut self, key: &str, value: &str, expected: Option<u64>) -> Result<u64, StoreError>;
    fn delete(&mut self, key: &str) -> Result<bool, StoreError>;
    /// A page of the documents whose key starts with `prefix`, after
    /// `after`: the documents, and the key to go on after (none: the last
    /// page).
    fn list(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<Doc>, Option<String>), StoreError>;
}

/// Why the step refused or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    InvalidInput(String),
    Failed(String),
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidInput(message.into())
}

/// The keys `config` may have.
pub const CONFIG_KEYS: [&str; 7] = [
    "op",
    "key",
    "value",
    "prefix",
    "after",
    "limit",
    "if_version",
];

/// Documents `list` returns when config does not say.
pub const DEFAULT_LIMIT: u32 = 100;

/// The most documents `list` may ask for (the host's limit).
pub const MAX_LIMIT: u32 = 1000;

/// How often `merge` reads and writes again after a conflict.
pub const MERGE_RETRIES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    Delete,
    List,
    Merge,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Delete => "delete",
            Op::List => "list",
            Op::Merge => "merge",
        }
    }

    /// The config keys, besides `op`, this operation takes.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Op::Put => &["key", "value", "if_version"],
            Op::Get | Op::Delete => &["key"],
            Op::List => &["prefix", "after", "limit"],
            Op::Merge => &["key", "value"],
        }
    }
}

/// A path into the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub source: String,
    segs: Vec<Seg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(i64),
}

impl Path {
    /// The value at this path, if any.
    fn get<'v>(&self, input: &'v Value) -> Option<&'v Value> {
        let mut value = input;
        for seg in &self.segs {
            value = match seg {
                Seg::Key(k) => value.as_object()?.get(k)?,
                Seg::Index(i) => {
                    let items = value.as_array()?;
                    let at = if *i < 0 {
                        i64::try_from(items.len()).ok()? + i
                    } else {
                        *i
                    };
                    items.get(usize::try_from(at).ok()?)?
                }
            };
        }
        Some(value)
    }
}

/// Parses a path starting at `chars[start]`; returns it and the index
/// after it, or a message and the 0-based index of the problem.
fn parse_path(chars: &[char], start: usize) -> Result<(Path, usize), (String, usize)> {
    if chars.get(start) != Some(&'$') {
        return Err(("a path starts with `$`".into(), start));
    }
    let mut segs = Vec::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            Some('.') => {
                let begin = i + 1;
                let mut end = begin;
                while chars
                    .get(end)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                {
                    end += 1;
                }
                if end == begin {
                    return Err((
                        "expected a field name after `.` (other keys are written [\"key\"])".into(),
                        begin,
                    ));
                }
                segs.push(Seg::Key(chars[begin..end].iter().collect()));
                i = end;
            }
            Some('[') => {
                let open = i;
                i += 1;
                match chars.get(i) {
                    Some(&quote @ ('"' | '\'')) => {
                        let begin = i + 1;
                        let Some(len) = chars[begin..].iter().position(|c| *c == quote) else {
                            return Err(("unterminated string".into(), i));
                        };
                        segs.push(Seg::Key(chars[begin..begin + len].iter().collect()));
                        i = begin + len + 1;
                    }
                    _ => {
                        let begin = i;
                        if chars.get(i) == Some(&'-') {
                            i += 1;
                        }
                        while chars.get(i).is_some_and(char::is_ascii_digit) {
                            i += 1;
                        }
                        let text: String = chars[begin..i].iter().collect();
                        let Ok(index) = text.parse::<i64>() else {
                            return Err((
                                "expected an index or a quoted key inside `[ ]`".into(),
                                begin,
                            ));
                        };
                        segs.push(Seg::Index(index));
                    }
                }
                if chars.get(i) != Some(&']') {
                    return Err((
                        format!("expected `]` to close the `[` at column {}", open + 1),
                        i,
                    ));
                }
                i += 1;
            }
            _ => break,
        }
    }
    Ok((
        Path {
            source: chars[start..i].iter().collect(),
            segs,
        },
        i,
    ))
}

/// A config value that is a whole path: `"$.doc"`.
fn whole_path(source: &str, what: &str) -> Result<Path, Error> {
    let chars: Vec<char> = source.trim().chars().collect();
    let at = |message: String, index: usize| {
        invalid(format!(
            "config.{what}: {message} at column {} of `{}`",
            index + 1,
            source.trim()
        ))
    };
    let (path, end) = parse_path(&chars, 0).map_err(|(m, i)| at(m, i))?;
    if end != chars.len() {
        return Err(at("unexpected text after the path".into(), end));
    }
    Ok(path)
}

/// Text with `{$.path}` placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Value(Path),
}

fn parse_template(source: &str, what: &str) -> Result<Template, Error> {
    let at = |message: String, index: usize| {
        invalid(format!(
            "config.{what}: {message} at column {} of `{source}`",
            index + 1
        ))
    };
    let chars: Vec<char> = source.chars().collect();
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' if chars.get(i + 1) == Some(&'{') => {
                text.push('{');
                i += 2;
            }
            '}' if chars.get(i + 1) == Some(&'}') => {
                text.push('}');
                i += 2;
            }
            '}' => return Err(at("unmatched `}` (write `}}` for a brace)".into(), i)),
            '{' => {
                let open = i;
                i += 1;
                while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                    i += 1;
                }
                let (path, end) = parse_path(&chars, i).map_err(|(m, i)| {
                    at(
                        format!("{m} (placeholders are `{{$.field}}`; `{{{{` is a brace)"),
                        i,
                    )
                })?;
                i = end;
                while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                    i += 1;
                }
                if chars.get(i) != Some(&'}') {
                    return Err(at(
                        format!("expected `}}` to close the `{{` at column {}", open + 1),
                        i,
                    ));
                }
                i += 1;
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(Part::Value(path));
            }
            c => {
                text.push(c);
                i += 1;
            }
        }
    }
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(Template {
        source: source.to_string(),
        parts,
    })
}

impl Template {
    /// The text, placeholders filled from `input`: strings as they are,
    /// numbers and booleans as JSON. Anything else is refused.
    fn fill(&self, input: &Value, what: &str) -> Result<String, Error> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Value(path) => match path.get(input) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Number(n)) => out.push_str(&n.to_string()),
                    Some(Value::Bool(b)) => out.push_str(&b.to_string()),
                    None | Some(Value::Null) => {
                        return Err(invalid(format!(
                            "{what}: {{{}}} is missing from the input",
                            path.source
                        )));
                    }
                    Some(other) => {
                        return Err(invalid(format!(
                            "{what}: {{{}}} is {}, not a string or number",
                            path.source,
                            a_type(other)
                        )));
                    }
                },
            }
        }
        Ok(out)
    }
}

fn a_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Where `if_version` comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum IfVersion {
    Fixed(u64),
    At(Path),
}

/// A parsed step configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub op: Op,
    pub key: Option<Template>,
    pub prefix: Option<Template>,
    pub after: Option<Template>,
    pub value: Option<Path>,
    pub limit: u32,
    pub if_version: Option<IfVersion>,
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
    let op = match config.get("op") {
        Some(Value::String(s)) => match s.as_str() {
            "put" => Op::Put,
            "get" => Op::Get,
            "delete" => Op::Delete,
            "list" => Op::List,
            "merge" => Op::Merge,
            _ => {
                return Err(invalid(format!(
                    "config.op must be one of put, get, delete, list, merge; not {s:?}"
                )));
            }
        },
        Some(other) => {
            return Err(invalid(format!(
                "config.op must be one of \"put\", \"get\", \"delete\", \"list\", \"merge\"; not {other}"
            )));
        }
        None => {
            return Err(invalid(
                "config.op is required: one of put, get, delete, list, merge, \
                 e.g. {\"op\": \"put\", \"key\": \"invoices/{$.id}\"}",
            ));
        }
    };
    if let Some(key) = config
        .keys()
        .find(|k| *k != "op" && !op.keys().contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "config.{key} does not apply to op {:?} (it takes: {})",
            op.name(),
            op.keys().join(", ")
        )));
    }
    let string = |name: &str| -> Result<Option<&str>, Error> {
        match config.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(format!(
                "config.{name} must be a string, not {other}"
            ))),
        }
    };
    let key = string("key")?
        .map(|s| parse_template(s, "key"))
        .transpose()?;
    if key.is_none() && op != Op::List {
        return Err(invalid(format!(
            "config.key is required for op {:?}: the document's key, e.g. \"invoices/{{$.id}}\"",
            op.name()
        )));
    }
    let prefix = string("prefix")?
        .map(|s| parse_template(s, "prefix"))
        .transpose()?;
    let after = string("after")?
        .map(|s| parse_template(s, "after"))
        .transpose()?;
    let value = string("value")?
        .map(|s| whole_path(s, "value"))
        .transpose()?;
    let limit = match config.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=u64::from(MAX_LIMIT)).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                invalid(format!(
                    "config.limit must be a whole number from 1 to {MAX_LIMIT}, not {v}"
                ))
            })?,
    };
    let if_version = match config.get("if_version") {
        None => None,
        Some(Value::String(s)) => Some(IfVersion::At(whole_path(s, "if_version")?)),
        Some(v) => Some(IfVersion::Fixed(v.as_u64().ok_or_else(|| {
            invalid(format!(
                "config.if_version must be a version (a whole number, 0 for \"only create\") \
                 or a path to one such as \"$.version\", not {v}"
            ))
        })?)),
    };
    Ok(Config {
        op,
        key,
        prefix,
        after,
        value,
        limit,
        if_version,
    })
}

/// Runs the configured operation on `input` (JSON text); returns the
/// output as JSON text.
pub fn run(store: &mut impl Store, input: &str, config: &Config) -> Result<String, Error> {
    let input: Value = serde_json::from_str(input)
        .map_err(|e| invalid(format!("input is not valid JSON: {e}")))?;
    let output = match config.op {
        Op::List => {
            let prefix = match &config.prefix {
                Some(t) => t.fill(&input, "prefix")?,
                None => String::new(),
            };
            let after = match &config.after {
                Some(t) => Some(t.fill(&input, "after")?).filter(|a| !a.is_empty()),
                None => None,
            };
            let (docs, next) = store
                .list(&prefix, after.as_deref(), config.limit)
                .map_err(|e| store_error(e, "list", &prefix))?;
            let docs = docs
                .iter()
                .map(|d| Ok(json!({"key": d.key, "value": stored(d)?, "version": d.version})))
                .collect::<Result<Vec<_>, Error>>()?;
            json!({ "docs": docs, "next": next })
        }
        op => {
            let key = match &config.key {
                Some(t) => t.fill(&input, "key")?,
                None => String::new(),
            };
            if key.is_empty() {
                return Err(invalid(format!(
                    "key: `{}` gives an empty key",
                    config.key.as_ref().map_or("", |t| t.source.as_str())
                )));
            }
            match op {
                Op::Get => match store.get(&key).map_err(|e| store_error(e, "get", &key))? {
                    Some(doc) => {
                        json!({"key": key, "found": true, "value": stored(&doc)?, "version": doc.version})
                    }
                    None => json!({"key": key, "found": false, "value": null, "version": 0}),
                },
                Op::Delete => {
                    let deleted = store
                        .delete(&key)
                        .map_err(|e| store_error(e, "delete", &key))?;
                    json!({"key": key, "deleted": deleted})
                }
                Op::Put => put(store, config, input, key)?,
                _ => merge(store, config, input, key)?,
            }
        }
    };
    Ok(output.to_string())
}

/// The part of the input to store: `config.value`'s, or all of it.
fn selected<'v>(config: &Config, input: &'v Value) -> Result<&'v Value, Error> {
    match &config.value {
        None => Ok(input),
        Some(path) => path
            .get(input)
            .ok_or_else(|| invalid(format!("value: {} is missing from the input", path.source))),
    }
}

fn put(store: &mut impl Store, config: &Config, input: Value, key: String) -> Result<Value, Error> {
    let expected = match &config.if_version {
        None => None,
        Some(IfVersion::Fixed(v)) => Some(*v),
        Some(IfVersion::At(path)) => match path.get(&input) {
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                invalid(format!(
                    "if_version: {} is {v}, not a version (a whole number)",
                    path.source
                ))
            })?),
            None => {
                return Err(invalid(format!(
                    "if_version: {} is missing from the input",
                    path.source
                )));
            }
        },
    };
    let value = selected(config, &input)?.to_string();
    match store.put(&key, &value, expected) {
        Ok(version) => Ok(json!({"key": key, "version": version, "input": input})),
        Err(StoreError::Conflict(current)) => Err(Error::Failed(conflict(current, expected, &key))),
        Err(e) => Err(store_error(e, "put", &key)),
    }
}

/// Reads the object at `key`, merges the input's fields over it and
/// writes it back at the version read; again after a conflict.
fn merge(
    store: &mut impl Store,
    config: &Config,
    input: Value,
    key: String,
) -> Result<Value, Error> {
    let Value::Object(patch) = selected(config, &input)? else {
        let what = match &config.value {
            Some(path) => format!("the value at {}", path.source),
            None => "the input".to_string(),
        };
        return Err(invalid(format!(
            "merge: {what} is {}, not an object to merge",
            a_type(selected(config, &input)?)
        )));
    };
    let mut last = None;
    for _ in 0..=MERGE_RETRIES {
        let current = store.get(&key).map_err(|e| store_error(e, "merge", &key))?;
        let (mut merged, expected) = match current {
            None => (Map::new(), 0),
            Some(doc) => match stored(&doc)? {
                Value::Object(map) => (map, doc.version),
                other => {
                    return Err(Error::Failed(format!(
                        "merge: the document at {} is {}, not an object",
                        shown(&key),
                        a_type(&other)
                    )));
                }
            },
        };
        for (k, v) in patch {
            merged.insert(k.clone(), v.clone());
        }
        let merged = Value::Object(merged);
        match store.put(&key, &merged.to_string(), Some(expected)) {
            Ok(version) => {
                return Ok(
                    json!({"key": key, "version": version, "value": merged, "input": input}),
                );
            }
            Err(StoreError::Conflict(current)) => last = Some((current, expected)),
            Err(e) => return Err(store_error(e, "merge", &key)),
        }
    }
    let (current, expected) = last.unwrap_or((None, 0));
    Err(Error::Failed(format!(
        "{}; merge gave up after {} attempts",
        conflict(current, Some(expected), &key),
        MERGE_RETRIES + 1
    )))
}

/// The conflict message: `conflict: current version N ...`.
pub fn conflict(current: Option<u64>, expected: Option<u64>, key: &str) -> String {
    let expected = expected.map_or(String::new(), |v| format!(", expected {v}"));
    match current {
        Some(v) => format!(
            "conflict: current version {v}{expected}, key {}",
            shown(key)
        ),
        None => format!(
            "conflict: the document does not exist{expected}, key {}",
            shown(key)
        ),
    }
}

/// A key for a message: quoted, and cut short when long.
fn shown(key: &str) -> String {
    const MAX: usize = 80;
    match key.char_indices().nth(MAX) {
        Some((at, _)) => format!("{:?}...", &key[..at]),
        None => format!("{key:?}"),
    }
}

fn store_error(e: StoreError, op: &str, key: &str) -> Error {
    match e {
        StoreError::Invalid(m) => invalid(format!("store refused {op} {}: {m}", shown(key))),
        StoreError::Unavailable(m) => {
            Error::Failed(format!("store unavailable ({op} {}): {m}", shown(key)))
        }
        StoreError::Conflict(current) => Error::Failed(conflict(current, None, key)),
    }
}

/// A stored document's value.
fn stored(doc: &Doc) -> Result<Value, Error> {
    serde_json::from_str(&doc.value).map_err(|e| {
        Error::Failed(format!(
            "the document at {} is not JSON: {e}",
            shown(&doc.key)
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// An in-memory store that behaves like the host's, with faults on
    /// demand.
    #[derive(Default)]
    struct Mem {
        docs: BTreeMap<String, (String, u64)>,
        /// Writes by "another writer" to slip in before each of the next
        /// this-many conditional puts.
        interleave: u32,
        /// Every call fails with this.
        down: Option<StoreError>,
        puts: u32,
    }

    impl Store for Mem {
        fn get(&mut self, key: &str) -> Result<Option<Doc>, StoreError> {
            if let Some(e) = &self.down {
                return Err(e.clone());
            }
            Ok(self.docs.get(key).map(|(value, version)| Doc {
                key: key.to_string(),
                value: value.clone(),
                version: *version,
            }))
        }

        fn put(
            &mut self,
            key: &str,
            value: &str,
            expected: Option<u64>,
        ) -> Result<u64, StoreError> {
            if let Some(e) = &self.down {
                return Err(e.clone());
            }
            self.puts += 1;
            if expected.is_some() && self.interleave > 0 {
                self.interleave -= 1;
                let other = self.docs.entry(key.to_string()).or_insert(("{}".into(), 0));
                other.0 = r#"{"other":true}"#.into();
                other.1 += 1;
            }
            serde_json::from_str::<Value>(value)
                .map_err(|e| StoreError::Invalid(format!("value is not JSON: {e}")))?;
            let current = self.docs.get(key).map(|d| d.1);
            match expected {
                Some(0) if current.is_some() => return Err(StoreError::Conflict(current)),
                Some(v) if v > 0 && current != Some(v) => {
                    return Err(StoreError::Conflict(current));
                }
                _ => {}
            }
            let version = current.unwrap_or(0) + 1;
            self.docs
                .insert(key.to_string(), (value.to_string(), version));
            Ok(version)
        }

        fn delete(&mut self, key: &str) -> Result<bool, StoreError> {
            if let Some(e) = &self.down {
                return Err(e.clone());
            }
            Ok(self.docs.remove(key).is_some())
        }

        fn list(
            &mut self,
            prefix: &str,
            after: Option<&str>,
            limit: u32,
        ) -> Result<(Vec<Doc>, Option<String>), StoreError> {
            if let Some(e) = &self.down {
                return Err(e.clone());
            }
            let mut matching = self
                .docs
                .iter()
                .filter(|(k, _)| k.starts_with(prefix) && after.is_none_or(|a| k.as_str() > a));
            let docs: Vec<Doc> = matching
                .by_ref()
                .take(limit as usize)
                .map(|(k, (value, version))| Doc {
                    key: k.clone(),
                    value: value.clone(),
                    version: *version,
                })
                .collect();
            let next = matching
                .next()
                .and_then(|_| docs.last().map(|d| d.key.clone()));
            Ok((docs, next))
        }
    }

    fn step(store: &mut Mem, input: Value, config: Value) -> Result<Value, Error> {
        let config = parse_config(&config.to_string())?;
        run(store, &input.to_string(), &config).map(|out| serde_json::from_str(&out).unwrap())
    }

    fn ok(store: &mut Mem, input: Value, config: Value) -> Value {
        step(store, input, config).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn invalid_msg(r: Result<impl std::fmt::Debug, Error>) -> String {
        match r {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("expected invalid-input, got {other:?}"),
        }
    }

    fn failed_msg(r: Result<impl std::fmt::Debug, Error>) -> String {
        match r {
            Err(Error::Failed(m)) => m,
            other => panic!("expected failed, got {other:?}"),
        }
    }

    fn invoice() -> Value {
        json!({"id": "A-7", "customer": {"id": 42}, "total": 19.5, "lines": [{"sku": "pen"}]})
    }

    #[test]
    fn put_get_delete() {
        let mut s = Mem::default();
        let out = ok(
            &mut s,
            invoice(),
            json!({"op": "put", "key": "invoices/{$.id}"}),
        );
        assert_eq!(
            out,
            json!({"key": "invoices/A-7", "version": 1, "input": invoice()})
        );
        let out = ok(
            &mut s,
            invoice(),
            json!({"op": "put", "key": "invoices/{$.id}"}),
        );
        assert_eq!(out["version"], 2);
        let out = ok(
            &mut s,
            json!({"id": "A-7"}),
            json!({"op": "get", "key": "invoices/{$.id}"}),
        );
        assert_eq!(
            out,
            json!({"key": "invoices/A-7", "found": true, "value": invoice(), "version": 2})
        );
        let out = ok(
            &mut s,
            json!({"id": "A-8"}),
            json!({"op": "get", "key": "invoices/{$.id}"}),
        );
        assert_eq!(
            out,
            json!({"key": "invoices/A-8", "found": false, "value": null, "version": 0})
        );
        let out = ok(
            &mut s,
            json!(null),
            json!({"op": "delete", "key": "invoices/A-7"}),
        );
        assert_eq!(out, json!({"key": "invoices/A-7", "deleted": true}));
        let out = ok(
            &mut s,
            json!(null),
            json!({"op": "delete", "key": "invoices/A-7"}),
        );
        assert_eq!(out["deleted"], false);
    }

    #[test]
    fn put_a_part_of_the_input() {
        let mut s = Mem::default();
        let out = ok(
            &mut s,
            invoice(),
            json!({"op": "put", "key": "customers/{$.customer.id}/last", "value": "$.lines[0]"}),
        );
        assert_eq!(out["key"], "customers/42/last");
        assert_eq!(s.docs["customers/42/last"].0, r#"{"sku":"pen"}"#);
        assert!(
            invalid_msg(step(
                &mut s,
                json!({}),
                json!({"op": "put", "key": "k", "value": "$.doc"})
            ))
            .contains("value: $.doc is missing from the input")
        );
    }

    #[test]
    fn if_version_guards_put() {
        let mut s = Mem::default();
        // 0: only create.
        let create = json!({"op": "put", "key": "k", "if_version": 0});
        assert_eq!(ok(&mut s, json!({"n": 1}), create.clone())["version"], 1);
        assert_eq!(
            failed_msg(step(&mut s, json!({"n": 2}), create)),
            "conflict: current version 1, expected 0, key \"k\""
        );
        let at_1 = json!({"op": "put", "key": "k", "if_version": 1});
        assert_eq!(ok(&mut s, json!({"n": 2}), at_1.clone())["version"], 2);
        assert!(
            failed_msg(step(&mut s, json!({"n": 3}), at_1))
                .starts_with("conflict: current version 2")
        );
        // From the input: read, change, write back.
        let from_input =
            json!({"op": "put", "key": "k", "value": "$.value", "if_version": "$.version"});
        let read = ok(&mut s, json!(null), json!({"op": "get", "key": "k"}));
        assert_eq!(ok(&mut s, read.clone(), from_input.clone())["version"], 3);
        assert!(failed_msg(step(&mut s, read, from_input.clone())).contains("current version 3"));
        assert_eq!(s.docs["k"].0, r#"{"n":2}"#);
        assert_eq!(
            failed_msg(step(
                &mut s,
                json!({"value": 1, "version": 5}),
                json!({"op": "put", "key": "gone", "if_version": 5})
            )),
            "conflict: the document does not exist, expected 5, key \"gone\""
        );
        assert!(
            invalid_msg(step(&mut s, json!({"value": 1}), from_input.clone()))
                .contains("if_version: $.version is missing")
        );
        assert!(
            invalid_msg(step(
                &mut s,
                json!({"value": 1, "version": "2"}),
                from_input
            ))
            .contains("if_version: $.version is \"2\", not a version")
        );
    }

    #[test]
    fn merge_is_shallow_and_retries_conflicts() {
        let mut s = Mem::default();
        let merge = json!({"op": "merge", "key": "c/{$.id}"});
        let out = ok(
            &mut s,
            json!({"id": 1, "a": 1, "o": {"x": 1}}),
            merge.clone(),
        );
        assert_eq!(out["version"], 1);
        assert_eq!(out["value"], json!({"id": 1, "a": 1, "o": {"x": 1}}));
        let out = ok(
            &mut s,
            json!({"id": 1, "b": 2, "o": {"y": 2}, "a": null}),
            merge.clone(),
        );
        assert_eq!(out["version"], 2);
        assert_eq!(
            out["value"],
            json!({"id": 1, "a": null, "b": 2, "o": {"y": 2}})
        );
        assert_eq!(
            out["input"],
            json!({"id": 1, "b": 2, "o": {"y": 2}, "a": null})
        );

        // Another writer slips in twice: merged over its write.
        s.interleave = 2;
        let out = ok(&mut s, json!({"id": 1, "c": 3}), merge.clone());
        assert_eq!(out["version"], 5);
        assert_eq!(out["value"], json!({"other": true, "id": 1, "c": 3}));

        // ... and forever: give up after 1 + 5 attempts.
        s.interleave = 100;
        s.puts = 0;
        let msg = failed_msg(step(&mut s, json!({"id": 1, "d": 4}), merge.clone()));
        assert!(msg.starts_with("conflict: current version"), "{msg}");
        assert!(msg.ends_with("merge gave up after 6 attempts"), "{msg}");
        assert_eq!(s.puts, 6);
        s.interleave = 0;

        // Merging a part of the input; refusing non-objects.
        let out = ok(
            &mut s,
            json!({"id": 2, "patch": {"z": 1}}),
            json!({"op": "merge", "key": "c/{$.id}", "value": "$.patch"}),
        );
        assert_eq!(out["value"], json!({"z": 1}));
        assert_eq!(
            invalid_msg(step(&mut s, json!([1]), json!({"op": "merge", "key": "k"}))),
            "merge: the input is an array, not an object to merge"
        );
        s.docs.insert("list".into(), ("[1]".into(), 1));
        assert_eq!(
            failed_msg(step(
                &mut s,
                json!({"a": 1}),
                json!({"op": "merge", "key": "list"})
            )),
            "merge: the document at \"list\" is an array, not an object"
        );
    }

    #[test]
    fn list_by_prefix() {
        let mut s = Mem::default();
        for (id, total) in [("b", 2), ("a", 1), ("c", 3)] {
            ok(
                &mut s,
                json!({"id": id, "total": total}),
                json!({"op": "put", "key": "inv/{$.id}"}),
            );
        }
        ok(&mut s, json!({}), json!({"op": "put", "key": "other"}));
        let out = ok(
            &mut s,
            json!({"kind": "inv"}),
            json!({"op": "list", "prefix": "{$.kind}/", "limit": 2}),
        );
        assert_eq!(
            out,
            json!({"docs": [
                {"key": "inv/a", "value": {"id": "a", "total": 1}, "version": 1},
                {"key": "inv/b", "value": {"id": "b", "total": 2}, "version": 1},
            ], "next": "inv/b"})
        );
        // The next page, after the last key of this one.
        let out = ok(
            &mut s,
            json!({"kind": "inv", "next": "inv/b"}),
            json!({"op": "list", "prefix": "{$.kind}/", "after": "{$.next}", "limit": 2}),
        );
        assert_eq!(
            out,
            json!({"docs": [
                {"key": "inv/c", "value": {"id": "c", "total": 3}, "version": 1},
            ], "next": null})
        );
        assert_eq!(
            ok(&mut s, json!(null), json!({"op": "list"}))["docs"]
                .as_array()
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            ok(&mut s, json!(null), json!({"op": "list", "prefix": "zzz"})),
            json!({"docs": [], "next": null})
        );
    }

    #[test]
    fn templates() {
        let t = |src: &str, input: Value| {
            parse_template(src, "key").and_then(|t| t.fill(&input, "key"))
        };
        let input = json!({"id": 7, "user": {"name": "ada", "e-mail": "a@x"}, "tags": ["x", "y"], "ok": true, "sp ace": "s"});
        assert_eq!(t("plain", input.clone()).unwrap(), "plain");
        assert_eq!(
            t("u/{$.user.name}/{$.id}", input.clone()).unwrap(),
            "u/ada/7"
        );
        assert_eq!(t("{ $.tags[-1] }{$.tags[0]}", input.clone()).unwrap(), "yx");
        assert_eq!(t("{$.user.e-mail}", input.clone()).unwrap(), "a@x");
        assert_eq!(
            t("{$[\"sp ace\"]}-{$['ok']}", input.clone()).unwrap(),
            "s-true"
        );
        assert_eq!(t("{{literal}}", input.clone()).unwrap(), "{literal}");
        assert_eq!(t("{$.id}", json!({"id": 1.5})).unwrap(), "1.5");
        assert!(
            invalid_msg(t("{$.nope}", input.clone()))
                .contains("key: {$.nope} is missing from the input")
        );
        assert!(
            invalid_msg(t("{$.user}", input.clone()))
                .contains("key: {$.user} is an object, not a string or number")
        );
        for (src, message) in [
            ("a}", "unmatched `}` (write `}}` for a brace) at column 2"),
            ("{id}", "a path starts with `$`"),
            (
                "{$.id",
                "expected `}` to close the `{` at column 1 at column 6",
            ),
            ("{$.}", "expected a field name after `.`"),
            ("{$[x]}", "expected an index or a quoted key"),
            ("{$['a}", "unterminated string"),
            ("{$[0}", "expected `]` to close the `[` at column 3"),
        ] {
            let got = invalid_msg(parse_template(src, "key"));
            assert!(got.contains(message), "{src}: {got:?} lacks {message:?}");
            assert!(got.starts_with("config.key: "), "{got}");
        }
    }

    #[test]
    fn config_errors() {
        for (config, message) in [
            ("[]", "config must be a JSON object"),
            ("{", "config is not valid JSON"),
            ("{}", "config.op is required"),
            (
                r#"{"op": "upsert"}"#,
                "config.op must be one of put, get, delete, list, merge; not \"upsert\"",
            ),
            (r#"{"op": 1}"#, "config.op must be one of"),
            (r#"{"op": "get", "kye": "a"}"#, "unknown config key \"kye\""),
            (r#"{"op": "get"}"#, "config.key is required for op \"get\""),
            (r#"{"op": "get", "key": 1}"#, "config.key must be a string"),
            (
                r#"{"op": "get", "key": "a", "limit": 5}"#,
                "config.limit does not apply to op \"get\" (it takes: key)",
            ),
            (
                r#"{"op": "list", "key": "a"}"#,
                "config.key does not apply to op \"list\" (it takes: prefix, after, limit)",
            ),
            (
                r#"{"op": "merge", "key": "a", "if_version": 1}"#,
                "config.if_version does not apply to op \"merge\"",
            ),
            (
                r#"{"op": "list", "limit": 0}"#,
                "config.limit must be a whole number from 1 to 1000, not 0",
            ),
            (r#"{"op": "list", "limit": 1001}"#, "from 1 to 1000"),
            (
                r#"{"op": "put", "key": "a", "if_version": -1}"#,
                "config.if_version must be a version",
            ),
            (
                r#"{"op": "put", "key": "a", "if_version": "version"}"#,
                "config.if_version: a path starts with `$` at column 1",
            ),
            (
                r#"{"op": "put", "key": "a", "value": "$.a b"}"#,
                "config.value: unexpected text after the path at column 4 of `$.a b`",
            ),
            (
                r#"{"op": "put", "key": "a/{$.id"}"#,
                "config.key: expected `}`",
            ),
        ] {
            let got = invalid_msg(parse_config(config));
            assert!(got.contains(message), "{config}: {got:?} lacks {message:?}");
        }
    }

    #[test]
    fn input_and_store_errors() {
        let mut s = Mem::default();
        let config = parse_config(r#"{"op": "get", "key": "k/{$.id}"}"#).unwrap();
        assert!(invalid_msg(run(&mut s, "nope", &config)).starts_with("input is not valid JSON"));
        assert_eq!(
            invalid_msg(step(
                &mut s,
                json!({"id": ""}),
                json!({"op": "get", "key": "{$.id}"})
            )),
            "key: `{$.id}` gives an empty key"
        );
        s.down = Some(StoreError::Unavailable("pool timed out".into()));
        assert_eq!(
            failed_msg(step(
                &mut s,
                json!({"id": 1}),
                json!({"op": "get", "key": "k/{$.id}"})
            )),
            "store unavailable (get \"k/1\"): pool timed out"
        );
        s.down = Some(StoreError::Invalid("key must be 1 to 512 bytes".into()));
        assert_eq!(
            invalid_msg(step(&mut s, json!({}), json!({"op": "put", "key": "k"}))),
            "store refused put \"k\": key must be 1 to 512 bytes"
        );
        let long = "k".repeat(600);
        assert_eq!(
            invalid_msg(step(
                &mut s,
                json!({"k": long}),
                json!({"op": "get", "key": "{$.k}"})
            )),
            format!(
                "store refused get \"{}\"...: key must be 1 to 512 bytes",
                "k".repeat(80)
            )
        );
        s.down = None;
        s.docs.insert("bad".into(), ("{not json".into(), 1));
        assert!(
            failed_msg(step(&mut s, json!({}), json!({"op": "get", "key": "bad"})))
                .starts_with("the document at \"bad\" is not JSON")
        );
    }
}
