//! nova's store-doc step: puts, gets, merges, lists and deletes JSON
//! documents in the host's durable store (the `store` import, namespaced
//! to this plugin by the host). `list` reads one page at a time through
//! `store.list-page` (contract 0.1.1): its output's `next` is the `after`
//! of the next page. Writes count against the plugin's store quota.
//!
//! The operations live in [`ops`], over a small `Store` trait that this
//! file implements with the SDK's `store`; they are unit-tested natively
//! against an in-memory store. Reference:
//! `knowledge/integrations/store-doc.md`.

mod ops;

use nova_plugin::store::{self, Expect};
use nova_plugin::{Error, RawStep};

// Natively (unit tests) the export is compiled out.
struct StoreDoc;

impl RawStep for StoreDoc {
    const DESCRIPTION: &'static str = "Keeps JSON documents in the host store: config {\"op\": \
                                       \"put\"|\"get\"|\"delete\"|\"list\"|\"merge\", \"key\": \
                                       \"invoices/{$.id}\", \"value\", \"if_version\", \
                                       \"prefix\", \"limit\"}; versioned, with optimistic \
                                       concurrency.";

    fn run(input: &str, config: &str) -> Result<String, Error> {
        let config = ops::parse_config(config)?;
        let op = config.op.name();
        let key = config.key.as_ref().or(config.prefix.as_ref());
        nova_plugin::debug!(
            "store-doc {op}: key {}",
            key.map_or("-", |t| t.source.as_str())
        );
        let output = ops::run(&mut HostStore, input, &config).inspect_err(|e| {
            if let ops::Error::Failed(m) = e {
                nova_plugin::warn!("store-doc {op}: {m}");
            }
        })?;
        Ok(output)
    }
}

impl From<ops::Error> for Error {
    fn from(e: ops::Error) -> Self {
        match e {
            ops::Error::InvalidInput(m) => Error::InvalidInput(m),
            ops::Error::Failed(m) => Error::Failed(m),
        }
    }
}

/// The host's store, through the SDK. Values travel as the JSON text
/// [`ops`] wrote and reads.
struct HostStore;

impl ops::Store for HostStore {
    fn get(&mut self, key: &str) -> Result<Option<ops::Doc>, ops::StoreError> {
        Ok(store::get(key).map_err(store_error)?.map(doc))
    }

    fn put(
        &mut self,
        key: &str,
        value: &str,
        expected: Option<u64>,
    ) -> Result<u64, ops::StoreError> {
        // Written as is: `ops` gives JSON text.
        let value: serde_json::Value = serde_json::from_str(value)
            .map_err(|e| ops::StoreError::Invalid(format!("value is not JSON: {e}")))?;
        let expect = match expected {
            None => Expect::Any,
            Some(0) => Expect::Absent,
            Some(version) => Expect::Version(version),
        };
        store::put(key, &value, expect).map_err(store_error)
    }

    fn delete(&mut self, key: &str) -> Result<bool, ops::StoreError> {
        store::delete(key).map_err(store_error)
    }

    fn list(
        &mut self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<ops::Doc>, Option<String>), ops::StoreError> {
        // As many bytes as the host allows in one page.
        let page = store::list(prefix, after, limit, u32::MAX).map_err(store_error)?;
        Ok((page.docs.into_iter().map(doc).collect(), page.next))
    }
}

fn doc(d: store::Doc) -> ops::Doc {
    ops::Doc {
        key: d.key,
        value: d.value.to_string(),
        version: d.version,
    }
}

fn store_error(e: store::StoreError) -> ops::StoreError {
    match e {
        store::StoreError::Conflict(current) => ops::StoreError::Conflict(current),
        store::StoreError::Invalid(m) => ops::StoreError::Invalid(m),
        store::StoreError::Unavailable(m) => ops::StoreError::Unavailable(m),
    }
}

nova_plugin::export_raw_step!(StoreDoc);

/// The step over the SDK's in-memory host: what [`HostStore`] adds to
/// [`ops`] (expected versions, values as stored, errors, the warning).
#[cfg(test)]
mod tests {
    use nova_plugin::{Error, json, testing};

    use super::StoreDoc;

    #[test]
    fn runs_on_the_host_store() {
        testing::reset();
        let run = |input: nova_plugin::Value, config: nova_plugin::Value| {
            testing::run_raw::<StoreDoc>(&input.to_string(), &config.to_string())
                .map(|out| serde_json::from_str::<nova_plugin::Value>(&out).expect("JSON"))
        };
        let put = json!({"op": "put", "key": "inv/{$.id}", "if_version": "$.v"});
        let out = run(json!({"id": "a", "v": 0, "n": [1, 2]}), put.clone());
        assert_eq!(out.unwrap()["version"], 1);
        assert_eq!(
            testing::doc("inv/a"),
            Some((json!({"id": "a", "v": 0, "n": [1, 2]}), 1))
        );
        let again = run(json!({"id": "a", "v": 0}), put);
        let conflict = "conflict: current version 1, expected 0, key \"inv/a\"";
        assert_eq!(again, Err(Error::Failed(conflict.into())));
        let merge = json!({"op": "merge", "key": "inv/a"});
        let out = run(json!({"m": true}), merge).unwrap();
        assert_eq!(
            out["value"],
            json!({"id": "a", "v": 0, "n": [1, 2], "m": true})
        );
        let list = run(json!(null), json!({"op": "list", "prefix": "inv/"})).unwrap();
        assert_eq!(list["docs"][0]["version"], 2);
        assert_eq!(list["next"], json!(null));

        testing::set_unavailable(Some("db down"));
        let get = run(json!(null), json!({"op": "get", "key": "inv/a"}));
        let down = "store unavailable (get \"inv/a\"): db down";
        assert_eq!(get, Err(Error::Failed(down.into())));
        let warned = testing::logs()
            .into_iter()
            .any(|l| l.message == format!("store-doc get: {down}"));
        assert!(warned, "{:?}", testing::logs());
    }
}
