//! `wasi:keyvalue` (`0.2.0-draft`: `store`, `atomics`, `batch`), over the
//! same [`Kv`] capability and the same per-plugin namespace as
//! `nova:plugin/kv`: a component written for Spin or wasmCloud reads and
//! writes its own keys here, and sees what the plugin wrote through `kv`.
//!
//! One bucket: `default` (as Spin's default store). Any other identifier
//! is `no-such-store`. Values and keys have the limits and quota of
//! `nova:plugin/kv`. `increment` keeps the value as decimal text. A
//! `get-many` answer holds at most `[plugins] list_bytes` of values (as a
//! `store` listing does), however often a key is named.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, Resource};

use crate::capability::{CapabilityError, Kv};
use crate::sandbox::HostState;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/wasi-keyvalue",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => super::KvTrap,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// The bucket a plugin opened: its name (only `default` opens).
pub struct Bucket;

/// The only bucket.
pub const BUCKET: &str = "default";
/// Most keys one `list-keys` page holds.
const PAGE: u32 = 1_000;
/// Most keys one batch call may name.
const MAX_BATCH: usize = 1_000;

/// A `wasi:keyvalue` error, or a trap for what the guest must not survive
/// (a resource that is not its own).
pub enum KvTrap {
    Guest(store::Error),
    Trap(wasmtime::Error),
}

impl From<wasmtime::component::ResourceTableError> for KvTrap {
    fn from(e: wasmtime::component::ResourceTableError) -> Self {
        KvTrap::Trap(e.into())
    }
}

impl From<CapabilityError> for KvTrap {
    fn from(e: CapabilityError) -> Self {
        KvTrap::Guest(store::Error::Other(e.to_string()))
    }
}

type KvResult<T> = Result<T, KvTrap>;

pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    bindings::Imports::add_to_linker::<_, HasSelf<_>>(linker, |s| s)
}

impl HostState {
    fn std_kv(&self) -> Result<Arc<dyn Kv>, KvTrap> {
        Ok(self.capabilities.require::<dyn Kv>("wasi:keyvalue")?)
    }
}

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> KvResult<Resource<Bucket>> {
        if identifier != BUCKET {
            return Err(KvTrap::Guest(store::Error::NoSuchStore));
        }
        Ok(self.table().push(Bucket)?)
    }

    fn convert_error(&mut self, err: KvTrap) -> wasmtime::Result<store::Error> {
        match err {
            KvTrap::Guest(e) => Ok(e),
            KvTrap::Trap(e) => Err(e),
        }
    }
}

impl store::HostBucket for HostState {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<Option<Vec<u8>>> {
        self.table().get(&bucket)?;
        Ok(self.std_kv()?.get(&self.plugin, &key).await?)
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> KvResult<()> {
        self.table().get(&bucket)?;
        let kv = self.std_kv()?;
        Ok(kv
            .set(&self.plugin, &key, value, None, self.kv_quota)
            .await?)
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<()> {
        self.table().get(&bucket)?;
        self.std_kv()?.delete(&self.plugin, &key).await?;
        Ok(())
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> KvResult<bool> {
        self.table().get(&bucket)?;
        Ok(self.std_kv()?.get(&self.plugin, &key).await?.is_some())
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> KvResult<store::KeyResponse> {
        self.table().get(&bucket)?;
        let (keys, cursor) = self.std_kv()?.list(&self.plugin, cursor, PAGE).await?;
        Ok(store::KeyResponse { keys, cursor })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table().delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> KvResult<u64> {
        self.table().get(&bucket)?;
        let kv = self.std_kv()?;
        Ok(kv
            .increment(&self.plugin, &key, delta, self.kv_quota)
            .await?)
    }
}

fn check_batch(len: usize) -> KvResult<()> {
    if len > MAX_BATCH {
        return Err(KvTrap::Guest(store::Error::Other(format!(
            "a batch names at most {MAX_BATCH} keys"
        ))));
    }
    Ok(())
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<Option<(String, Vec<u8>)>>> {
        self.table().get(&bucket)?;
        check_batch(keys.len())?;
        let kv = self.std_kv()?;
        let mut out = Vec::with_capacity(keys.len());
        let mut bytes = 0u64;
        for key in keys {
            let value = kv.get(&self.plugin, &key).await?;
            bytes += value.as_ref().map_or(0, |v| v.len() as u64);
            if bytes > self.list_bytes {
                return Err(KvTrap::Guest(store::Error::Other(format!(
                    "a get-many answer holds at most {} bytes of values; ask for fewer keys",
                    self.list_bytes
                ))));
            }
            out.push(value.map(|v| (key, v)));
        }
        Ok(out)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        self.table().get(&bucket)?;
        check_batch(key_values.len())?;
        let kv = self.std_kv()?;
        for (key, value) in key_values {
            kv.set(&self.plugin, &key, value, None, self.kv_quota)
                .await?;
        }
        Ok(())
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        self.table().get(&bucket)?;
        check_batch(keys.len())?;
        let kv = self.std_kv()?;
        for key in keys {
            kv.delete(&self.plugin, &key).await?;
        }
        Ok(())
    }
}
