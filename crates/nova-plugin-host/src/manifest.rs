//! A plugin's manifest: the optional `<name>.toml` beside its `.wasm`.
//!
//! Nothing is granted by default. The manifest can raise or lower the
//! plugin's limits and grant it environment variables, directories, real
//! clocks and outbound network addresses.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::outbound::{AllowedHosts, HttpLimits};
use super::{Limits, Quota};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read manifest {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid manifest {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    grants: RawGrants,
    /// Plain values the plugin reads through `wasi:config/store`.
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
    max_output_bytes: Option<u64>,
    store_docs: Option<u64>,
    store_bytes: Option<u64>,
    kv_keys: Option<u64>,
    kv_bytes: Option<u64>,
    http_connect_timeout_ms: Option<u64>,
    http_first_byte_timeout_ms: Option<u64>,
    http_between_bytes_timeout_ms: Option<u64>,
    http_response_bytes: Option<u64>,
    http_concurrency: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrants {
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    inherit_env: Vec<String>,
    #[serde(default)]
    clocks: bool,
    #[serde(default)]
    network: Vec<String>,
    #[serde(default)]
    dirs: Vec<RawDir>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    knowledge: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    host: PathBuf,
    guest: String,
    #[serde(default)]
    writable: bool,
}

/// What a plugin may reach beyond its own memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Grants {
    /// Environment variables, values resolved at load time.
    #[serde(serialize_with = "env_names")]
    pub env: Vec<(String, String)>,
    /// Real wall and monotonic clocks; without this grant both read zero.
    pub clocks: bool,
    /// Addresses the plugin may connect to over TCP or UDP.
    pub network: Vec<SocketAddr>,
    pub dirs: Vec<DirGrant>,
    /// URLs the plugin may send HTTP requests to (`wasi:http`).
    pub allowed_outbound_hosts: AllowedHosts,
    /// The manifest's `[config]`: plain values read through
    /// `wasi:config/store`. Listed by name only.
    #[serde(serialize_with = "env_names")]
    pub config: Vec<(String, String)>,
    /// Names of the secrets the plugin may read through `wasi:config/store`.
    pub secrets: Vec<String>,
    /// The knowledge collections the plugin's `knowledge.search` may read
    /// (`"*"`: all); `None`: the `default` collection only.
    pub knowledge: Option<Vec<String>>,
}

/// The collection a plugin may search without a `grants.knowledge`.
pub const DEFAULT_KNOWLEDGE: &str = "default";
/// The `grants.knowledge` entry that grants every collection.
pub const ALL_KNOWLEDGE: &str = "*";

impl Grants {
    /// The collections the plugin may search (`["*"]`: all).
    pub fn knowledge(&self) -> Vec<String> {
        self.knowledge
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_KNOWLEDGE.to_owned()])
    }
}

/// Listing shows which variables are granted, never their values.
fn env_names<S: serde::Serializer>(env: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(env.iter().map(|(k, _)| k))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// A parsed and resolved manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub limits: Limits,
    pub grants: Grants,
    /// The manifest file's own content, so a changed manifest reloads the
    /// plugin even when its `.wasm` did not change.
    pub source: Option<String>,
}

/// What a manifest is checked against: the host's defaults and ceilings,
/// and the directories no grant may reach.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub defaults: Limits,
    pub max_memory_bytes: u64,
    pub max_output_bytes: u64,
    pub max_store: Quota,
    pub max_kv: Quota,
    pub max_http: HttpLimits,
    pub protected: Protected,
}

impl Rules {
    /// The rules of a runtime configured with `config`.
    pub fn of(config: &super::RuntimeConfig, protected: Protected) -> Rules {
        Rules {
            defaults: config.defaults,
            max_memory_bytes: config.max_memory_bytes,
            max_output_bytes: config.max_output_bytes,
            max_store: config.max_store,
            max_kv: config.max_kv,
            max_http: config.max_http,
            protected,
        }
    }
}

/// Directories of the host that a directory grant must keep out of.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Protected {
    /// A grant may neither lie inside one of these nor contain one: the
    /// knowledge directories (a plugin writing there could make ingest read
    /// what it links to), the compile cache (artifacts are loaded as
    /// trusted code) and the vector index.
    pub disjoint: Vec<PathBuf>,
    /// A grant may lie inside these, but not contain them: the plugin
    /// directory (holding it would install plugins) and the data directory
    /// (the SQLite store).
    pub enclosed: Vec<PathBuf>,
}

/// `path` made absolute and resolved where it exists: symlinks followed,
/// `.` and `..` folded; the missing rest is joined as written.
fn resolved(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_owned())
    };
    if let Ok(real) = absolute.canonicalize() {
        return real;
    }
    // The longest existing ancestor, resolved, and the rest after it.
    let mut existing = absolute.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = parent.to_owned();
            }
            _ => return absolute,
        }
    }
    let mut out = existing.canonicalize().unwrap_or(existing);
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    out
}

impl Protected {
    /// Why a grant of `dir` is refused, if it is.
    fn check(&self, dir: &Path) -> Result<(), String> {
        let grant = resolved(dir);
        for protected in &self.disjoint {
            let p = resolved(protected);
            if grant.starts_with(&p) || p.starts_with(&grant) {
                return Err(format!(
                    "grants.dirs host path {} overlaps {}, which plugins may not reach",
                    grant.display(),
                    p.display()
                ));
            }
        }
        for protected in &self.enclosed {
            let p = resolved(protected);
            if p.starts_with(&grant) {
                return Err(format!(
                    "grants.dirs host path {} contains {}, which plugins may not reach",
                    grant.display(),
                    p.display()
                ));
            }
        }
        Ok(())
    }
}

impl Manifest {
    /// The manifest of a plugin without a `.toml`: host defaults, no grants.
    pub fn defaults(limits: Limits) -> Self {
        Manifest {
            limits,
            grants: Grants::default(),
            source: None,
        }
    }

    /// Reads `path` if it exists. Relative directory grants resolve against
    /// the manifest's own directory.
    pub fn load(path: &Path, rules: &Rules) -> Result<Self, ManifestError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::defaults(rules.defaults));
            }
            Err(error) => {
                return Err(ManifestError::Read {
                    path: path.to_owned(),
                    error,
                });
            }
        };
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, rules).map_err(|message| ManifestError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses a manifest's text and checks it against `rules`; relative
    /// directory grants resolve against `base`. The error says what is
    /// wrong, in the manifest's terms.
    pub fn parse(text: &str, base: &Path, rules: &Rules) -> Result<Self, String> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| e.to_string())?;
        let limits = resolve_limits(raw.limits, rules)?;
        let mut grants = resolve_grants(raw.grants, base, &rules.protected)?;
        grants.config = resolve_config(raw.config, &grants.secrets)?;
        Ok(Manifest {
            limits,
            grants,
            source: Some(text.to_owned()),
        })
    }
}

/// The `http_*` limits: each between 1 and the host's maximum.
fn resolve_http(
    raw: &RawLimits,
    defaults: HttpLimits,
    max: &HttpLimits,
) -> Result<HttpLimits, String> {
    let ms = |value: Option<u64>, default: Duration, max: Duration, key: &str| match value {
        None => Ok(default.min(max)),
        Some(v) if v >= 1 && u128::from(v) <= max.as_millis() => Ok(Duration::from_millis(v)),
        Some(_) => Err(format!(
            "limits.{key} must be between 1 and the host's maximum of {}",
            max.as_millis()
        )),
    };
    let response_bytes = match raw.http_response_bytes {
        None => defaults.response_bytes.min(max.response_bytes),
        Some(v) if v >= 1 && v <= max.response_bytes => v,
        Some(_) => {
            return Err(format!(
                "limits.http_response_bytes must be between 1 and the host's maximum of {}",
                max.response_bytes
            ));
        }
    };
    let concurrency = match raw.http_concurrency {
        None => defaults.concurrency.min(max.concurrency),
        Some(v) if v >= 1 && v <= max.concurrency => v,
        Some(_) => {
            return Err(format!(
                "limits.http_concurrency must be between 1 and the host's maximum of {}",
                max.concurrency
            ));
        }
    };
    Ok(HttpLimits {
        connect_timeout: ms(
            raw.http_connect_timeout_ms,
            defaults.connect_timeout,
            max.connect_timeout,
            "http_connect_timeout_ms",
        )?,
        first_byte_timeout: ms(
            raw.http_first_byte_timeout_ms,
            defaults.first_byte_timeout,
            max.first_byte_timeout,
            "http_first_byte_timeout_ms",
        )?,
        between_bytes_timeout: ms(
            raw.http_between_bytes_timeout_ms,
            defaults.between_bytes_timeout,
            max.between_bytes_timeout,
            "http_between_bytes_timeout_ms",
        )?,
        response_bytes,
        concurrency,
    })
}

fn resolve_limits(raw: RawLimits, rules: &Rules) -> Result<Limits, String> {
    let mut limits = rules.defaults;
    let max_memory = rules.max_memory_bytes;
    if let Some(ms) = raw.timeout_ms {
        if ms == 0 || ms > crate::MAX_TIMEOUT_MS {
            return Err(format!(
                "limits.timeout_ms must be between 1 and {}",
                crate::MAX_TIMEOUT_MS
            ));
        }
        limits.timeout = Duration::from_millis(ms);
    }
    if let Some(mb) = raw.memory_mb {
        let bytes = mb.saturating_mul(1 << 20);
        if mb == 0 || bytes > max_memory {
            return Err(format!(
                "limits.memory_mb must be between 1 and the host's maximum of {} MiB",
                max_memory >> 20
            ));
        }
        limits.memory_bytes = bytes;
    }
    if let Some(bytes) = raw.max_output_bytes {
        if bytes == 0 || bytes > rules.max_output_bytes {
            return Err(format!(
                "limits.max_output_bytes must be between 1 and the host's maximum of {} \
                 (plugins.output_ceiling_bytes)",
                rules.max_output_bytes
            ));
        }
        limits.max_output_bytes = bytes;
    }
    let quota = |value: Option<u64>, default: u64, max: u64, key: &str, setting: &str| match value {
        None => Ok(default),
        Some(v) if v <= max => Ok(v),
        Some(_) => Err(format!(
            "limits.{key} must be at most the host's maximum of {max} (plugins.{setting})"
        )),
    };
    limits.store = Quota {
        items: quota(
            raw.store_docs,
            limits.store.items,
            rules.max_store.items,
            "store_docs",
            "max_store_docs",
        )?,
        bytes: quota(
            raw.store_bytes,
            limits.store.bytes,
            rules.max_store.bytes,
            "store_bytes",
            "max_store_bytes",
        )?,
    };
    limits.kv = Quota {
        items: quota(
            raw.kv_keys,
            limits.kv.items,
            rules.max_kv.items,
            "kv_keys",
            "max_kv_keys",
        )?,
        bytes: quota(
            raw.kv_bytes,
            limits.kv.bytes,
            rules.max_kv.bytes,
            "kv_bytes",
            "max_kv_bytes",
        )?,
    };
    limits.http = resolve_http(&raw, limits.http, &rules.max_http)?;
    Ok(limits)
}

/// The host's own settings, which no plugin is handed: `NOVA_*` (the admin
/// token, API keys) and the connection strings and keys of its backends.
fn is_host_credential(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    name.starts_with("NOVA_")
        || ["DATABASE_URL", "REDIS_URL", "QDRANT_URL", "QDRANT_API_KEY"].contains(&name.as_str())
}

/// Most `[config]` values, and most secrets, one manifest may name.
const MAX_CONFIG_ENTRIES: usize = 256;
/// Longest `[config]` value.
const MAX_CONFIG_VALUE: usize = 64 << 10;

/// A `wasi:config` key: 1 to 128 letters, digits, `_`, `-` and `.`.
pub fn check_config_key(key: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("a name is 1 to 128 letters, digits, '_', '-' or '.'".into())
    }
}

/// `[config]`: strings, numbers and booleans, kept as text; no key may
/// also be a secret's name (one namespace in `wasi:config`).
fn resolve_config(
    raw: BTreeMap<String, toml::Value>,
    secrets: &[String],
) -> Result<Vec<(String, String)>, String> {
    if raw.len() > MAX_CONFIG_ENTRIES {
        return Err(format!("[config] has more than {MAX_CONFIG_ENTRIES} keys"));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (key, value) in raw {
        check_config_key(&key).map_err(|why| format!("[config] key {key:?}: {why}"))?;
        if secrets.contains(&key) {
            return Err(format!(
                "[config] key {key:?} is also in grants.secrets: a plugin reads both through \
                 wasi:config, so a name is one or the other"
            ));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                return Err(format!(
                    "[config] key {key:?}: a value is a string, number or boolean"
                ));
            }
        };
        if text.len() > MAX_CONFIG_VALUE {
            return Err(format!(
                "[config] key {key:?}: a value is at most {MAX_CONFIG_VALUE} bytes"
            ));
        }
        out.push((key, text));
    }
    Ok(out)
}

fn resolve_grants(raw: RawGrants, base: &Path, protected: &Protected) -> Result<Grants, String> {
    let mut env: Vec<(String, String)> = raw.env.into_iter().collect();
    for name in raw.inherit_env {
        if is_host_credential(&name) {
            return Err(format!(
                "grants.inherit_env cannot pass {name}: the host's own settings hold its \
                 credentials (admin token, database, Redis, Qdrant); give the plugin what it \
                 needs in grants.env instead"
            ));
        }
        match std::env::var(&name) {
            Ok(value) => env.push((name, value)),
            // An absent variable is not an error: the plugin sees it unset,
            // exactly as it would on a host where it is unset.
            Err(_) => tracing::warn!(variable = %name, "granted variable is not set on the host"),
        }
    }
    let mut network = Vec::new();
    for entry in raw.network {
        let addrs = entry
            .to_socket_addrs()
            .map_err(|e| format!("grants.network entry {entry:?}: {e} (use host:port)"))?;
        network.extend(addrs);
    }
    let mut dirs = Vec::new();
    for dir in raw.dirs {
        if !dir.guest.starts_with('/') {
            return Err(format!(
                "grants.dirs guest path {:?} must be absolute",
                dir.guest
            ));
        }
        let host = if dir.host.is_absolute() {
            dir.host
        } else {
            base.join(dir.host)
        };
        if !host.is_dir() {
            return Err(format!(
                "grants.dirs host path {} is not a directory",
                host.display()
            ));
        }
        protected.check(&host)?;
        dirs.push(DirGrant {
            host,
            guest: dir.guest,
            writable: dir.writable,
        });
    }
    for name in &raw.secrets {
        check_config_key(name).map_err(|why| format!("grants.secrets entry {name:?}: {why}"))?;
    }
    if raw.secrets.len() > MAX_CONFIG_ENTRIES {
        return Err(format!(
            "grants.secrets lists more than {MAX_CONFIG_ENTRIES} names"
        ));
    }
    let mut secrets = raw.secrets;
    secrets.sort();
    secrets.dedup();
    let allowed_outbound_hosts = AllowedHosts::parse(&raw.allowed_outbound_hosts)
        .map_err(|e| format!("grants.allowed_outbound_hosts entry {e}"))?;
    if let Some(list) = &raw.knowledge {
        if list.len() > MAX_CONFIG_ENTRIES {
            return Err(format!(
                "grants.knowledge lists more than {MAX_CONFIG_ENTRIES} collections"
            ));
        }
        for name in list {
            let valid = name == ALL_KNOWLEDGE
                || ((1..=64).contains(&name.len())
                    && name.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    }));
            if !valid {
                return Err(format!(
                    "grants.knowledge entry {name:?}: a collection name (1 to 64 of a-z, 0-9, \
                     '-' and '_'), or \"*\" for all"
                ));
            }
        }
    }
    Ok(Grants {
        env,
        clocks: raw.clocks,
        network,
        dirs,
        allowed_outbound_hosts,
        config: Vec::new(),
        secrets,
        knowledge: raw.knowledge,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Limits {
        Limits {
            timeout: Duration::from_secs(10),
            memory_bytes: 128 << 20,
            max_output_bytes: 16 << 20,
            ..Limits::default()
        }
    }

    fn rules() -> Rules {
        Rules {
            defaults: defaults(),
            max_memory_bytes: 1 << 30,
            max_output_bytes: 64 << 20,
            max_store: Quota {
                items: 100,
                bytes: 1 << 20,
            },
            max_kv: Quota {
                items: 100,
                bytes: 1 << 20,
            },
            max_http: HttpLimits::maxima(),
            protected: Protected::default(),
        }
    }

    #[test]
    fn config_and_secrets_resolve() {
        let m = Manifest::parse(
            "[grants]\nsecrets = [\"llm_api_key\", \"b\", \"b\"]\n\
             [config]\nmodel = \"gpt-4o-mini\"\nretries = 3\nverbose = true\n",
            Path::new("."),
            &rules(),
        )
        .unwrap();
        assert_eq!(m.grants.secrets, ["b", "llm_api_key"]);
        assert_eq!(
            m.grants.config,
            [
                ("model".to_string(), "gpt-4o-mini".to_string()),
                ("retries".to_string(), "3".to_string()),
                ("verbose".to_string(), "true".to_string()),
            ]
        );
        let refused = |text: &str| Manifest::parse(text, Path::new("."), &rules()).unwrap_err();
        let e = refused("[grants]\nsecrets = [\"k\"]\n[config]\nk = \"v\"\n");
        assert!(e.contains("also in grants.secrets"), "{e}");
        let e = refused("[grants]\nsecrets = [\"bad name\"]\n");
        assert!(e.contains("grants.secrets"), "{e}");
        let e = refused("[config]\nk = [1, 2]\n");
        assert!(e.contains("string, number or boolean"), "{e}");
    }

    #[test]
    fn outbound_hosts_and_http_limits_resolve() {
        let m = Manifest::parse(
            "[grants]\n\
             allowed_outbound_hosts = [\"https://api.openai.com\", \"http://127.0.0.1:*\"]\n\
             [limits]\n\
             http_first_byte_timeout_ms = 2000\n\
             http_response_bytes = 1024\n\
             http_concurrency = 2\n",
            Path::new("."),
            &rules(),
        )
        .unwrap();
        let hosts: Vec<&str> = m.grants.allowed_outbound_hosts.entries().collect();
        assert_eq!(hosts, ["https://api.openai.com", "http://127.0.0.1:*"]);
        assert!(
            m.grants
                .allowed_outbound_hosts
                .check("http", "127.0.0.1", 8080)
                .is_some()
        );
        assert_eq!(m.limits.http.first_byte_timeout, Duration::from_secs(2));
        assert_eq!(
            m.limits.http.connect_timeout,
            HttpLimits::default().connect_timeout
        );
        assert_eq!(
            (m.limits.http.response_bytes, m.limits.http.concurrency),
            (1024, 2)
        );

        let refused = |text: &str| Manifest::parse(text, Path::new("."), &rules()).unwrap_err();
        let e = refused("[grants]\nallowed_outbound_hosts = [\"api.openai.com\"]\n");
        assert!(
            e.contains("allowed_outbound_hosts") && e.contains("scheme://host"),
            "{e}"
        );
        let e = refused("[limits]\nhttp_concurrency = 0\n");
        assert!(e.contains("http_concurrency"), "{e}");
        let e = refused("[limits]\nhttp_response_bytes = 1000000000000\n");
        assert!(e.contains("host's maximum"), "{e}");
    }

    #[test]
    fn empty_manifest_grants_nothing() {
        let m = Manifest::parse("", Path::new("."), &rules()).unwrap();
        assert_eq!(m.limits, defaults());
        assert_eq!(m.grants, Grants::default());
    }

    #[test]
    fn grants_and_limits_resolve() {
        let dir = std::env::temp_dir();
        let text = format!(
            "[limits]\ntimeout_ms = 500\nmemory_mb = 32\n\
             [grants]\nenv = {{ MODE = \"test\" }}\nclocks = true\n\
             network = [\"127.0.0.1:9000\"]\n\
             [[grants.dirs]]\nhost = \"{}\"\nguest = \"/data\"\n",
            dir.display()
        );
        let m = Manifest::parse(&text, Path::new("."), &rules()).unwrap();
        assert_eq!(m.limits.timeout, Duration::from_millis(500));
        assert_eq!(m.limits.memory_bytes, 32 << 20);
        assert_eq!(m.grants.env, vec![("MODE".to_string(), "test".to_string())]);
        assert!(m.grants.clocks);
        assert_eq!(m.grants.network, vec!["127.0.0.1:9000".parse().unwrap()]);
        assert_eq!(m.grants.dirs[0].guest, "/data");
        assert!(!m.grants.dirs[0].writable);
    }

    #[test]
    fn rejects_what_it_cannot_honour() {
        let too_big = "[limits]\nmemory_mb = 4096\n";
        let err = Manifest::parse(too_big, Path::new("."), &rules()).unwrap_err();
        assert!(err.contains("maximum of 1024 MiB"), "{err}");
        let unknown = "[grants]\nfilesystem = true\n";
        assert!(Manifest::parse(unknown, Path::new("."), &rules()).is_err());
        let relative_guest = "[[grants.dirs]]\nhost = \"/tmp\"\nguest = \"data\"\n";
        assert!(Manifest::parse(relative_guest, Path::new("."), &rules()).is_err());
        let missing_dir = "[[grants.dirs]]\nhost = \"/no/such/dir\"\nguest = \"/d\"\n";
        assert!(Manifest::parse(missing_dir, Path::new("."), &rules()).is_err());
        for credential in [
            "NOVA_ADMIN_TOKEN",
            "nova_api_key",
            "DATABASE_URL",
            "REDIS_URL",
        ] {
            let text = format!("[grants]\ninherit_env = [\"{credential}\"]\n");
            let err = Manifest::parse(&text, Path::new("."), &rules()).unwrap_err();
            assert!(err.contains("credentials"), "{err}");
        }
        let fine = "[grants]\ninherit_env = [\"HOME\"]\n";
        assert!(Manifest::parse(fine, Path::new("."), &rules()).is_ok());
    }

    #[test]
    fn grants_keep_out_of_the_hosts_own_directories() {
        let root = tempfile::tempdir().unwrap();
        let at = |p: &str| root.path().join(p);
        for dir in [
            "knowledge/docs",
            "data/plugins/shared",
            "cache",
            "elsewhere",
        ] {
            std::fs::create_dir_all(at(dir)).unwrap();
        }
        let rules = Rules {
            protected: Protected {
                disjoint: vec![at("knowledge"), at("cache")],
                enclosed: vec![at("data/plugins"), at("data")],
            },
            ..rules()
        };
        let grant = |dir: &Path| {
            let text = format!(
                "[[grants.dirs]]\nhost = \"{}\"\nguest = \"/d\"\nwritable = true\n",
                dir.display()
            );
            Manifest::parse(&text, Path::new("."), &rules)
        };
        // Inside a knowledge directory, or holding one: refused.
        assert!(grant(&at("knowledge")).is_err());
        assert!(grant(&at("knowledge/docs")).is_err());
        assert!(grant(root.path()).is_err());
        // Through `..` or a symlink, the same.
        assert!(grant(&at("elsewhere/../knowledge/docs")).is_err());
        std::os::unix::fs::symlink(at("knowledge"), at("elsewhere/link")).unwrap();
        let err = grant(&at("elsewhere/link")).unwrap_err();
        assert!(err.contains("overlaps"), "{err}");
        // The compile cache: refused.
        assert!(grant(&at("cache")).is_err());
        // Holding the plugin or data directory: refused; inside it: fine.
        assert!(grant(&at("data")).unwrap_err().contains("contains"));
        assert!(grant(&at("data/plugins/shared")).is_ok());
        assert!(grant(&at("elsewhere")).is_ok());
    }

    #[test]
    fn output_limits_stay_under_the_ceiling() {
        let over = "[limits]\nmax_output_bytes = 134217728\n";
        let err = Manifest::parse(over, Path::new("."), &rules()).unwrap_err();
        assert!(err.contains("output_ceiling_bytes"), "{err}");
    }

    #[test]
    fn quotas_stay_under_the_host_maxima() {
        let text = "[limits]\nstore_docs = 50\nkv_bytes = 1000\n";
        let m = Manifest::parse(text, Path::new("."), &rules()).unwrap();
        assert_eq!(m.limits.store.items, 50);
        assert_eq!(m.limits.kv.bytes, 1000);
        assert_eq!(m.limits.kv.items, defaults().kv.items);
        let err =
            Manifest::parse("[limits]\nstore_docs = 101\n", Path::new("."), &rules()).unwrap_err();
        assert!(err.contains("plugins.max_store_docs"), "{err}");
    }
}
