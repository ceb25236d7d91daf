//! A helper step that exercises every host import of the `step` world:
//! `log`, `kv`, `store` and `knowledge`.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use nova::plugin::{knowledge, kv, log, store};

struct Component;

const KEY: &str = "counter";
const VALUE: &[u8] = b"42";

fn warn(what: &str, err: &str) {
    log::log(
        log::Level::Warn,
        &format!("log-and-kv: {what} failed: {err}"),
    );
}

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "log-and-kv".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Logs, round-trips a kv key and searches the knowledge base.".to_owned(),
        }
    }

    /// Logs "log-and-kv called" at info; sets kv "counter" to b"42" (no
    /// TTL), reads it back, deletes it; searches knowledge for "what is nova"
    /// (top 3, no filter). Input and config are ignored. Always returns Ok:
    /// `{"kv_roundtrip": <set ok and get returned b"42">, "deleted": <delete
    /// returned Ok(true)>, "knowledge": <number of hits> or {"error": msg}}`.
    /// Each host error is also logged at warn.
    fn run(_input: String, _config: String) -> Result<String, PluginError> {
        log::log(log::Level::Info, "log-and-kv called");

        let set = kv::set(KEY, VALUE, None);
        if let Err(e) = &set {
            warn("kv set", e);
        }
        let got = kv::get(KEY);
        if let Err(e) = &got {
            warn("kv get", e);
        }
        let kv_roundtrip = set.is_ok() && matches!(&got, Ok(Some(v)) if v.as_slice() == VALUE);

        let deleted = match kv::delete(KEY) {
            Ok(existed) => existed,
            Err(e) => {
                warn("kv delete", &e);
                false
            }
        };

        let knowledge = match knowledge::search("what is nova", 3, &[]) {
            Ok(hits) => hits.len().to_string(),
            Err(e) => {
                warn("knowledge search", &e);
                format!("{{\"error\": {}}}", minijson::quote(&e))
            }
        };

        let store = store_roundtrip().unwrap_or_else(|e| {
            warn("store", &e);
            format!("{{\"error\": {}}}", minijson::quote(&e))
        });

        Ok(format!(
            "{{\"kv_roundtrip\": {kv_roundtrip}, \"deleted\": {deleted}, \"knowledge\": {knowledge}, \"store\": {store}}}"
        ))
    }
}

/// Creates "doc/a", fails to create it again (conflict at version 1),
/// replaces version 1, reads, lists and deletes it. Returns
/// `{"versions": [1, 2], "conflict": <current version>, "value": <read>,
///   "listed": <keys under "doc/">, "deleted": bool}`.
fn store_roundtrip() -> Result<String, String> {
    let err = |e: store::StoreError| format!("{e:?}");
    let first = store::put("doc/a", "{\"n\": 1}", Some(0)).map_err(err)?;
    let conflict = match store::put("doc/a", "{\"n\": 9}", Some(0)) {
        Err(store::StoreError::Conflict(current)) => {
            current.map_or("null".into(), |v| v.to_string())
        }
        other => return Err(format!("expected a conflict, got {other:?}")),
    };
    let second = store::put("doc/a", "{\"n\": 2}", Some(first)).map_err(err)?;
    let value = store::get("doc/a")
        .map_err(err)?
        .map_or("null".to_owned(), |d| d.value);
    let listed = store::list_by_prefix("doc/", 10).map_err(err)?.len();
    let deleted = store::delete("doc/a").map_err(err)?;
    Ok(format!(
        "{{\"versions\": [{first}, {second}], \"conflict\": {conflict}, \"value\": {value}, \"listed\": {listed}, \"deleted\": {deleted}}}"
    ))
}

export!(Component);
