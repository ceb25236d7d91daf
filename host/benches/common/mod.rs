//! What the benchmarks that run real `nova serve` processes share.

// Each benchmark is its own crate and uses a part of this.
#![allow(dead_code)]

pub mod summary;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The admin token the benchmarks start `nova serve` with.
pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

/// An HTTP client that sends [`ADMIN_TOKEN`] with every request: every
/// route but `/health` wants a key.
pub fn client(timeout: std::time::Duration) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {ADMIN_TOKEN}"))
        .expect("a token is a header value");
    bearer.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, bearer);
    reqwest::Client::builder()
        .timeout(timeout)
        .default_headers(headers)
        .build()
        .expect("client")
}

pub fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The repository root (`host/`'s parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Where `just plugins` put the components: `NOVA_BUILD_DIR`, or `build/`.
pub fn build_dir() -> PathBuf {
    std::env::var_os("NOVA_BUILD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("build"))
}

/// `NOVA_BIN`, or the `nova` binary cargo built for the bench.
pub fn nova_bin() -> PathBuf {
    std::env::var_os("NOVA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_nova")))
}

/// The 1, 5 and 15 minute load averages, for the conditions of a figure.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The `p` quantile (0 to 1) of sorted values; NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The URL a starting `nova serve` prints on its stdout (piped), or none
/// if it exits first. Its stdout is drained afterwards, so the host never
/// blocks on a full pipe.
pub async fn listening_url(child: &mut Child) -> Option<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("nova listening on ") {
                url = Some(rest.trim().to_owned());
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        url
    })
    .await
    .expect("join")
}

/// `nova serve` on the embedded defaults, for a benchmark: a free port of
/// loopback, its data and compile cache under `dir`, plugins from
/// `plugins`, the bench's admin token, no knowledge base, nothing from the
/// caller's environment (`NOVA_CONFIG`, `DATABASE_URL`, `REDIS_URL`), and
/// stdout piped for [`listening_url`].
pub fn serve(dir: &Path, plugins: &Path) -> Command {
    let mut command = Command::new(nova_bin());
    command
        .arg("serve")
        .env("NOVA_BIND", "127.0.0.1:0")
        .env("NOVA_DATA_DIR", dir.join("data"))
        .env("NOVA_PLUGINS_DIR", plugins)
        .env("NOVA_CACHE_DIR", dir.join("cache"))
        .env("NOVA_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("NOVA_LOG", "warn")
        .env("NOVA_KNOWLEDGE", "false")
        .env_remove("NOVA_CONFIG")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped());
    command
}

/// A `nova serve` process and its URL, killed on drop.
pub struct Host {
    pub child: Child,
    pub url: String,
    pub dir: Option<tempfile::TempDir>,
}

impl Host {
    /// Spawns `command` (see [`serve`]) and waits until it listens.
    pub async fn spawn(mut command: Command, dir: Option<tempfile::TempDir>) -> Host {
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", nova_bin().display()));
        let url = listening_url(&mut child)
            .await
            .expect("nova exited before listening");
        Host { child, url, dir }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
