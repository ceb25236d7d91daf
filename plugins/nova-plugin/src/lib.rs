//! Write [nova](https://github.com/nova-automation/nova) plugins in Rust.
//!
//! A nova plugin is a WebAssembly component that exports one of two
//! interfaces of the `nova:plugin@0.1` contract: a workflow **step** (JSON
//! in, JSON out) or a document **loader** (a document in, chunks out). This
//! crate holds the contract's bindings, generated once, and everything
//! around them:
//!
//! - [`Step`] and [`export_step!`], [`Loader`] and [`export_loader!`]: one
//!   trait to implement, one macro to export it ([`RawStep`] and
//!   [`export_raw_step!`] for a step that reads JSON text itself);
//! - typed input and config: any `serde::Deserialize` type; a value that
//!   does not fit is refused as `invalid-input` with the field it concerns
//!   (`config.retries: invalid type: string "3", expected u32`);
//! - [`Error`], the three ways a call can fail, as the host reports them;
//! - [`debug!`], [`info!`], [`warn!`], [`error!`]: lines in the host's log,
//!   tagged with the plugin's name and returned by `nova plugins invoke`;
//! - [`kv`], [`store`] and [`knowledge`]: the host's key-value store, its
//!   durable JSON documents and its knowledge base, typed;
//! - [`config`]: `wasi:config`, the manifest's `[config]` values and the
//!   secrets it grants;
//! - with the `http` feature, [`http`]: outbound requests through
//!   `wasi:http`, to the hosts the manifest allows;
//! - with the `testing` feature, [`testing`]: an in-memory host, so that
//!   `cargo test` runs the plugin natively, host calls included (and, with
//!   `http` too, outbound requests answered by the test).
//!
//! ```no_run
//! use nova_plugin::{Error, Step, serde::Deserialize};
//!
//! #[derive(Deserialize)]
//! #[serde(crate = "nova_plugin::serde")]
//! struct Input {
//!     name: String,
//! }
//!
//! #[derive(Deserialize, Default)]
//! #[serde(crate = "nova_plugin::serde", default, deny_unknown_fields)]
//! struct Config {
//!     greeting: Option<String>,
//! }
//!
//! struct Greet;
//!
//! impl Step for Greet {
//!     type Input = Input;
//!     type Config = Config;
//!     type Output = nova_plugin::Value;
//!     const DESCRIPTION: &'static str = "Greets input.name";
//!
//!     fn run(input: Input, config: Config) -> Result<Self::Output, Error> {
//!         let greeting = config.greeting.as_deref().unwrap_or("Hello");
//!         nova_plugin::info!("greeting {}", input.name);
//!         Ok(nova_plugin::json!({ "message": format!("{greeting}, {}!", input.name) }))
//!     }
//! }
//!
//! nova_plugin::export_step!(Greet);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` (or
//! `nova plugin build`); the component is
//! `target/wasm32-wasip2/release/<crate>.wasm`. The crate must be a
//! `cdylib`. Name and version reported to the host are the crate's own
//! (`CARGO_PKG_NAME`, `CARGO_PKG_VERSION`).

mod host;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "testing")]
pub mod testing;

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use host::{HostError, config, knowledge, kv, log, store};
pub use serde;
pub use serde_json;
pub use serde_json::{Value, json};

/// The version of the `nova:plugin` WIT package these bindings target.
pub const CONTRACT_VERSION: &str = "0.1.1";

/// The generated bindings of the contract. Reach the host through [`kv`],
/// [`store`], [`knowledge`] and [`log`] instead: they are the same calls,
/// typed, and they also run natively under [`testing`].
#[doc(hidden)]
pub mod __bindings {
    pub mod step {
        wit_bindgen::generate!({
            path: "contract",
            world: "step",
            pub_export_macro: true,
            export_macro_name: "export_step_world",
            default_bindings_module: "nova_plugin::__bindings::step",
        });
    }
    /// `wasi:config/store`: a manifest's `[config]` values and the secrets
    /// it lists.
    pub mod config {
        wit_bindgen::generate!({ path: "contract", world: "wasi:config/imports" });
    }
    pub mod loader {
        wit_bindgen::generate!({
            path: "contract",
            world: "loader",
            pub_export_macro: true,
            export_macro_name: "export_loader_world",
            default_bindings_module: "nova_plugin::__bindings::loader",
            with: {
                "nova:plugin/log@0.1.1": crate::__bindings::step::nova::plugin::log,
                "nova:plugin/types@0.1.1": crate::__bindings::step::nova::plugin::types,
            },
        });
    }
}

use __bindings::step::nova::plugin::types::PluginError;

/// Why a call failed, as the caller sees it: a workflow fails the step (and
/// retries it unless the error is `InvalidInput` or `Unsupported`);
/// `nova plugins invoke` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input or config is malformed for this plugin: the caller's
    /// mistake, not retried.
    InvalidInput(String),
    /// Well-formed, but not something this plugin handles.
    Unsupported(String),
    /// The plugin tried and failed (a host call, an upstream): may be
    /// retried.
    Failed(String),
}

impl Error {
    /// [`Error::InvalidInput`].
    pub fn invalid_input(message: impl fmt::Display) -> Self {
        Self::InvalidInput(message.to_string())
    }

    /// [`Error::Unsupported`].
    pub fn unsupported(message: impl fmt::Display) -> Self {
        Self::Unsupported(message.to_string())
    }

    /// [`Error::Failed`].
    pub fn failed(message: impl fmt::Display) -> Self {
        Self::Failed(message.to_string())
    }

    /// The message, whatever the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidInput(m) | Self::Unsupported(m) | Self::Failed(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::InvalidInput(_) => "invalid input",
            Self::Unsupported(_) => "unsupported",
            Self::Failed(_) => "failed",
        };
        write!(f, "{kind}: {}", self.message())
    }
}

impl std::error::Error for Error {}

impl From<Error> for PluginError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidInput(m) => PluginError::InvalidInput(m),
            Error::Unsupported(m) => PluginError::Unsupported(m),
            Error::Failed(m) => PluginError::Failed(m),
        }
    }
}

/// A workflow step: JSON in, JSON out. Export it with [`export_step!`].
///
/// Each call runs in a fresh instance: keep state in [`kv`] or [`store`],
/// not in statics.
pub trait Step {
    /// The step's input (the run's input or the previous step's output).
    /// [`Value`] takes any JSON; a step invoked without input gets `null`.
    type Input: DeserializeOwned;
    /// The step's `config` from the workflow (`{}` when none). [`NoConfig`]
    /// refuses any key; a struct with `#[serde(default)]` makes every key
    /// optional.
    type Config: DeserializeOwned;
    /// What the step returns, serialised to JSON.
    type Output: Serialize;
    /// One line for `nova plugins list` and the admin API.
    const DESCRIPTION: &'static str;
    /// The JSON Schema of [`Step::Config`], as text; empty (the default):
    /// none. The component carries it (custom section `nova-config-schema`),
    /// the admin listing shows it, and the host refuses a config that does
    /// not match it before calling the step: at workflow submission (400)
    /// and on invoke. Typically `include_str!("../config.schema.json")`.
    const CONFIG_SCHEMA: &'static str = "";

    /// Runs the step once.
    fn run(input: Self::Input, config: Self::Config) -> Result<Self::Output, Error>;
}

/// A workflow step on JSON text, as the host passes it: for a step that
/// parses its input itself, or passes text through unchanged (key order,
/// number spelling and all). Export it with [`export_raw_step!`]. The host
/// checks that the output is JSON.
pub trait RawStep {
    /// One line for `nova plugins list` and the admin API.
    const DESCRIPTION: &'static str;
    /// As [`Step::CONFIG_SCHEMA`].
    const CONFIG_SCHEMA: &'static str = "";

    /// Runs the step once: `input` is JSON text (`null` when none),
    /// `config` JSON text (`{}` when none); returns JSON text.
    fn run(input: &str, config: &str) -> Result<String, Error>;
}

/// A document loader: bytes in, chunks out. Export it with
/// [`export_loader!`]. A loader can only log: no kv, store or knowledge.
pub trait Loader {
    /// File extensions handled, lowercase, without the dot (`"md"`).
    const EXTENSIONS: &'static [&'static str];
    /// Media types handled (`"text/markdown"`).
    const MEDIA_TYPES: &'static [&'static str];

    /// Splits one document. `source` is its path or name.
    fn load(source: &str, bytes: &[u8]) -> Result<Vec<Chunk>, Error>;
}

/// A piece of a document, ready to be embedded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    pub text: String,
    /// Free-form pairs: `title`, `heading_path`, `section`, …
    pub metadata: Vec<(String, String)>,
}

impl Chunk {
    /// A chunk with no metadata.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            metadata: Vec::new(),
        }
    }

    /// Adds one metadata pair.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// The value of metadata `key`, the first if repeated.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A config that takes no keys: `{}` (or none) is accepted, anything else
/// is refused with the key's name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// Parses `text` as JSON into `T`; a failure names `what` and the path of
/// the field (`config.limits.max: invalid type: …`).
pub fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            what.to_string()
        } else {
            format!("{what}.{path}")
        };
        let e = e.into_inner();
        let mut message = e.to_string();
        if e.is_data() {
            // The field's path says where; the position only repeats it.
            let position = format!(" at line {} column {}", e.line(), e.column());
            if let Some(stripped) = message.strip_suffix(&position) {
                message = stripped.to_string();
            }
        }
        Error::InvalidInput(format!("{at}: {message}"))
    })?;
    de.end()
        .map_err(|e| Error::InvalidInput(format!("{what}: {e}")))?;
    Ok(value)
}

/// Serialises a step's output.
pub fn to_json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value)
        .map_err(|e| Error::Failed(format!("the output cannot be written as JSON: {e}")))
}

/// What the export macros expand to; not an API.
#[doc(hidden)]
pub mod __private {
    use super::*;
    use crate::__bindings::loader::exports::nova::plugin::document_loader as loader;
    use crate::__bindings::step::exports::nova::plugin::workflow_step as step;

    pub use crate::__bindings::step::nova::plugin::types::PluginError;

    pub fn step_info(name: &str, version: &str, description: &str) -> step::Info {
        step::Info {
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
        }
    }

    /// A step's config as the host passes it: `{}` when there is none.
    fn config_text(config: &str) -> &str {
        if config.trim().is_empty() {
            "{}"
        } else {
            config
        }
    }

    pub fn run_step<S: Step>(input: &str, config: &str) -> Result<String, Error> {
        let input: S::Input = from_json("input", input)?;
        let config: S::Config = from_json("config", config_text(config))?;
        to_json(&S::run(input, config)?)
    }

    pub fn run_raw_step<S: RawStep>(input: &str, config: &str) -> Result<String, Error> {
        S::run(input, config_text(config))
    }

    /// `text`'s bytes as an array, for the `nova-config-schema` static.
    pub const fn schema_bytes<const N: usize>(text: &str) -> [u8; N] {
        let bytes = text.as_bytes();
        let mut out = [0u8; N];
        let mut i = 0;
        while i < N {
            out[i] = bytes[i];
            i += 1;
        }
        out
    }

    pub fn loader_info<L: Loader>(name: &str, version: &str) -> loader::Info {
        loader::Info {
            name: name.to_string(),
            version: version.to_string(),
            extensions: L::EXTENSIONS.iter().map(|e| e.to_string()).collect(),
            media_types: L::MEDIA_TYPES.iter().map(|m| m.to_string()).collect(),
        }
    }

    pub fn load<L: Loader>(source: &str, bytes: &[u8]) -> Result<Vec<loader::Chunk>, Error> {
        Ok(L::load(source, bytes)?
            .into_iter()
            .map(|c| loader::Chunk {
                text: c.text,
                metadata: c.metadata,
            })
            .collect())
    }
}

/// Exports a [`Step`] as this component's `nova:plugin/workflow-step`.
/// Use it once, in a `cdylib` crate. Natively (tests) it exports nothing.
#[macro_export]
macro_rules! export_step {
    ($step:ty) => {
        $crate::__export_step!($step, $crate::Step, run_step);
    };
}

/// Exports a [`RawStep`] as this component's `nova:plugin/workflow-step`.
/// Use it once, in a `cdylib` crate. Natively (tests) it exports nothing.
#[macro_export]
macro_rules! export_raw_step {
    ($step:ty) => {
        $crate::__export_step!($step, $crate::RawStep, run_raw_step);
    };
}

/// What [`export_step!`] and [`export_raw_step!`] expand to: the step
/// `$step` of trait `$kind`, run by `__private::$run`.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_step {
    ($step:ty, $kind:path, $run:ident) => {
        #[doc(hidden)]
        #[allow(dead_code)]
        struct __NovaStep;

        impl $crate::__bindings::step::exports::nova::plugin::workflow_step::Guest for __NovaStep {
            fn describe() -> $crate::__bindings::step::exports::nova::plugin::workflow_step::Info {
                $crate::__private::step_info(
                    ::core::env!("CARGO_PKG_NAME"),
                    ::core::env!("CARGO_PKG_VERSION"),
                    <$step as $kind>::DESCRIPTION,
                )
            }

            fn run(
                input: ::std::string::String,
                config: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, $crate::__private::PluginError> {
                $crate::__private::$run::<$step>(&input, &config)
                    .map_err(::core::convert::Into::into)
            }
        }

        // Natively the export is compiled out; this keeps the step "used".
        const _: () = {
            let _ = $crate::__private::$run::<$step>;
        };

        // The config schema, in a custom section the host reads before it
        // compiles the component (empty: none).
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            const SCHEMA: &str = <$step as $kind>::CONFIG_SCHEMA;
            #[unsafe(link_section = "nova-config-schema")]
            #[used]
            static __NOVA_CONFIG_SCHEMA: [u8; SCHEMA.len()] =
                $crate::__private::schema_bytes::<{ SCHEMA.len() }>(SCHEMA);
        };

        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::step::export_step_world!(__NovaStep with_types_in $crate::__bindings::step);
    };
}

/// Exports a [`Loader`] as this component's `nova:plugin/document-loader`.
/// Use it once, in a `cdylib` crate. Natively (tests) it exports nothing.
#[macro_export]
macro_rules! export_loader {
    ($loader:ty) => {
        #[doc(hidden)]
        #[allow(dead_code)]
        struct __NovaLoader;

        impl $crate::__bindings::loader::exports::nova::plugin::document_loader::Guest for __NovaLoader {
            fn describe() -> $crate::__bindings::loader::exports::nova::plugin::document_loader::Info {
                $crate::__private::loader_info::<$loader>(
                    ::core::env!("CARGO_PKG_NAME"),
                    ::core::env!("CARGO_PKG_VERSION"),
                )
            }

            fn load(
                source: ::std::string::String,
                bytes: ::std::vec::Vec<u8>,
            ) -> ::core::result::Result<
                ::std::vec::Vec<$crate::__bindings::loader::exports::nova::plugin::document_loader::Chunk>,
                $crate::__private::PluginError,
            > {
                $crate::__private::load::<$loader>(&source, &bytes).map_err(::core::convert::Into::into)
            }
        }

        const _: () = {
            let _ = $crate::__private::load::<$loader>;
        };

        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::loader::export_loader_world!(__NovaLoader with_types_in $crate::__bindings::loader);
    };
}

/// A line at `debug` level in the host's log (hidden unless the host logs
/// debug for plugins); `format!` syntax.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

/// A line at `info` level in the host's log; `format!` syntax.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

/// A line at `warn` level in the host's log; `format!` syntax.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

/// A line at `error` level in the host's log; `format!` syntax.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::write($crate::log::Level::Error, &::std::format!($($arg)+)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Config {
        retries: u32,
        nested: Option<Nested>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        max: u8,
    }

    #[test]
    fn a_bad_field_is_named() {
        let e = from_json::<Config>("config", r#"{"retries": "3"}"#).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidInput(m) if m.starts_with("config.retries: invalid type: string \"3\"")),
            "{e}"
        );
        let e =
            from_json::<Config>("config", r#"{"retries": 1, "nested": {"max": 300}}"#).unwrap_err();
        assert!(e.message().starts_with("config.nested.max: "), "{e}");
        let e = from_json::<Config>("config", "{}").unwrap_err();
        assert!(
            e.message().starts_with("config: missing field `retries`"),
            "{e}"
        );
        assert_eq!(e.message(), "config: missing field `retries`");
        let e = from_json::<Value>("input", "{} x").unwrap_err();
        assert!(e.message().starts_with("input: trailing characters"), "{e}");
    }

    #[test]
    fn no_config_refuses_keys() {
        assert_eq!(from_json::<NoConfig>("config", "{}"), Ok(NoConfig {}));
        let e = from_json::<NoConfig>("config", r#"{"x": 1}"#).unwrap_err();
        assert!(e.message().contains("unknown field `x`"), "{e}");
    }

    #[test]
    fn errors_map_to_the_contract() {
        assert!(matches!(
            PluginError::from(Error::invalid_input("x")),
            PluginError::InvalidInput(m) if m == "x"
        ));
        assert!(matches!(
            PluginError::from(Error::unsupported("u")),
            PluginError::Unsupported(_)
        ));
        assert!(matches!(
            PluginError::from(Error::failed("f")),
            PluginError::Failed(_)
        ));
        assert_eq!(Error::failed("boom").to_string(), "failed: boom");
    }
}

/// The SDK's calls against the in-memory host.
#[cfg(all(test, feature = "testing"))]
mod testing_host {
    use crate::store::{Expect, StoreError};
    use crate::testing::*;
    use crate::{Error, HostError, NoConfig, Step, Value, json, kv, store};

    #[test]
    fn config_reads_what_the_test_sets() {
        reset();
        assert_eq!(crate::config::get("model"), Ok(None));
        set_config("model", "small");
        assert_eq!(crate::config::get("model"), Ok(Some("small".into())));
        assert_eq!(
            crate::config::get_all(),
            Ok(vec![("model".into(), "small".into())])
        );
    }

    #[test]
    fn kv_keeps_and_checks() {
        reset();
        assert_eq!(kv::get("a"), Ok(None));
        kv::set("a", b"1", None).unwrap();
        assert_eq!(kv::get("a"), Ok(Some(b"1".to_vec())));
        assert_eq!(kv::delete("a"), Ok(true));
        assert_eq!(kv::delete("a"), Ok(false));
        assert!(kv::set("", b"", None).is_err());
        assert!(kv::set(&"k".repeat(513), b"", None).is_err());
        set_unavailable(Some("down"));
        assert_eq!(kv::get("a"), Err(HostError("down".into())));
    }

    #[test]
    fn store_versions_and_pages() {
        reset();
        assert_eq!(store::put("a/1", &json!({"n": 1}), Expect::Absent), Ok(1));
        assert_eq!(
            store::put("a/1", &json!({"n": 2}), Expect::Absent),
            Err(StoreError::Conflict(Some(1)))
        );
        assert_eq!(
            store::put("a/1", &json!({"n": 2}), Expect::Version(1)),
            Ok(2)
        );
        assert_eq!(
            store::put("b", &json!(0), Expect::Version(3)),
            Err(StoreError::Conflict(None))
        );
        store::put("a/2", &json!(2), Expect::Any).unwrap();
        store::put("a/3", &json!(3), Expect::Any).unwrap();
        store::put("b", &json!(0), Expect::Any).unwrap();
        let page = store::list("a/", None, 2, u32::MAX).unwrap();
        assert_eq!(
            page.docs.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(),
            ["a/1", "a/2"]
        );
        assert_eq!(page.next.as_deref(), Some("a/2"));
        let rest = store::list("a/", page.next.as_deref(), 2, u32::MAX).unwrap();
        assert_eq!(rest.docs.len(), 1);
        assert_eq!(rest.next, None);
        assert!(store::list("a/", None, 0, 1).is_err());
        assert_eq!(store::get("a/1").unwrap().unwrap().value, json!({"n": 2}));
        assert_eq!(doc("a/1"), Some((json!({"n": 2}), 2)));
    }

    #[test]
    fn knowledge_searches_fixtures() {
        reset();
        add_document("a.md", "Rust ownership and borrowing", &[]);
        add_document("b.md", "Borrowing books", &[("collection", "library")]);
        // Without a collection, `default`: b.md is elsewhere.
        let hits = crate::knowledge::search("rust borrowing", 5, &[]).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].source.as_str(), hits[0].score), ("a.md", 1.0));
        assert!(
            crate::knowledge::search("rust", 5, &[("source", "b.md")])
                .unwrap()
                .is_empty()
        );
        let lib = crate::knowledge::search("borrowing", 5, &[("collection", "library")]).unwrap();
        assert_eq!(lib.len(), 1);
        assert_eq!(lib[0].source, "b.md");
    }

    struct Echo;
    impl Step for Echo {
        type Input = Value;
        type Config = NoConfig;
        type Output = Value;
        const DESCRIPTION: &'static str = "echo";
        fn run(input: Value, _: NoConfig) -> Result<Value, Error> {
            crate::warn!("echo {input}");
            Ok(input)
        }
    }

    #[test]
    fn runs_a_step_and_captures_logs() {
        reset();
        assert_eq!(run::<Echo>(json!({"a": 1}), json!({})), Ok(json!({"a": 1})));
        assert_eq!(
            logs(),
            [LogLine {
                level: "warn",
                message: r#"echo {"a":1}"#.into()
            }]
        );
        let e = run::<Echo>(json!(1), json!({"nope": true})).unwrap_err();
        assert!(matches!(&e, Error::InvalidInput(m) if m.contains("unknown field `nope`")));
        assert_eq!(run_json::<Echo>("[1]", ""), Ok(json!([1])));
    }
}
