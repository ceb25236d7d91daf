//! The plugins that serve, by name, kept in step with the plugin directory.
//!
//! A plugin `NAME` is the file `NAME.wasm` in the directory, with an
//! optional manifest `NAME.toml` beside it. A new version replaces the
//! serving one only after it compiled, linked and answered `describe()`;
//! one that fails is recorded as a rejection next to the version that keeps
//! serving.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use super::capability::{CapabilityError, FleetSync};
use super::error::LoadError;
use super::manifest::{Manifest, Protected, Rules};
use super::runtime::{Runtime, sha256_hex};
use super::{Plugin, PluginKind, PluginName};

/// What is known about one plugin name.
#[derive(Clone, Default)]
pub struct Slot {
    /// The version that serves calls, if any.
    pub active: Option<Arc<Plugin>>,
    /// The latest file that was refused, if it has not been replaced since.
    pub rejected: Option<Rejection>,
}

#[derive(Debug, Clone)]
pub struct Rejection {
    pub sha256: Option<String>,
    pub size_bytes: Option<u64>,
    pub path: PathBuf,
    pub error: String,
    pub at: SystemTime,
    /// The manifest text the rejection was made with, so that fixing only
    /// the manifest is retried.
    manifest: Option<String>,
    /// Refused for a busy pool, not for what the file is: the next sync
    /// tries it again.
    transient: bool,
}

/// What a sync of one name did: the wire type the reload answer carries.
pub use nova_client::ReloadOutcome as SyncOutcome;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no plugin named {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot write to the plugin directory: {0}")]
    Io(String),
    /// Done on this host, but the other hosts could not be told.
    #[error("{done} on this host, but not shared with the other hosts: {error}")]
    Fleet {
        done: &'static str,
        error: CapabilityError,
    },
}

pub struct Registry {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    slots: RwLock<BTreeMap<String, Slot>>,
    /// Serialises what changes the directory and the slots (writing a
    /// file, installing, removing), so two versions of one plugin are never
    /// installed out of order. Never held while a component compiles: a
    /// slow compile holds up no other upload, reload or call.
    sync: tokio::sync::Mutex<()>,
    /// Bumped whenever the set of serving loaders changes, so ingestion
    /// can run again with the new loaders.
    loaders: tokio::sync::watch::Sender<u64>,
    /// The store shared with the other hosts, when there are any.
    fleet: Option<Arc<dyn FleetSync>>,
    /// Directories no manifest may grant.
    protected: Protected,
}

/// A file read for a name: its bytes and digest.
struct Read {
    bytes: Vec<u8>,
    sha256: String,
}

impl Registry {
    pub fn new(runtime: Arc<Runtime>, dir: PathBuf) -> Self {
        Registry {
            runtime,
            dir,
            slots: RwLock::new(BTreeMap::new()),
            sync: tokio::sync::Mutex::new(()),
            loaders: tokio::sync::watch::Sender::new(0),
            fleet: None,
            protected: Protected::default(),
        }
    }

    /// Shares what the admin API uploads and removes with the other hosts
    /// of `fleet`.
    pub fn with_fleet(mut self, fleet: Option<Arc<dyn FleetSync>>) -> Self {
        self.fleet = fleet;
        self
    }

    /// Refuses manifests that grant any of `protected`.
    pub fn with_protected(mut self, protected: Protected) -> Self {
        self.protected = protected;
        self
    }

    /// Changes whenever a loader plugin is loaded, replaced or removed.
    pub fn loader_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.loaders.subscribe()
    }

    fn loaders_changed(&self, kind: Option<PluginKind>) {
        if kind == Some(PluginKind::Loader) {
            self.loaders.send_modify(|n| *n += 1);
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The serving version of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.read().get(name).and_then(|s| s.active.clone())
    }

    /// Every known name with its slot, sorted by name.
    pub fn list(&self) -> Vec<(String, Slot)> {
        self.read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Serving plugins of one kind.
    pub fn active_of_kind(&self, kind: PluginKind) -> Vec<Arc<Plugin>> {
        self.read()
            .values()
            .filter_map(|s| s.active.clone())
            .filter(|p| p.kind == kind)
            .collect()
    }

    /// Brings every name in the directory, and every name the registry
    /// knows, in step with the files.
    pub async fn rescan(&self) -> BTreeMap<String, SyncOutcome> {
        let mut names: BTreeSet<String> = self.read().keys().cloned().collect();
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    if let Some(name) = plugin_name_of(&entry.path()) {
                        names.insert(name);
                    }
                }
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot read the plugin directory")
            }
        }
        let mut outcomes = BTreeMap::new();
        for name in names {
            let outcome = self.sync_name(&name).await;
            outcomes.insert(name, outcome);
        }
        outcomes
    }

    /// Brings one name in step with its files: loads a new or changed
    /// `.wasm` or manifest, drops a removed one.
    pub async fn sync_name(&self, name: &str) -> SyncOutcome {
        // A name that is not a plugin name is recorded as refused; no path
        // is built from it.
        let name = match PluginName::new(name) {
            Ok(name) => name,
            Err(e) => return self.reject(name, &self.dir, None, None, None, e),
        };
        let wasm = name.file_in(&self.dir, "wasm");
        let file = match read_file(&wasm) {
            Ok(Some(file)) => file,
            Ok(None) => {
                // A manifest without its `.wasm` is not a plugin: nothing
                // to remove then.
                let _guard = self.sync.lock().await;
                let Some(removed) = self.write().remove(name.as_str()) else {
                    return SyncOutcome::Unchanged;
                };
                if let Some(old) = &removed.active {
                    tracing::info!(plugin = %name, version = %old.info.version, "plugin removed");
                }
                self.loaders_changed(removed.active.map(|p| p.kind));
                return SyncOutcome::Removed;
            }
            Err(e) => return self.reject(name.as_str(), &wasm, None, None, None, e),
        };
        let size = file.bytes.len() as u64;
        let manifest = match self.manifest(&name) {
            Ok(m) => m,
            Err(e) => {
                // Remember the text refused, so that fixing or deleting the
                // manifest (and nothing else) is tried again.
                let refused = refused_manifest(&name.file_in(&self.dir, "toml"));
                return self.reject(
                    name.as_str(),
                    &wasm,
                    Some(file.sha256),
                    Some(size),
                    Some(refused),
                    e,
                );
            }
        };
        let slot = self.read().get(name.as_str()).cloned().unwrap_or_default();
        if let Some(active) = &slot.active
            && active.sha256 == file.sha256
            && active.manifest == manifest
        {
            if let Some(s) = self.write().get_mut(name.as_str()) {
                s.rejected = None;
            }
            return SyncOutcome::Unchanged;
        }
        if let Some(rejected) = &slot.rejected
            && !rejected.transient
            && rejected.sha256.as_deref() == Some(file.sha256.as_str())
            && rejected.manifest == manifest.source
        {
            return SyncOutcome::Unchanged;
        }
        let manifest_source = manifest.source.clone();
        let sha256 = file.sha256.clone();
        let prepared = self
            .runtime
            .prepare(name.as_str(), &wasm, file.bytes, sha256.clone(), manifest)
            .await;
        let _guard = self.sync.lock().await;
        // Compiled without the lock: the file may have changed meanwhile
        // (an upload, a deploy). Then that change's own sync installs it.
        if read_file(&wasm).ok().flatten().map(|f| f.sha256) != Some(sha256.clone()) {
            return SyncOutcome::Unchanged;
        }
        match prepared {
            Ok(plugin) => {
                self.install(plugin);
                SyncOutcome::Loaded
            }
            Err(e) => self.reject(
                name.as_str(),
                &wasm,
                Some(sha256),
                Some(size),
                manifest_source,
                e,
            ),
        }
    }

    /// Validates `bytes` as plugin `name` and, only if it is a working
    /// plugin, writes it into the directory atomically and serves it.
    /// On a fleet, every other host then installs it too.
    pub async fn upload(&self, name: &str, bytes: Vec<u8>) -> Result<Arc<Plugin>, RegistryError> {
        let name = PluginName::new(name)?;
        let plugin = self.put(&name, bytes.clone()).await?;
        if let Some(fleet) = &self.fleet {
            fleet
                .publish(name.as_str(), &plugin.sha256, &bytes)
                .await
                .map_err(|error| RegistryError::Fleet {
                    done: "installed",
                    error,
                })?;
        }
        Ok(plugin)
    }

    /// Installs the version of `name` another host published. One this
    /// host refuses is recorded as a rejection, as a bad file is; a name
    /// that is not a plugin name is refused without a trace on disk.
    pub async fn adopt(&self, name: &str, bytes: Vec<u8>) -> Result<Arc<Plugin>, RegistryError> {
        let name = PluginName::new(name)?;
        let sha256 = sha256_hex(&bytes);
        let size = bytes.len() as u64;
        self.put(&name, bytes).await.inspect_err(|e| {
            if let RegistryError::Load(e) = e {
                let path = name.file_in(&self.dir, "wasm");
                let error = LoadError::Io {
                    path: path.display().to_string(),
                    message: format!("from the shared plugin store: {e}"),
                };
                self.reject(name.as_str(), &path, Some(sha256), Some(size), None, error);
            }
        })
    }

    /// Validates (without the lock), then writes and serves (with it).
    async fn put(&self, name: &PluginName, bytes: Vec<u8>) -> Result<Arc<Plugin>, RegistryError> {
        let manifest = self.manifest(name)?;
        let path = name.file_in(&self.dir, "wasm");
        let sha256 = sha256_hex(&bytes);
        let plugin = self
            .runtime
            .prepare(name.as_str(), &path, bytes.clone(), sha256, manifest)
            .await?;
        let _guard = self.sync.lock().await;
        // A hidden temporary name in the same directory: the watcher
        // ignores it, and the rename that publishes it is atomic.
        let tmp = self.dir.join(format!(".{name}.wasm.upload"));
        write_synced(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                RegistryError::Io(e.to_string())
            })?;
        Ok(self.install(plugin))
    }

    /// Deletes `NAME.wasm` and stops serving it. The manifest, if any, is
    /// left in place for the next upload of the same name.
    /// On a fleet, every other host removes it too.
    pub async fn remove(&self, name: &str) -> Result<(), RegistryError> {
        let Ok(checked) = PluginName::new(name) else {
            // Not a plugin name: it names no file. A refusal recorded
            // under it is forgotten.
            return self.forget(name);
        };
        let local = {
            let _guard = self.sync.lock().await;
            self.delete(&checked)
        };
        let Some(fleet) = &self.fleet else {
            return local;
        };
        match fleet.retract(checked.as_str()).await {
            // Removed elsewhere even if this host did not have it.
            Ok(true) if matches!(local, Err(RegistryError::NotFound(_))) => Ok(()),
            Ok(_) => local,
            Err(error) => local.and(Err(RegistryError::Fleet {
                done: "removed",
                error,
            })),
        }
    }

    /// Stops serving `name` because another host removed it.
    pub async fn withdraw(&self, name: &str) -> Result<(), RegistryError> {
        let Ok(checked) = PluginName::new(name) else {
            return self.forget(name);
        };
        let _guard = self.sync.lock().await;
        self.delete(&checked)
    }

    /// Drops what is recorded under a name that is not a plugin name.
    fn forget(&self, name: &str) -> Result<(), RegistryError> {
        match self.write().remove(name) {
            Some(_) => Ok(()),
            None => Err(RegistryError::NotFound(name.into())),
        }
    }

    /// Deletes the file and the slot; the caller holds `sync`.
    fn delete(&self, name: &PluginName) -> Result<(), RegistryError> {
        let removed = self.write().remove(name.as_str());
        let known = removed.is_some();
        self.loaders_changed(removed.and_then(|s| s.active).map(|p| p.kind));
        match std::fs::remove_file(name.file_in(&self.dir, "wasm")) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if known {
                    Ok(())
                } else {
                    Err(RegistryError::NotFound(name.to_string()))
                }
            }
            Err(e) => Err(RegistryError::Io(e.to_string())),
        }
    }

    fn manifest(&self, name: &PluginName) -> Result<Manifest, LoadError> {
        let rules = Rules::of(self.runtime.config(), self.protected.clone());
        Ok(Manifest::load(&name.file_in(&self.dir, "toml"), &rules)?)
    }

    fn install(&self, plugin: Plugin) -> Arc<Plugin> {
        let plugin = Arc::new(plugin);
        tracing::info!(
            plugin = %plugin.name,
            kind = plugin.kind.as_str(),
            version = %plugin.info.version,
            sha256 = %&plugin.sha256[..12],
            compile_ms = plugin.compile.ms,
            from_cache = plugin.compile.from_cache,
            "plugin loaded"
        );
        let mut slots = self.write();
        let slot = slots.entry(plugin.name.to_string()).or_default();
        slot.active = Some(plugin.clone());
        slot.rejected = None;
        drop(slots);
        self.loaders_changed(Some(plugin.kind));
        plugin
    }

    fn reject(
        &self,
        name: &str,
        path: &Path,
        sha256: Option<String>,
        size_bytes: Option<u64>,
        manifest: Option<String>,
        error: LoadError,
    ) -> SyncOutcome {
        let transient = error.is_transient();
        let error = error.to_string();
        let mut slots = self.write();
        let slot = slots.entry(name.to_owned()).or_default();
        tracing::warn!(
            plugin = %super::text::clean(name, 128),
            error = %error,
            still_serving = slot.active.as_ref().map(|p| p.info.version.as_str()),
            "plugin rejected"
        );
        slot.rejected = Some(Rejection {
            sha256,
            size_bytes,
            path: path.to_owned(),
            error,
            at: SystemTime::now(),
            manifest,
            transient,
        });
        SyncOutcome::Rejected
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Slot>> {
        // Slots are replaced whole under the lock, so a poisoned lock still
        // holds a consistent map.
        self.slots.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Slot>> {
        self.slots.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a refused manifest said, to tell a later change from it: its text,
/// or why it could not be read (never a manifest's text: it holds a NUL).
fn refused_manifest(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("\0unreadable: {e}"))
}

/// The bytes and digest of `path`; none if there is no such file.
fn read_file(path: &Path) -> Result<Option<Read>, LoadError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(Read {
            sha256: sha256_hex(&bytes),
            bytes,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LoadError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// The plugin name a file in the plugin directory stands for: `NAME` for
/// `NAME.wasm` and `NAME.toml`; none for hidden or other files.
pub fn plugin_name_of(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    if file.starts_with('.') {
        return None;
    }
    let (stem, ext) = file.rsplit_once('.')?;
    matches!(ext, "wasm" | "toml").then(|| stem.to_owned())
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::plugin_name_of;
    use std::path::Path;

    #[test]
    fn names_from_files() {
        assert_eq!(
            plugin_name_of(Path::new("/p/markdown.wasm")).as_deref(),
            Some("markdown")
        );
        assert_eq!(
            plugin_name_of(Path::new("/p/markdown.toml")).as_deref(),
            Some("markdown")
        );
        assert_eq!(plugin_name_of(Path::new("/p/.markdown.wasm.upload")), None);
        assert_eq!(plugin_name_of(Path::new("/p/README.md")), None);
        assert_eq!(plugin_name_of(Path::new("/p/noext")), None);
    }
}
