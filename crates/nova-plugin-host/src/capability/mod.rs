//! What the host lends plugins, as traits this crate owns.
//!
//! The plugin host knows no backend: it holds each capability as an
//! `Arc<dyn …>` in [`Capabilities`], and the binary that composes nova
//! supplies the implementations (Redis or in-process kv, Postgres or
//! SQLite documents, the knowledge base). A capability the host was not
//! given answers the plugin's call with an error saying so.
//!
//! Adding one is a trait in a module here, the interface's host side in
//! [`crate::contract`], and an implementation where the host is composed.

mod docs;
mod fleet;
mod http;
mod knowledge;
mod kv;
mod secrets;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

pub use docs::{Doc, DocPage, Docs};
pub use fleet::FleetSync;
pub use http::{OutboundHttp, OutboundRequest, Refusal};
pub use knowledge::{Hit, KnowledgeSearch};
pub use kv::Kv;
pub use secrets::Secrets;

/// Why a capability did not do what a plugin asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    /// The request itself was refused: a bad key, a value too large, over
    /// the plugin's quota. The message is for the plugin's author.
    #[error("{0}")]
    Invalid(String),
    /// A conditional write found another version: the one given, or none
    /// when the document does not exist.
    #[error("version conflict: the document is {}", match .0 { Some(v) => format!("at version {v}"), None => "absent".to_owned() })]
    Conflict(Option<u64>),
    /// The backend behind the capability failed, or there is none.
    #[error("{0}")]
    Unavailable(String),
}

/// The capabilities a host lends, by trait. Cheap to clone: every call's
/// sandbox holds one.
#[derive(Clone, Default)]
pub struct Capabilities(Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl Capabilities {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lends `capability` as the trait (or type) `T`; a second one of the
    /// same `T` replaces the first.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use nova_plugin_host::capability::{Capabilities, Kv};
    /// # fn lend(kv: Arc<dyn Kv>) -> Capabilities {
    /// Capabilities::new().with::<dyn Kv>(kv)
    /// # }
    /// ```
    pub fn with<T: ?Sized + Send + Sync + 'static>(mut self, capability: Arc<T>) -> Self {
        Arc::make_mut(&mut self.0).insert(TypeId::of::<T>(), Arc::new(capability));
        self
    }

    /// The `T` lent, if one was.
    pub fn get<T: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.0
            .get(&TypeId::of::<T>())
            .and_then(|c| c.downcast_ref::<Arc<T>>())
            .cloned()
    }

    /// The `T` lent, or the error a plugin sees when there is none.
    pub fn require<T: ?Sized + Send + Sync + 'static>(
        &self,
        what: &str,
    ) -> Result<Arc<T>, CapabilityError> {
        self.get::<T>().ok_or_else(|| {
            CapabilityError::Unavailable(format!("{what} is not available on this host"))
        })
    }
}
