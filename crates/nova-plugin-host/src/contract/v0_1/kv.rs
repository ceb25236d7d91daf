//! `kv`, over the [`Kv`] capability, in the calling plugin's namespace.

use std::time::Duration;

use super::step::nova::plugin::kv;
use crate::capability::Kv;
use crate::sandbox::HostState;

impl HostState {
    fn kv(&self) -> Result<std::sync::Arc<dyn Kv>, String> {
        self.capabilities
            .require::<dyn Kv>("kv")
            .map_err(|e| e.to_string())
    }
}

impl kv::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        let kv = self.kv()?;
        kv.get(&self.plugin, &key).await.map_err(|e| e.to_string())
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: Option<u32>,
    ) -> Result<(), String> {
        let kv = self.kv()?;
        let ttl = ttl_seconds.map(|s| Duration::from_secs(s.into()));
        kv.set(&self.plugin, &key, value, ttl, self.kv_quota)
            .await
            .map_err(|e| e.to_string())
    }

    async fn delete(&mut self, key: String) -> Result<bool, String> {
        let kv = self.kv()?;
        kv.delete(&self.plugin, &key)
            .await
            .map_err(|e| e.to_string())
    }
}
