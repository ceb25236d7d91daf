//! A step that speaks the standard `wasi:keyvalue` (store, atomics,
//! batch) the way a component written for Spin or wasmCloud does, and
//! nova's own `kv` beside it, to show both reach the same keys.
//!
//! `config` is `{"ops": "OP; OP; …"}`, each OP one of:
//! `open NAME`, `set K V`, `get K`, `delete K`, `exists K`, `incr K N`,
//! `list`, `get-many K K…`, `set-many K=V K=V…`, `nova-get K`, `nova-set K V`,
//! `fill K N` (sets K to N bytes of `x`). A value longer than 64 bytes is
//! shown as `<N bytes>`.
//! The bucket is `default` until `open` names another. Output: a JSON
//! array with one string per OP: its result, or `error: …`.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

mod kv_std {
    wit_bindgen::generate!({ path: "wit/keyvalue", world: "wasi:keyvalue/imports" });
}

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use kv_std::wasi::keyvalue::{atomics, batch, store};
use nova::plugin::kv;

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "std-keyvalue".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Runs wasi:keyvalue operations from its config.".to_owned(),
        }
    }

    fn run(_input: String, config: String) -> Result<String, PluginError> {
        let config = minijson::parse(&config).map_err(PluginError::InvalidInput)?;
        let ops = config
            .get("ops")
            .and_then(|v| v.as_str())
            .ok_or_else(|| PluginError::InvalidInput("config.ops is missing".into()))?
            .to_owned();
        let mut bucket: Option<store::Bucket> = None;
        let mut out = Vec::new();
        for op in ops.split(';').map(str::trim).filter(|o| !o.is_empty()) {
            let words: Vec<&str> = op.split_whitespace().collect();
            if words[0] == "open" {
                out.push(match store::open(words.get(1).copied().unwrap_or("")) {
                    Ok(b) => {
                        bucket = Some(b);
                        "ok".to_owned()
                    }
                    Err(e) => format!("error: {}", error(&e)),
                });
                continue;
            }
            if bucket.is_none() {
                match store::open("default") {
                    Ok(b) => bucket = Some(b),
                    Err(e) => {
                        out.push(format!("error: {}", error(&e)));
                        continue;
                    }
                }
            }
            let Some(b) = bucket.as_ref() else { continue };
            out.push(apply(b, &words).unwrap_or_else(|e| format!("error: {e}")));
        }
        let items: Vec<String> = out.iter().map(|s| minijson::quote(s)).collect();
        Ok(format!("[{}]", items.join(", ")))
    }
}

fn error(e: &store::Error) -> String {
    match e {
        store::Error::NoSuchStore => "no-such-store".to_owned(),
        store::Error::AccessDenied => "access-denied".to_owned(),
        store::Error::Other(m) => m.clone(),
    }
}

fn text(v: Option<Vec<u8>>) -> String {
    match v {
        None => "none".to_owned(),
        Some(v) if v.len() > 64 => format!("<{} bytes>", v.len()),
        Some(v) => String::from_utf8_lossy(&v).into_owned(),
    }
}

fn apply(b: &store::Bucket, words: &[&str]) -> Result<String, String> {
    let arg = |i: usize| words.get(i).copied().unwrap_or("");
    let e = |e: store::Error| error(&e);
    Ok(match words[0] {
        "set" => {
            b.set(arg(1), arg(2).as_bytes()).map_err(e)?;
            "ok".to_owned()
        }
        "get" => text(b.get(arg(1)).map_err(e)?),
        "fill" => {
            let n: usize = arg(2).parse().map_err(|_| "bad size".to_owned())?;
            b.set(arg(1), &vec![b'x'; n]).map_err(e)?;
            "ok".to_owned()
        }
        "delete" => {
            b.delete(arg(1)).map_err(e)?;
            "ok".to_owned()
        }
        "exists" => b.exists(arg(1)).map_err(e)?.to_string(),
        "incr" => {
            let delta: u64 = arg(2).parse().map_err(|_| "bad delta".to_owned())?;
            atomics::increment(b, arg(1), delta).map_err(e)?.to_string()
        }
        "list" => {
            let mut keys = Vec::new();
            let mut cursor = None;
            loop {
                let page = b.list_keys(cursor).map_err(e)?;
                keys.extend(page.keys);
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            keys.sort();
            keys.join(",")
        }
        "get-many" => {
            let keys: Vec<String> = words[1..].iter().map(|k| k.to_string()).collect();
            batch::get_many(b, &keys)
                .map_err(e)?
                .into_iter()
                .map(|kv| kv.map_or("none".to_owned(), |(k, v)| format!("{k}={}", text(Some(v)))))
                .collect::<Vec<_>>()
                .join(",")
        }
        "set-many" => {
            let pairs: Vec<(String, Vec<u8>)> = words[1..]
                .iter()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
                .collect();
            batch::set_many(b, &pairs).map_err(e)?;
            "ok".to_owned()
        }
        "nova-get" => text(kv::get(arg(1))?),
        "nova-set" => {
            kv::set(arg(1), arg(2).as_bytes(), None)?;
            "ok".to_owned()
        }
        other => return Err(format!("unknown op {other}")),
    })
}

export!(Component);
