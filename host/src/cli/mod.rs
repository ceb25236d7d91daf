//! The client verbs of the `nova` command: `submit`, `runs`, `defs`,
//! `run`, `run-code`, `ingest`, `query`, `collections`, `docs`, `plugins`,
//! `keys` and `health`, over the host's HTTP API through `nova-client`.
//!
//! Exit codes: 0 on success; 1 when the server reported a failure (an
//! error answer, or with `--wait` a run that ended `failed` or `cancelled`,
//! or was still unfinished when the wait ran out); 2 for bad usage, an
//! unreadable file, a file that is not JSON, or a server that cannot be
//! reached.

pub mod output;
pub mod plugin;

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use nova_client::{
    Answer, Client, CollectionSettings, Document, Error as ClientError, Invoke, ListRuns, NewKey,
    Query, RawJson, Reload, RunStatus, SearchMode, StartRun, Submitted,
};
use serde_json::Value;

/// Where the host is, how to talk to it, and how to print its answers.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// Base URL of the nova host.
    #[arg(long, env = "NOVA_URL", default_value = nova_client::DEFAULT_URL)]
    pub url: String,
    /// An API key with the scopes the verb needs (`nova keys create`).
    #[arg(long, env = "NOVA_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The host's admin token, which holds every scope; used when no API
    /// key is given.
    #[arg(long, env = "NOVA_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds one request may take before it is given up (a `--wait`
    /// request gets its hold on top) [default: 30; `plugins upload`: 600,
    /// as a large component compiles for a while].
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<f64>,
    /// Print the server's JSON answer as is, instead of a summary.
    #[arg(long)]
    pub json: bool,
}

impl Remote {
    fn client(&self) -> Result<Client, ClientError> {
        self.client_within(DEFAULT_TIMEOUT_S)
    }

    /// A client whose requests may take `default` seconds unless
    /// `--timeout` says otherwise.
    fn client_within(&self, default: f64) -> Result<Client, ClientError> {
        let timeout = self.timeout.unwrap_or(default);
        let mut builder = Client::builder(&self.url).timeout(Duration::from_secs_f64(timeout));
        let credential = self
            .api_key
            .as_ref()
            .filter(|k| !k.is_empty())
            .or(self.token.as_ref());
        if let Some(credential) = credential {
            builder = builder.token(credential);
        }
        builder.build()
    }
}

/// Seconds a request may take unless `--timeout` says otherwise.
const DEFAULT_TIMEOUT_S: f64 = 30.0;
/// The same for `plugins upload`, which answers after the compile.
const UPLOAD_TIMEOUT_S: f64 = 600.0;

/// `nova submit FILE.json [--wait[=SECONDS]]`
#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// The workflow, as JSON: {"steps": [{"plugin", "config"?, "timeout_ms"?,
    /// "retries"?}], "input"?, "idempotency_key"?}. `-` reads standard input.
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,
    #[command(flatten)]
    pub wait: WaitArg,
    #[command(flatten)]
    pub remote: Remote,
}

/// How long `--wait` waits: absent, no wait; `--wait`, 60 s.
#[derive(Args, Debug)]
pub struct WaitArg {
    /// Wait for the run to finish, up to SECONDS (default 60), then print it
    /// as `runs show` does. Exits 1 if it failed, was cancelled, or is still
    /// unfinished when the time runs out.
    #[arg(
        long,
        value_name = "SECONDS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "60",
        value_parser = parse_seconds,
    )]
    pub wait: Option<f64>,
}

/// `nova defs …`
#[derive(Args, Debug)]
pub struct DefsArgs {
    #[command(subcommand)]
    pub command: DefsCommand,
}

#[derive(Subcommand, Debug)]
pub enum DefsCommand {
    /// Save a definition from a YAML or JSON file as a new version of it.
    Apply {
        /// The definition: {"steps": [...], "output"?, "max_parallel"?,
        /// "description"?}, as YAML (.yaml, .yml) or JSON. `-` reads
        /// standard input (as YAML, which JSON also is).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Its name [default: the file's name without its extension].
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the saved definitions, each at its latest version.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a definition: its latest version, or --version.
    Show {
        name: String,
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a definition (every version; its runs stay).
    Rm {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `nova run NAME [--input JSON] [--wait[=SECONDS]]`
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The saved definition to run.
    pub name: String,
    /// The run's input, as JSON [default: null].
    #[arg(long, value_name = "JSON")]
    pub input: Option<String>,
    /// The version to run [default: the latest].
    #[arg(long)]
    pub version: Option<u32>,
    /// A second run with the same key returns the first instead.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub wait: WaitArg,
    #[command(flatten)]
    pub remote: Remote,
}

/// `nova runs …`
#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: RunsCommand,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// Show one run: its state and a table of its steps.
    Show {
        /// The run's id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List runs, newest first, one page at a time.
    List {
        /// Only runs in this state.
        #[arg(long, value_parser = ["queued", "running", "succeeded", "failed", "cancelled"])]
        status: Option<String>,
        /// Only runs of this saved definition.
        #[arg(long)]
        definition: Option<String>,
        /// Runs per page, 1 to 100 [server default: 20].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: Option<u32>,
        /// Continue after this run: the `next cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Cancel a queued or running run, and show it.
    Cancel {
        /// The run's id.
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resume a failed or cancelled run from its unfinished steps (finished
    /// steps keep their outputs).
    Retry {
        /// The run's id.
        id: String,
        #[command(flatten)]
        wait: WaitArg,
        #[command(flatten)]
        remote: Remote,
    },
    /// Start a new run with the same steps, definition version and input.
    Rerun {
        /// The run to repeat.
        id: String,
        #[command(flatten)]
        wait: WaitArg,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `nova ingest [DIR] [--collection C]`
#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Directory to ingest, on the host's file system. Without it, every
    /// configured directory is ingested again.
    pub dir: Option<PathBuf>,
    /// Collection to ingest into [default: the one configured for DIR, or
    /// one named after DIR].
    #[arg(long)]
    pub collection: Option<String>,
    /// Start the ingest and return at once, without progress.
    #[arg(long)]
    pub detach: bool,
    #[command(flatten)]
    pub remote: Remote,
}

/// `nova query TEXT [--top-k N] [--collection C]`
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The question.
    pub text: String,
    /// Results to return, 1 to 100.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub top_k: u32,
    /// Collection to search [server default: default].
    #[arg(long)]
    pub collection: Option<String>,
    /// Only chunks whose source starts with this.
    #[arg(long)]
    pub source_prefix: Option<String>,
    /// Only chunks whose metadata KEY equals VALUE, a string (repeatable).
    #[arg(long = "where", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub filters: Vec<(String, String)>,
    /// A filter as JSON, e.g. '{"year": {"gte": 2020}, "tags": {"any":
    /// ["rust", "wasm"]}, "status": {"not": "draft"}}' (merged with
    /// --where).
    #[arg(long, value_name = "JSON")]
    pub filter: Option<String>,
    /// How to rank: dense (meaning), keyword (BM25) or hybrid (both fused)
    /// [server default: hybrid].
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["dense", "keyword", "hybrid"]))]
    pub mode: Option<String>,
    #[command(flatten)]
    pub remote: Remote,
}

/// `nova collections …`
#[derive(Args, Debug)]
pub struct CollectionsArgs {
    #[command(subcommand)]
    pub command: CollectionsCommand,
}

#[derive(Subcommand, Debug)]
pub enum CollectionsCommand {
    /// Create a collection (an existing one is shown as it is).
    Create {
        /// 1 to 64 of a-z, 0-9, '-' and '_'.
        name: String,
        /// For people.
        #[arg(long)]
        description: Option<String>,
        /// Largest chunk of its uploaded documents, in model tokens.
        #[arg(long)]
        chunk_tokens: Option<u32>,
        /// Tokens consecutive chunks share.
        #[arg(long)]
        chunk_overlap: Option<u32>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the collections: documents, chunks, directory, description.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a collection's figures and settings.
    Show {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a collection and every document in it.
    Rm {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `nova docs …`
#[derive(Args, Debug)]
pub struct DocsArgs {
    #[command(subcommand)]
    pub command: DocsCommand,
}

#[derive(Subcommand, Debug)]
pub enum DocsCommand {
    /// Upload a file as a document (added, replaced, or unchanged when it
    /// is the same); the host splits it with the loader for its type.
    Put {
        /// The file.
        file: PathBuf,
        /// Its id in the collection [default: the file's name].
        #[arg(long)]
        id: Option<String>,
        #[arg(long, default_value = "default")]
        collection: String,
        /// Its media type [default: from its extension: text/markdown,
        /// text/html, application/pdf, text/plain…].
        #[arg(long = "type", value_name = "MEDIA_TYPE")]
        media_type: Option<String>,
        /// A loader plugin to use instead of the one its type picks.
        #[arg(long)]
        loader: Option<String>,
        /// Its metadata, a JSON object: '{"team": "infra", "year": 2024}'.
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List a collection's documents, a page at a time (sorted by id within a page).
    List {
        #[arg(long, default_value = "default")]
        collection: String,
        /// The cursor `more after` printed for the page before.
        #[arg(long)]
        after: Option<String>,
        /// Documents on the page, 1 to 1000.
        #[arg(long)]
        limit: Option<u32>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a document: hash, loader, chunks, metadata.
    Show {
        id: String,
        #[arg(long, default_value = "default")]
        collection: String,
        /// Print its chunks too.
        #[arg(long)]
        chunks: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a document.
    Rm {
        id: String,
        #[arg(long, default_value = "default")]
        collection: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `nova plugins …` (admin: needs the token)
#[derive(Args, Debug)]
pub struct PluginsArgs {
    #[command(subcommand)]
    pub command: PluginsCommand,
}

#[derive(Subcommand, Debug)]
pub enum PluginsCommand {
    /// List every plugin: kind, version, status, calls, failures, median
    /// duration and the start of its SHA-256.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show one plugin's listing entry: limits, grants, stats, errors.
    Show {
        /// The plugin's name.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Rescan the host's plugin directory, and show what changed per name.
    Reload {
        #[command(flatten)]
        remote: Remote,
    },
    /// Upload a component as plugin NAME (created, or replacing the
    /// serving version once the new one works).
    Upload {
        /// The plugin's name: lowercase letters, digits, `-` and `_`.
        name: String,
        /// The component. `-` reads standard input.
        #[arg(value_name = "FILE.wasm")]
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Remove a plugin: it stops serving at once.
    Remove {
        /// The plugin's name.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run a plugin once: a step on JSON input, a loader on a document.
    Invoke {
        /// The plugin's name.
        name: String,
        /// The input: a step's JSON, or a loader's document. `-` reads
        /// standard input; without it the input is empty (`null` for a
        /// step).
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// A step's configuration, as JSON [default: {}].
        #[arg(long, value_name = "JSON")]
        config: Option<String>,
        /// A loader's document name [default: FILE as given, else
        /// `document`].
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `nova keys …` (admin)
#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make an API key and print it: it is shown this once.
    Create {
        /// Who or what holds the key.
        name: String,
        /// A scope the key holds (repeatable): runs:write, runs:read,
        /// rag:query, rag:write, plugins:invoke, metrics:read, sandbox:run,
        /// admin.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// A knowledge collection the key is held to (repeatable); others
        /// answer as if they did not exist. Every collection when absent.
        #[arg(long = "collection", value_name = "NAME")]
        collections: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the API keys: id, name, scopes, prefix, created, last used.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke an API key: every host refuses it within a second.
    Revoke {
        /// The key's id (from `nova keys list`).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `nova secrets …` (admin)
#[derive(Args, Debug)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(Subcommand, Debug)]
pub enum SecretsCommand {
    /// Set a secret from standard input (`printf %s "$KEY" | nova secrets
    /// set llm_api_key`); a trailing newline is dropped. Plugins that list
    /// it read the new value from their next call.
    Set {
        /// 1 to 128 letters, digits, `_`, `-` or `.`.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the secrets: name, when set, which plugins may read it. Never values.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete a secret.
    Rm {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `nova health`
#[derive(Args, Debug)]
pub struct HealthArgs {
    #[command(flatten)]
    pub remote: Remote,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match parse_seconds(text) {
        Ok(s) if s > 0.0 => Ok(s),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=1e9).contains(&s) => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds")),
    }
}

/// `nova run-code FILE [--input JSON]`
#[derive(Args, Debug)]
pub struct RunCodeArgs {
    /// The snippet: a `.py` (Python) or `.js`/`.mjs` (JavaScript) file, or
    /// `-` for standard input (with --language). Its result is what it
    /// assigns to `result`, or what its `main(input)` returns.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// python or javascript [default: from the file's extension].
    #[arg(long, value_name = "LANGUAGE")]
    pub language: Option<String>,
    /// The value the code sees as `input`, as JSON [default: null].
    #[arg(long, value_name = "JSON")]
    pub input: Option<String>,
    /// Wall-clock limit of the run, in milliseconds (at most the code
    /// step's own limit, which is the default).
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Memory limit of the run, in MiB (at most the code step's own).
    #[arg(long, value_name = "MIB")]
    pub memory_mb: Option<u64>,
    #[command(flatten)]
    pub remote: Remote,
}

/// Why a verb did not succeed.
enum Failure {
    /// Bad usage or unusable input: exit 2.
    Usage(String),
    /// A request failed (exit 1 or 2, by kind).
    Client(ClientError),
    /// The server reported a failure that is not an error answer: exit 1.
    Reported(String),
}

impl Failure {
    /// What went wrong, as `nova: error: …` says it.
    fn message(&self) -> String {
        match self {
            Failure::Usage(m) | Failure::Reported(m) => m.clone(),
            Failure::Client(e) => e.to_string(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

/// Runs `nova submit`.
pub fn submit(args: SubmitArgs) -> ExitCode {
    finish(block_on(submit_async(args)))
}

/// Runs `nova defs …`.
pub fn defs(args: DefsArgs) -> ExitCode {
    finish(block_on(defs_async(args)))
}

/// Runs `nova run NAME`.
pub fn run(args: RunArgs) -> ExitCode {
    finish(block_on(run_async(args)))
}

/// Runs `nova runs …`.
pub fn runs(args: RunsArgs) -> ExitCode {
    finish(block_on(runs_async(args)))
}

/// Runs `nova ingest`.
pub fn ingest(args: IngestArgs) -> ExitCode {
    finish(block_on(ingest_async(args)))
}

/// Runs `nova query`.
pub fn query(args: QueryArgs) -> ExitCode {
    finish(block_on(query_async(args)))
}

/// Runs `nova run-code`.
pub fn run_code(args: RunCodeArgs) -> ExitCode {
    finish(block_on(run_code_async(args)))
}

/// Runs `nova plugins …`.
pub fn plugins(args: PluginsArgs) -> ExitCode {
    finish(block_on(plugins_async(args)))
}

/// Runs `nova keys …`.
pub fn keys(args: KeysArgs) -> ExitCode {
    finish(block_on(keys_async(args)))
}

/// Runs `nova collections …`.
pub fn collections(args: CollectionsArgs) -> ExitCode {
    finish(block_on(collections_async(args)))
}

/// Runs `nova docs …`.
pub fn docs(args: DocsArgs) -> ExitCode {
    finish(block_on(docs_async(args)))
}

/// Runs `nova secrets …`.
pub fn secrets(args: SecretsArgs) -> ExitCode {
    finish(block_on(secrets_async(args)))
}

/// Runs `nova health`.
pub fn health(args: HealthArgs) -> ExitCode {
    finish(block_on(health_async(args)))
}

fn block_on<F: std::future::Future<Output = Result<(), Failure>>>(
    future: F,
) -> Result<(), Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Reported(format!("cannot start the async runtime: {e}")))?
        .block_on(future)
}

fn finish(result: Result<(), Failure>) -> ExitCode {
    let (message, code) = match result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => (m, 2),
        Err(Failure::Client(e)) => (e.to_string(), e.exit_code()),
        Err(Failure::Reported(m)) => (m, 1),
    };
    let _ = writeln!(std::io::stderr().lock(), "nova: error: {message}");
    ExitCode::from(code)
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// `--json`: the server's answer as it sent it; otherwise the summary.
fn show<T>(answer: &Answer<T>, json: bool, human: impl FnOnce(&T) -> String) {
    if json {
        print(&format!("{}\n", answer.raw));
    } else {
        print(&human(&answer.value));
    }
}

/// A note for people on stderr; `--json` keeps quiet so that scripts see
/// only the answer.
fn note(json: bool, text: &str) {
    if !json {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

/// The bytes of `file`, or of standard input for `-`.
fn read_input(file: &Path) -> Result<Vec<u8>, Failure> {
    if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
        Ok(bytes)
    } else {
        std::fs::read(file)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))
    }
}

fn read_json(file: &Path) -> Result<Value, Failure> {
    let bytes = read_input(file)?;
    let name = if file.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| Failure::Usage(format!("{name} is not valid JSON: {e}")))
}

/// A spinner on stderr for work without a measure of progress (it stays
/// hidden when stderr is not a terminal, or with `--json`).
fn spinner(json: bool, message: String) -> indicatif::ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

async fn submit_async(args: SubmitArgs) -> Result<(), Failure> {
    let workflow = read_json(&args.file)?;
    let client = args.remote.client()?;
    let json = args.remote.json;
    let submitted = client.submit(&workflow).await?;
    follow(&client, submitted, args.wait.wait, json).await
}

/// Prints a submitted run; with `wait`, waits for it to finish, prints it,
/// and fails unless it succeeded.
async fn follow(
    client: &Client,
    submitted: Answer<Submitted>,
    wait: Option<f64>,
    json: bool,
) -> Result<(), Failure> {
    let id = submitted.value.id.clone();
    let status = submitted.value.status;
    let again = if submitted.value.created {
        ""
    } else {
        " (the existing run of this idempotency key)"
    };
    let Some(secs) = wait else {
        show(&submitted, json, |_| format!("run {id} {status}{again}\n"));
        return Ok(());
    };
    note(
        json,
        &format!("run {id} {status}{again}; waiting up to {secs} s"),
    );
    let bar = spinner(json, format!("run {id}"));
    let run = client.wait(&id, Duration::from_secs_f64(secs)).await;
    bar.finish_and_clear();
    let run = run?;
    show(&run, json, output::run);
    match run.value.status {
        RunStatus::Succeeded => Ok(()),
        status @ (RunStatus::Failed | RunStatus::Cancelled) => {
            Err(Failure::Reported(match &run.value.error {
                Some(error) => format!("run {id} {status}: {error}"),
                None => format!("run {id} {status}"),
            }))
        }
        status => Err(Failure::Reported(format!(
            "run {id} is still {status} after {secs} s"
        ))),
    }
}

async fn defs_async(args: DefsArgs) -> Result<(), Failure> {
    match args.command {
        DefsCommand::Apply { file, name, remote } => {
            let name = match name {
                Some(name) => name,
                None => file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .filter(|s| *s != "-")
                    .map(str::to_owned)
                    .ok_or_else(|| Failure::Usage("name the definition with --name".to_owned()))?,
            };
            let json_file = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let text = read_input(&file)?;
            let saved = remote
                .client()?
                .definition_save_text(&name, text, !json_file)
                .await?;
            show(&saved, remote.json, |s| {
                format!("definition {} version {}\n", s.name, s.version)
            });
        }
        DefsCommand::List { remote } => {
            let list = remote.client()?.definitions().await?;
            show(&list, remote.json, output::definitions);
        }
        DefsCommand::Show {
            name,
            version,
            remote,
        } => {
            let info = remote.client()?.definition(&name, version).await?;
            show(&info, remote.json, output::definition);
        }
        DefsCommand::Rm { name, remote } => {
            remote.client()?.definition_delete(&name).await?;
            note(remote.json, &format!("definition {name} deleted"));
        }
    }
    Ok(())
}

async fn run_async(args: RunArgs) -> Result<(), Failure> {
    let input = args
        .input
        .map(|text| {
            RawJson::parse(text).map_err(|e| Failure::Usage(format!("--input is not JSON: {e}")))
        })
        .transpose()?;
    let client = args.remote.client()?;
    let start = StartRun {
        input,
        idempotency_key: args.idempotency_key,
        version: args.version,
    };
    let submitted = client.run_definition(&args.name, &start).await?;
    follow(&client, submitted, args.wait.wait, args.remote.json).await
}

async fn runs_async(args: RunsArgs) -> Result<(), Failure> {
    match args.command {
        RunsCommand::Show { id, remote } => {
            let run = remote.client()?.run(&id).await?;
            show(&run, remote.json, output::run);
        }
        RunsCommand::List {
            status,
            definition,
            limit,
            cursor,
            remote,
        } => {
            let status = status
                .map(|s| serde_json::from_value::<RunStatus>(Value::String(s)))
                .transpose()
                .map_err(|e| Failure::Usage(e.to_string()))?;
            let which = ListRuns {
                status,
                definition,
                limit,
                cursor,
                ..ListRuns::default()
            };
            let page = remote.client()?.list(&which).await?;
            show(&page, remote.json, output::list);
        }
        RunsCommand::Cancel { id, remote } => {
            let run = remote.client()?.cancel(&id).await?;
            show(&run, remote.json, output::run);
        }
        RunsCommand::Retry { id, wait, remote } => {
            let client = remote.client()?;
            let run = client.retry(&id).await?;
            let submitted = Answer {
                value: Submitted {
                    id: run.value.id.clone(),
                    status: run.value.status,
                    created: true,
                },
                raw: run.raw,
                status: run.status,
                attempts: run.attempts,
            };
            follow(&client, submitted, wait.wait, remote.json).await?;
        }
        RunsCommand::Rerun { id, wait, remote } => {
            let client = remote.client()?;
            let submitted = client.rerun(&id).await?;
            follow(&client, submitted, wait.wait, remote.json).await?;
        }
    }
    Ok(())
}

async fn query_async(args: QueryArgs) -> Result<(), Failure> {
    let client = args.remote.client()?;
    let mut query = Query::new(args.text);
    query.top_k = Some(args.top_k);
    query.collection = args.collection;
    if let Some(text) = &args.filter {
        query.filter = serde_json::from_str(text)
            .map_err(|e| Failure::Usage(format!("--filter: a JSON object: {e}")))?;
    }
    if let Some(prefix) = args.source_prefix {
        query
            .filter
            .insert("source_prefix".into(), Value::String(prefix));
    }
    query
        .filter
        .extend(args.filters.into_iter().map(|(k, v)| (k, Value::String(v))));
    query.mode = args
        .mode
        .as_deref()
        .map(str::parse::<SearchMode>)
        .transpose()
        .map_err(Failure::Usage)?;
    let answer = client.rag_query(&query).await?;
    show(&answer, args.remote.json, output::hits);
    Ok(())
}

async fn run_code_async(args: RunCodeArgs) -> Result<(), Failure> {
    use nova_client::{CodeLanguage, SandboxRun};
    let language = match args.language.as_deref() {
        Some(name) => CodeLanguage::of_plugin(name).ok_or_else(|| {
            Failure::Usage(format!("--language {name:?}: use python or javascript"))
        })?,
        None => match args.file.extension().and_then(|e| e.to_str()) {
            Some("py") => CodeLanguage::Python,
            Some("js" | "mjs" | "cjs") => CodeLanguage::Javascript,
            _ => {
                return Err(Failure::Usage(format!(
                    "cannot tell the language of {}: name it .py or .js, or give --language",
                    args.file.display()
                )));
            }
        },
    };
    let code = String::from_utf8(read_input(&args.file)?)
        .map_err(|_| Failure::Usage(format!("{} is not UTF-8 text", args.file.display())))?;
    let input = args
        .input
        .as_deref()
        .map(RawJson::parse)
        .transpose()
        .map_err(|e| Failure::Usage(format!("--input is not JSON: {e}")))?;
    let run = SandboxRun {
        language,
        code,
        input,
        timeout_ms: args.timeout_ms,
        memory_mb: args.memory_mb,
        capture_bytes: None,
    };
    let client = args.remote.client()?;
    let answer = client.sandbox_run(&run).await?;
    // What the code printed, as it printed it; then its result.
    show(&answer, args.remote.json, |done| {
        let _ = std::io::stderr().lock().write_all(done.stderr.as_bytes());
        match done.error {
            None => format!("{}{}\n", done.stdout, done.result.get()),
            Some(_) => done.stdout.clone(),
        }
    });
    match &answer.value.error {
        None => Ok(()),
        Some(error) => Err(Failure::Reported(error.to_string())),
    }
}

async fn ingest_async(args: IngestArgs) -> Result<(), Failure> {
    let client = args.remote.client()?;
    let json = args.remote.json;
    let mut reload = Reload {
        collection: args.collection,
        dir: None,
    };
    if let Some(dir) = args.dir {
        // The host reads the directory: send it absolute.
        let dir = std::path::absolute(&dir)
            .map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))?;
        reload.dir = Some(dir.display().to_string());
    }
    let started = client.rag_reload(&reload).await?;
    let id = started.value.id.clone();
    if args.detach {
        show(&started, json, |_| format!("ingest {id} started\n"));
        return Ok(());
    }
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} files, {msg} ({elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix("ingesting");
    let progress = loop {
        let progress = client.rag_ingest(&id).await;
        let progress = match progress {
            Ok(p) => p,
            Err(e) => {
                bar.finish_and_clear();
                return Err(e.into());
            }
        };
        if let Some(report) = &progress.value.report {
            bar.set_length(report.files_total);
            bar.set_position(report.files_done);
            bar.set_message(format!("{} chunks embedded", report.chunks_embedded));
        }
        if progress.value.is_finished() {
            break progress;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    let report = progress.value.report.clone().unwrap_or_default();
    show(&progress, json, |_| output::ingest(&report));
    match &report.error {
        Some(error) => Err(Failure::Reported(format!("ingest {id} failed: {error}"))),
        None => Ok(()),
    }
}

async fn plugins_async(args: PluginsArgs) -> Result<(), Failure> {
    match args.command {
        PluginsCommand::List { remote } => {
            let listing = remote.client()?.plugins_list().await?;
            show(&listing, remote.json, |l| output::plugins(&l.plugins));
        }
        PluginsCommand::Show { name, remote } => {
            let entry = remote.client()?.plugin_show(&name).await?;
            show(&entry, remote.json, output::plugin);
        }
        PluginsCommand::Reload { remote } => {
            let reloaded = remote.client()?.plugins_reload().await?;
            show(&reloaded, remote.json, output::reloaded);
        }
        PluginsCommand::Upload { name, file, remote } => {
            let wasm = read_input(&file)?;
            // The host answers once the component is compiled and
            // described: for an interpreter's component, tens of seconds.
            let client = remote.client_within(UPLOAD_TIMEOUT_S)?;
            let bar = spinner(
                remote.json,
                format!("uploading {name} ({} bytes), compiling", wasm.len()),
            );
            let uploaded = client.plugin_upload(&name, wasm).await;
            bar.finish_and_clear();
            let uploaded = uploaded.map_err(|e| match e {
                ClientError::Unreachable { reason, .. } if reason.contains("timed out") => {
                    Failure::Reported(format!(
                        "no answer from {} within {} s: the host may still be compiling {name} \
                         (`nova plugins show {name}` tells); give it longer with --timeout",
                        remote.url,
                        remote.timeout.unwrap_or(UPLOAD_TIMEOUT_S)
                    ))
                }
                other => Failure::from(other),
            })?;
            show(&uploaded, remote.json, |u| {
                format!(
                    "plugin {} {} {} ({} {})\n",
                    u.plugin.name,
                    u.plugin.version.as_deref().unwrap_or("-"),
                    if u.created { "created" } else { "replaced" },
                    u.plugin.kind.map_or("-", |k| k.as_str()),
                    u.plugin
                        .sha256
                        .as_deref()
                        .map_or_else(String::new, |h| format!(
                            "sha256 {}",
                            h.chars().take(12).collect::<String>()
                        )),
                )
            });
        }
        PluginsCommand::Remove { name, remote } => {
            let removed = remote.client()?.plugin_remove(&name).await?;
            show(&removed, remote.json, |r| {
                format!("plugin {} removed\n", r.removed)
            });
        }
        PluginsCommand::Invoke {
            name,
            file,
            config,
            source,
            remote,
        } => {
            let config = config
                .map(|c| {
                    serde_json::from_str::<Value>(&c)
                        .map_err(|e| Failure::Usage(format!("--config is not valid JSON: {e}")))
                })
                .transpose()?;
            let body = match &file {
                Some(file) => read_input(file)?,
                None => Vec::new(),
            };
            let source = source.or_else(|| {
                file.as_ref()
                    .filter(|f| f.as_os_str() != "-")
                    .map(|f| f.display().to_string())
            });
            let invoked = remote
                .client()?
                .plugin_invoke(&name, body, &Invoke { config, source })
                .await?;
            show(&invoked, remote.json, output::invocation);
            // The plugin's own log lines, for people, on stderr.
            let logs = output::invocation_logs(&invoked.value);
            if !logs.is_empty() {
                note(remote.json, logs.trim_end());
            }
        }
    }
    Ok(())
}

async fn health_async(args: HealthArgs) -> Result<(), Failure> {
    let health = args.remote.client()?.health().await?;
    show(&health, args.remote.json, output::health);
    if health.value.is_ok() {
        Ok(())
    } else {
        Err(Failure::Reported(format!(
            "the host is {} (not ready: {})",
            health.value.status,
            health.value.failing().join(", ")
        )))
    }
}

async fn secrets_async(args: SecretsArgs) -> Result<(), Failure> {
    match args.command {
        SecretsCommand::Set { name, remote } => {
            let mut value = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut value)
                .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
            // `echo value | nova secrets set` should not store the newline.
            let value = value
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&value);
            if value.is_empty() {
                return Err(Failure::Usage(
                    "no value on standard input: pipe the secret in".into(),
                ));
            }
            let set = remote.client()?.secret_set(&name, value).await?;
            show(&set, remote.json, |()| format!("set {name}\n"));
        }
        SecretsCommand::List { remote } => {
            let list = remote.client()?.secrets_list().await?;
            show(&list, remote.json, |l| output::secrets(&l.secrets));
        }
        SecretsCommand::Rm { name, remote } => {
            let removed = remote.client()?.secret_remove(&name).await?;
            show(&removed, remote.json, |()| format!("deleted {name}\n"));
        }
    }
    Ok(())
}

async fn collections_async(args: CollectionsArgs) -> Result<(), Failure> {
    match args.command {
        CollectionsCommand::Create {
            name,
            description,
            chunk_tokens,
            chunk_overlap,
            remote,
        } => {
            let settings = CollectionSettings {
                description,
                chunk_tokens,
                chunk_overlap,
            };
            let info = remote.client()?.collection_create(&name, &settings).await?;
            show(&info, remote.json, |c| {
                let what = if c.created { "created" } else { "exists" };
                format!("{what}\n{}", output::collection(c))
            });
        }
        CollectionsCommand::List { remote } => {
            let list = remote.client()?.collections().await?;
            show(&list, remote.json, |l| output::collections(&l.collections));
        }
        CollectionsCommand::Show { name, remote } => {
            let info = remote.client()?.collection(&name).await?;
            show(&info, remote.json, output::collection);
        }
        CollectionsCommand::Rm { name, remote } => {
            let done = remote.client()?.collection_delete(&name).await?;
            show(&done, remote.json, |_| format!("deleted {name}\n"));
        }
    }
    Ok(())
}

/// The media type of a file, from its extension.
fn media_type_of(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_string_lossy().to_lowercase();
    crate::knowledge::ingest::media_type(&ext)
}

async fn docs_async(args: DocsArgs) -> Result<(), Failure> {
    match args.command {
        DocsCommand::Put {
            file,
            id,
            collection,
            media_type,
            loader,
            metadata,
            remote,
        } => {
            let body = std::fs::read(&file)
                .map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))?;
            let id = match id {
                Some(id) => id,
                None => file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .ok_or_else(|| Failure::Usage("name the document with --id".into()))?,
            };
            let media_type = match media_type {
                Some(m) => m,
                None => media_type_of(&file)
                    .ok_or_else(|| {
                        Failure::Usage(format!(
                            "{}: cannot tell its type from its extension; give --type",
                            file.display()
                        ))
                    })?
                    .to_owned(),
            };
            let metadata = match metadata {
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| Failure::Usage(format!("--metadata: a JSON object: {e}")))?,
                None => Default::default(),
            };
            let document = Document {
                body,
                media_type,
                loader,
                metadata,
            };
            let saved = remote
                .client_within(UPLOAD_TIMEOUT_S)?
                .document_put(&collection, &id, &document)
                .await?;
            show(&saved, remote.json, output::document_saved);
        }
        DocsCommand::List {
            collection,
            after,
            limit,
            remote,
        } => {
            let page = remote
                .client()?
                .documents(&collection, after.as_deref(), limit)
                .await?;
            show(&page, remote.json, output::documents);
        }
        DocsCommand::Show {
            id,
            collection,
            chunks,
            remote,
        } => {
            let info = remote.client()?.document(&collection, &id, chunks).await?;
            show(&info, remote.json, output::document);
        }
        DocsCommand::Rm {
            id,
            collection,
            remote,
        } => {
            let done = remote.client()?.document_delete(&collection, &id).await?;
            show(&done, remote.json, |_| {
                format!("deleted {collection}/{id}\n")
            });
        }
    }
    Ok(())
}

async fn keys_async(args: KeysArgs) -> Result<(), Failure> {
    match args.command {
        KeysCommand::Create {
            name,
            scopes,
            collections,
            remote,
        } => {
            let key = NewKey {
                name,
                scopes,
                collections: (!collections.is_empty()).then_some(collections),
            };
            let created = remote.client()?.key_create_with(&key).await?;
            show(&created, remote.json, |k| {
                format!(
                    "{}\n",
                    output::fields(&[
                        ("key", k.key.clone()),
                        ("id", k.id.clone()),
                        ("name", k.name.clone()),
                        ("scopes", k.scopes.join(" ")),
                        (
                            "collections",
                            k.collections
                                .as_ref()
                                .map_or_else(|| "all".to_owned(), |c| c.join(" ")),
                        ),
                    ])
                    .trim_end()
                )
            });
            note(
                remote.json,
                "the key is shown this once: keep it now (send it as Authorization: Bearer <key>)",
            );
        }
        KeysCommand::List { remote } => {
            let keys = remote.client()?.keys_list().await?;
            show(&keys, remote.json, |list| output::keys(&list.keys));
        }
        KeysCommand::Revoke { id, remote } => {
            let revoked = remote.client()?.key_revoke(&id).await?;
            show(&revoked, remote.json, |r| {
                format!("revoked {}\n", r.revoked)
            });
        }
    }
    Ok(())
}
