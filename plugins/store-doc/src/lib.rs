//! nova's store-doc step: puts, gets, merges, lists and deletes JSON
//! documents in the host's durable store (the `store` import, namespaced
//! to this plugin by the host). `list` reads one page at a time through
//! `store.list-page` (contract 0.1.1): its output's `next` is the `after`
//! of the next page. Writes count against the plugin's store quota.
//!
//! The operations live in [`ops`], over a small `Store` trait that this
//! file implements with the import; they are unit-tested natively against
//! an in-memory store. Reference: `knowledge/integrations/store-doc.md`.

mod ops;

wit_bindgen::generate!({ path: "../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use nova::plugin::log::{Level, log};
use nova::plugin::store;

struct Component;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "Keeps JSON documents in the host store: config {\"op\": \"put\"|\"get\"|\
                          \"delete\"|\"list\"|\"merge\", \"key\": \"invoices/{$.id}\", \"value\", \
                          \"if_version\", \"prefix\", \"limit\"}; versioned, with optimistic \
                          concurrency."
                .to_string(),
        }
    }

    fn run(input: String, config: String) -> Result<String, PluginError> {
        let config = ops::parse_config(&config).map_err(into_plugin_error)?;
        log(
            Level::Debug,
            &format!(
                "store-doc {}: key {}",
                config.op.name(),
                config
                    .key
                    .as_ref()
                    .or(config.prefix.as_ref())
                    .map_or("-", |t| t.source.as_str())
            ),
        );
        ops::run(&mut HostStore, &input, &config).map_err(|e| {
            if let ops::Error::Failed(m) = &e {
                log(Level::Warn, &format!("store-doc {}: {m}", config.op.name()));
            }
            into_plugin_error(e)
        })
    }
}

/// The host's `store` import.
struct HostStore;

impl ops::Store for HostStore {
    fn get(&mut self, key: &str) -> Result<Option<ops::Doc>, ops::StoreError> {
        store::get(key).map(|d| d.map(doc)).map_err(store_error)
    }

    fn put(
        &mut self,
        key: &str,
        value: &str,
        expected: Option<u64>,
    ) -> Result<u64, ops::StoreError> {
        store::put(key, value, expected).map_err(store_error)
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
        store::list_page(prefix, after, limit, u32::MAX)
            .map(|page| (page.docs.into_iter().map(doc).collect(), page.next))
            .map_err(store_error)
    }
}

fn doc(d: store::Doc) -> ops::Doc {
    ops::Doc {
        key: d.key,
        value: d.value,
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

fn into_plugin_error(e: ops::Error) -> PluginError {
    match e {
        ops::Error::InvalidInput(m) => PluginError::InvalidInput(m),
        ops::Error::Failed(m) => PluginError::Failed(m),
    }
}

export!(Component);
