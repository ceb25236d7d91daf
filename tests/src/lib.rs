//! Harness for nova's end-to-end tests: starts a real `nova serve` process
//! on a free port with its own directories, and talks to it over HTTP.
//!
//! The host binary and the plugins must be built first (`just test` does
//! this); a missing one fails the test with the command that builds it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod upstream;

pub const TOKEN: &str = "test-admin-token-0123456789";

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `nova` binary: `NOVA_BIN`, or the one beside this test binary.
/// The embedding model (`just model` fetches it).
pub fn model_dir() -> PathBuf {
    let dir = root().join("models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "no embedding model at {}: run `just model`",
        dir.display()
    );
    dir
}

pub fn nova_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("NOVA_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/release/deps/<test> -> target/release/nova
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .join("nova");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p nova` (or `just test`)",
        bin.display()
    );
    bin
}

/// A shipped plugin, built by `just plugins` (the code steps `python` and
/// `javascript` by `just interpreters`).
pub fn plugin(name: &str) -> PathBuf {
    let recipe = match name {
        "python" | "javascript" => "just interpreters",
        _ => "just plugins",
    };
    built("plugins", name, recipe)
}

/// A test plugin from tests/plugins, built by `just test-plugins`.
pub fn test_plugin(name: &str) -> PathBuf {
    built("test-plugins", name, "just test-plugins")
}

/// Runs the `nova` command with `args` and `stdin` fed to it, none of the
/// caller's `NOVA_URL`, `NOVA_ADMIN_TOKEN` or `NOVA_API_KEY` but what `env`
/// sets, and its output captured.
pub fn run_nova(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(nova_bin())
        .args(args)
        .env_remove("NOVA_URL")
        .env_remove("NOVA_ADMIN_TOKEN")
        .env_remove("NOVA_API_KEY")
        .env("NOVA_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nova");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("nova output")
}

/// A test component written by hand in `tests/plugins/NAME.wat`, assembled
/// (with each block between `;; nova-test: repeat N` and `;; nova-test:
/// end` repeated N times).
pub fn wat_component(name: &str) -> Vec<u8> {
    let path = root().join("tests/plugins").join(format!("{name}.wat"));
    let text = std::fs::read_to_string(&path).expect("read the .wat");
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(times) = line.trim().strip_prefix(";; nova-test: repeat ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let times: usize = times.trim().parse().expect("a repeat count");
        let block: Vec<&str> = lines
            .by_ref()
            .take_while(|l| l.trim() != ";; nova-test: end")
            .collect();
        let block = block.join("\n");
        for _ in 0..times {
            out.push_str(&block);
            out.push('\n');
        }
    }
    wat::parse_str(&out).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn built(dir: &str, name: &str, recipe: &str) -> PathBuf {
    let path = root().join("build").join(dir).join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build it with `{recipe}`",
        path.display()
    );
    path
}

/// Compiled components are shared between test hosts, as a fleet of hosts
/// may share one: each test then measures behaviour, not compilation.
fn shared_cache_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().expect("deps dir").join("nova-test-cache")
}

/// A running `nova serve`, killed on drop.
pub struct Nova {
    child: Child,
    pub url: String,
    pub plugins_dir: PathBuf,
    /// Sends the admin token with every request.
    pub http: reqwest::Client,
    /// Sends no credentials: an anonymous caller.
    pub anon: reqwest::Client,
    /// What the host printed on stdout before it listened.
    stdout: Vec<String>,
    /// A nova-client for this host, with the admin token.
    pub client: nova_client::Client,
    _dirs: tempfile::TempDir,
}

/// Options for starting a host.
#[derive(Default)]
pub struct Options {
    /// Plugins to place in the plugin directory before start: (name, file).
    pub plugins: Vec<(String, PathBuf)>,
    /// Manifests to place beside them: (name, TOML).
    pub manifests: Vec<(String, String)>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// A plugin directory shared with other hosts, instead of a fresh one.
    pub plugins_dir: Option<PathBuf>,
    /// A data directory that outlives the host (for restarts).
    pub data_dir: Option<PathBuf>,
    /// Return once the host listens, before `/health` says ready.
    pub no_wait: bool,
    /// Write the host's log (stderr) to a file, at this level, for
    /// [`Nova::log`] to read, instead of passing it through.
    pub capture_log: Option<String>,
    /// Listen on this port of 127.0.0.1 instead of a free one.
    pub port: Option<u16>,
}

impl Options {
    pub fn plugin(mut self, name: &str, file: PathBuf) -> Self {
        self.plugins.push((name.to_owned(), file));
        self
    }

    /// `name`'s manifest (`NAME.toml`), written before the host starts.
    pub fn manifest(mut self, name: &str, toml: &str) -> Self {
        self.manifests.push((name.to_owned(), toml.to_owned()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn shared_plugins_dir(mut self, dir: &Path) -> Self {
        self.plugins_dir = Some(dir.to_owned());
        self
    }

    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Ingests `dir` into the `default` collection.
    pub fn knowledge_dir(self, dir: &Path) -> Self {
        self.env("NOVA_KNOWLEDGE_DIR", &dir.display().to_string())
    }

    /// The knowledge base on the Qdrant server at `QDRANT_URL`, under a
    /// fresh collection prefix; `None` when no server is given.
    pub fn qdrant(self) -> Option<Self> {
        let url = std::env::var("QDRANT_URL").ok().filter(|u| !u.is_empty())?;
        Some(
            self.env("QDRANT_URL", &url)
                .env("NOVA_QDRANT_PREFIX", &format!("{}_", unique("novae2e"))),
        )
    }

    /// The shipped loader plugins: markdown, text, html and pdf.
    pub fn loaders(self) -> Self {
        ["markdown", "text", "html", "pdf"]
            .into_iter()
            .fold(self, |o, name| o.plugin(name, plugin(name)))
    }

    /// The shipped code steps, `python` and `javascript`, with the
    /// manifests they ship with (`plugins/NAME/NAME.toml`).
    pub fn code_steps(self) -> Self {
        ["python", "javascript"].into_iter().fold(self, |o, name| {
            let manifest = root()
                .join("plugins")
                .join(name)
                .join(format!("{name}.toml"));
            let toml = std::fs::read_to_string(&manifest)
                .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
            o.plugin(name, plugin(name)).manifest(name, &toml)
        })
    }

    /// Listen on `port` (for a client that must know the URL before the
    /// host starts).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Keep the host's log at `level` (`debug`, `info`, …) for
    /// [`Nova::log`].
    pub fn capture_log(mut self, level: &str) -> Self {
        self.capture_log = Some(level.to_owned());
        self
    }

    /// Do not wait for `/health` to say ready.
    pub fn no_wait(mut self) -> Self {
        self.no_wait = true;
        self
    }

    /// Runs against `backend` instead of the embedded defaults.
    pub fn backend(mut self, backend: &Backend) -> Self {
        if let Backend::PostgresRedis {
            database_url,
            redis_prefix,
        } = backend
        {
            self = self
                .env("DATABASE_URL", database_url)
                .env("REDIS_URL", &redis_url())
                .env("NOVA_REDIS_PREFIX", redis_prefix);
        }
        self
    }
}

/// A unique name for this process and call, for databases and prefixes.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The Redis the tests use: `NOVA_TEST_REDIS_URL`, or the local one.
pub fn redis_url() -> String {
    std::env::var("NOVA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn postgres_admin_url() -> String {
    std::env::var("NOVA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Where a host keeps runs and moves work.
pub enum Backend {
    /// SQLite in the data directory, in-process queue.
    Embedded,
    /// A fresh Postgres database (dropped at the end) and the local Redis
    /// under a fresh key prefix.
    PostgresRedis {
        database_url: String,
        redis_prefix: String,
    },
}

impl Backend {
    /// Both backends every workflow test runs against.
    pub fn all() -> Vec<Backend> {
        vec![Backend::Embedded, Backend::postgres_redis()]
    }

    /// Creates a fresh database with `psql`. Fails loudly when Postgres or
    /// Redis is not running: these tests never skip.
    pub fn postgres_redis() -> Backend {
        let name = unique("nova_e2e");
        psql(&format!("CREATE DATABASE {name}"));
        let ping = Command::new("redis-cli")
            .args(["-u", &redis_url(), "ping"])
            .output()
            .expect("redis-cli is needed by the tests");
        assert!(
            String::from_utf8_lossy(&ping.stdout).contains("PONG"),
            "Redis is not running at {}: start it with `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no`",
            redis_url()
        );
        let base = postgres_admin_url();
        let database_url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("NOVA_TEST_DATABASE_URL must end with /DATABASE"),
        };
        Backend::PostgresRedis {
            database_url,
            redis_prefix: name,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::PostgresRedis { .. } => "postgres+redis",
        }
    }
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([&postgres_admin_url(), "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("psql is needed by the tests");
    assert!(
        out.status.success(),
        "{sql}: {} (is Postgres running? `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`)",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::PostgresRedis {
            database_url,
            redis_prefix,
        } = self
        {
            if let Some((_, name)) = database_url.rsplit_once('/') {
                let _ = Command::new("psql")
                    .args([
                        &postgres_admin_url(),
                        "-qc",
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    ])
                    .output();
            }
            let _ = Command::new("sh")
                .args([
                    "-c",
                    &format!(
                        "redis-cli -u {} --scan --pattern '{redis_prefix}:*' | xargs -r redis-cli -u {} del",
                        redis_url(),
                        redis_url()
                    ),
                ])
                .output();
        }
    }
}

impl Nova {
    pub async fn start(options: Options) -> Nova {
        let dirs = tempfile::tempdir().expect("temp dir");
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| dirs.path().join("data"));
        let plugins_dir = options
            .plugins_dir
            .clone()
            .unwrap_or_else(|| dirs.path().join("plugins"));
        std::fs::create_dir_all(&plugins_dir).expect("plugins dir");
        // An empty knowledge directory unless a test names one: ingesting
        // the repository's docs in every test host would only cost time.
        let knowledge_dir = dirs.path().join("knowledge");
        std::fs::create_dir_all(&knowledge_dir).expect("knowledge dir");
        for (name, toml) in &options.manifests {
            std::fs::write(plugins_dir.join(format!("{name}.toml")), toml).expect("write manifest");
        }
        for (name, file) in &options.plugins {
            std::fs::copy(file, plugins_dir.join(format!("{name}.wasm"))).expect("copy plugin");
        }
        let mut command = Command::new(nova_bin());
        command
            .arg("serve")
            .env(
                "NOVA_BIND",
                format!("127.0.0.1:{}", options.port.unwrap_or(0)),
            )
            .env("NOVA_DATA_DIR", &data_dir)
            .env("NOVA_PLUGINS_DIR", &plugins_dir)
            .env("NOVA_CACHE_DIR", shared_cache_dir())
            .env("NOVA_ADMIN_TOKEN", TOKEN)
            .env("NOVA_LOG", "warn")
            .env("NOVA_MODEL_DIR", model_dir())
            .env("NOVA_KNOWLEDGE_DIR", &knowledge_dir)
            .env("NOVA_RAG_RATE_LIMIT", "0")
            .env_remove("NOVA_CONFIG")
            .env_remove("NOVA_COLLECTIONS")
            .env_remove("QDRANT_URL")
            .current_dir(dirs.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let log_file = dirs.path().join("nova.log");
        if let Some(level) = &options.capture_log {
            let file = std::fs::File::create(&log_file).expect("log file");
            command.env("NOVA_LOG", level).stderr(file);
        }
        for (k, v) in &options.env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn nova");
        let stdout = child.stdout.take().expect("stdout");
        let (url, printed) = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut url = None;
            let mut printed = Vec::new();
            for line in lines.by_ref() {
                let line = line.expect("read nova stdout");
                if let Some(rest) = line.strip_prefix("nova listening on ") {
                    url = Some(rest.trim().to_owned());
                    break;
                }
                printed.push(line);
            }
            // Keep draining stdout so the host never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            (url, printed)
        })
        .await
        .expect("join");
        let url = url.expect("nova exited before listening");
        let client = nova_client::Client::builder(&url)
            .token(TOKEN)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("nova-client");
        let nova = Nova {
            child,
            url,
            plugins_dir,
            http: http_client(Some(TOKEN)),
            anon: http_client(None),
            stdout: printed,
            client,
            _dirs: dirs,
        };
        if !options.no_wait {
            nova.wait_ready().await;
        }
        nova
    }

    pub async fn wait_ready(&self) {
        match self.client.wait_ready(Duration::from_secs(120)).await {
            Ok(health) if health.value.is_ok() => {}
            Ok(health) => panic!("nova did not become ready: {}", health.raw),
            Err(e) => panic!("nova did not become ready: {e}"),
        }
    }

    /// The lines the host printed on stdout before it listened.
    pub fn stdout_lines(&self) -> &[String] {
        &self.stdout
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A request with the admin token.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(TOKEN)
    }

    /// The admin listing, each entry as the host sent it.
    pub async fn plugins(&self) -> Vec<Value> {
        let listing = self.client.plugins_list().await.expect("list plugins");
        listing.json()["plugins"]
            .as_array()
            .expect("plugins array")
            .clone()
    }

    /// The listing entry of one plugin, if present.
    pub async fn entry(&self, name: &str) -> Option<Value> {
        self.plugins().await.into_iter().find(|p| p["name"] == name)
    }

    /// Polls the listing until `check` holds for `name`'s entry.
    pub async fn wait_for(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(entry) = self.entry(name).await
                && check(&entry)
            {
                return entry;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {name}: {what}; listing: {:?}",
                self.entry(name).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Invokes a step plugin with `input` as its JSON body and `config`;
    /// returns the status and the JSON answer.
    pub async fn invoke_step(
        &self,
        name: &str,
        input: &Value,
        config: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/plugins/{name}/invoke"),
            )
            .json(input);
        if let Some(config) = config {
            request = request.query(&[("config", config.to_string())]);
        }
        let response = request.send().await.expect("invoke");
        let status = response.status().as_u16();
        (status, response.json().await.expect("invoke answers JSON"))
    }

    /// Starts a step invocation in the background: for calls that must be
    /// in flight while the test does something else.
    pub fn spawn_step(
        &self,
        name: &str,
        input: Value,
        config: Option<Value>,
    ) -> tokio::task::JoinHandle<(u16, Value)> {
        let mut request = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/plugins/{name}/invoke"),
            )
            .json(&input);
        if let Some(config) = config {
            request = request.query(&[("config", config.to_string())]);
        }
        tokio::spawn(async move {
            let response = request.send().await.expect("invoke");
            let status = response.status().as_u16();
            (status, response.json().await.expect("invoke answers JSON"))
        })
    }

    /// Invokes a loader plugin on a document.
    pub async fn invoke_loader(&self, name: &str, source: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/plugins/{name}/invoke"),
            )
            .query(&[("source", source)])
            .body(body)
            .send()
            .await
            .expect("invoke");
        let status = response.status().as_u16();
        (status, response.json().await.expect("invoke answers JSON"))
    }

    /// Replaces a plugin file atomically (write beside, then rename), as a
    /// deploy tool would.
    pub fn install(&self, name: &str, from: &Path) {
        let tmp = self.plugins_dir.join(format!(".{name}.tmp"));
        std::fs::copy(from, &tmp).expect("copy plugin");
        std::fs::rename(&tmp, self.plugins_dir.join(format!("{name}.wasm"))).expect("rename");
    }

    /// What the host logged so far ([`Options::capture_log`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dirs.path().join("nova.log")).unwrap_or_default()
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The host's resident memory now and at its peak (`VmRSS`, `VmHWM`
    /// of `/proc/PID/status`), in bytes.
    pub fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kb| kb << 10)
                .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Makes an API key with `scopes` through the admin API; a client that
    /// sends it.
    pub async fn key_client(&self, scopes: &[&str]) -> reqwest::Client {
        let key = self
            .client
            .key_create("test", scopes)
            .await
            .expect("make a key")
            .value
            .key;
        http_client(Some(&key))
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// GETs `path` and parses the JSON answer, whatever its status.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("the answer is JSON")
    }

    /// SIGKILL: no shutdown, no cleanup, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the process to exit (at most `within`,
    /// then SIGKILL); its exit status, or None if it had to be killed.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill is needed by the tests");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }

    /// Submits a workflow; returns the status and the answer.
    pub async fn submit(&self, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/workflows"))
            .json(body)
            .send()
            .await
            .expect("submit");
        let status = response.status().as_u16();
        (status, response.json().await.expect("submit answers JSON"))
    }

    /// The run, once finished (or after `secs`).
    pub async fn wait_run(&self, id: &str, secs: u32) -> Value {
        let response = self
            .http
            .get(self.url(&format!("/workflows/{id}?wait={secs}")))
            .send()
            .await
            .expect("get run");
        assert_eq!(response.status(), 200);
        response.json().await.expect("run is JSON")
    }
}

impl Drop for Nova {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that sends `token` as its bearer credential.
pub fn http_client(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .expect("a token is a header value");
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        // Under the host's 10 s idle limit: a connection it is closing is
        // never reused.
        .pool_idle_timeout(Duration::from_secs(5))
        .default_headers(headers)
        .build()
        .expect("client")
}

/// A port of 127.0.0.1 that nothing listens on (it was free a moment ago).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// SHA-256 of a file, hex, as the listing reports it.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

/// Milliseconds since the epoch of an RFC 3339 UTC timestamp with
/// milliseconds, as the API writes them (`2026-12-05T06:24:08.194Z`).
pub fn unix_ms(text: &str) -> i64 {
    let (date, time) = text.trim_end_matches('Z').split_once('T').expect("T");
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap();
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms
}

/// The `X-Nova-Signature` a webhook sender writes for `body` at `time`
/// (unix seconds): HMAC-SHA256 of `"<time>.<body>"` under `secret`.
pub fn sign_delivery(secret: &[u8], body: &[u8], time: i64) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(format!("{time}.").as_bytes());
    mac.update(body);
    format!("t={time},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The sources of a `/rag/query` answer's results, best first.
pub fn sources(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["source"].as_str().expect("source").to_owned())
        .collect()
}
