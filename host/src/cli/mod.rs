//! The client verbs of the `nova` command: `submit`, `runs show`,
//! `runs list`, `runs cancel`, `ingest` and `query`, over the host's HTTP
//! API.
//!
//! Exit codes: 0 on success; 1 when the server reported a failure (an
//! error answer, or with `--wait` a run that ended `failed` or `cancelled`,
//! or was still unfinished when the wait ran out); 2 for bad usage, an
//! unreadable file, a file that is not JSON, or a server that cannot be
//! reached.

pub mod client;
pub mod output;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::Value;

pub use client::{Answer, Client, ClientError};

/// Where the host is, and how to print its answers.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// Base URL of the nova host.
    #[arg(long, env = "NOVA_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Print the server's JSON answer as is, instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// `nova submit FILE.json [--wait[=SECONDS]]`
#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// The workflow, as JSON: {"steps": [{"plugin", "config"?, "timeout_ms"?,
    /// "retries"?}], "input"?, "idempotency_key"?}. `-` reads standard input.
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,
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
    /// The host's admin token.
    #[arg(long, env = "NOVA_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
    /// Only chunks whose metadata KEY equals VALUE (repeatable).
    #[arg(long = "where", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub filters: Vec<(String, String)>,
    #[command(flatten)]
    pub remote: Remote,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=1e9).contains(&s) => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds")),
    }
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

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

/// Runs `nova submit`.
pub fn submit(args: SubmitArgs) -> ExitCode {
    finish(block_on(submit_async(args)))
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

/// The server's answer, as it sent it.
fn print_raw(answer: &Answer) {
    print(&format!("{}\n", answer.raw));
}

fn read_workflow(file: &std::path::Path) -> Result<Value, Failure> {
    let stdin = file.as_os_str() == "-";
    let name = if stdin {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    };
    let bytes = if stdin {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::Usage(format!("cannot read {name}: {e}")))?;
        bytes
    } else {
        std::fs::read(file).map_err(|e| Failure::Usage(format!("cannot read {name}: {e}")))?
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| Failure::Usage(format!("{name} is not valid JSON: {e}")))
}

async fn submit_async(args: SubmitArgs) -> Result<(), Failure> {
    let workflow = read_workflow(&args.file)?;
    let client = Client::new(&args.remote.url)?;
    let (created, answer) = client.submit(&workflow).await?;
    let id = answer.value["id"].as_str().unwrap_or_default().to_owned();
    let status = answer.value["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let again = if created {
        ""
    } else {
        " (the existing run of this idempotency key)"
    };
    let Some(secs) = args.wait else {
        if args.remote.json {
            print_raw(&answer);
        } else {
            print(&format!("run {id} {status}{again}\n"));
        }
        return Ok(());
    };
    if !args.remote.json {
        let _ = writeln!(
            std::io::stderr().lock(),
            "run {id} {status}{again}; waiting up to {secs} s"
        );
    }
    let run = wait_for(&client, &id, Duration::from_secs_f64(secs)).await?;
    show(&run, args.remote.json);
    let status = run.value["status"].as_str().unwrap_or_default();
    match status {
        "succeeded" => Ok(()),
        "failed" | "cancelled" => Err(Failure::Reported(match run.value["error"].as_str() {
            Some(error) => format!("run {id} {status}: {error}"),
            None => format!("run {id} {status}"),
        })),
        _ => Err(Failure::Reported(format!(
            "run {id} is still {status} after {secs} s"
        ))),
    }
}

/// The server holds one request at most this long.
const MAX_HOLD: Duration = Duration::from_secs(60);

/// Polls `GET /workflows/{id}?wait=` until the run is finished or `total`
/// has passed; returns the last state seen.
async fn wait_for(client: &Client, id: &str, total: Duration) -> Result<Answer, ClientError> {
    let deadline = Instant::now() + total;
    loop {
        let asked = Instant::now();
        let hold = deadline.saturating_duration_since(asked).min(MAX_HOLD);
        let run = client.run(id, Some(hold)).await?;
        let done = matches!(
            run.value["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        );
        if done || Instant::now() >= deadline {
            return Ok(run);
        }
        // A host that answers before the hold is over without a finished
        // run (an older one, or a proxy): do not spin.
        if asked.elapsed() < Duration::from_millis(200) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn show(run: &Answer, json: bool) {
    if json {
        print_raw(run);
    } else {
        print(&output::run(&run.value));
    }
}

async fn runs_async(args: RunsArgs) -> Result<(), Failure> {
    match args.command {
        RunsCommand::Show { id, remote } => {
            let client = Client::new(&remote.url)?;
            let run = client.run(&id, None).await?;
            show(&run, remote.json);
        }
        RunsCommand::List {
            status,
            limit,
            cursor,
            remote,
        } => {
            let client = Client::new(&remote.url)?;
            let page = client
                .list(status.as_deref(), limit, cursor.as_deref())
                .await?;
            if remote.json {
                print_raw(&page);
            } else {
                print(&output::list(&page.value));
            }
        }
        RunsCommand::Cancel { id, remote } => {
            let client = Client::new(&remote.url)?;
            let run = client.cancel(&id).await?;
            show(&run, remote.json);
        }
    }
    Ok(())
}

async fn query_async(args: QueryArgs) -> Result<(), Failure> {
    let client = Client::new(&args.remote.url)?;
    let mut filter = serde_json::Map::new();
    if let Some(prefix) = args.source_prefix {
        filter.insert("source_prefix".into(), Value::String(prefix));
    }
    for (key, value) in args.filters {
        filter.insert(key, Value::String(value));
    }
    let mut request =
        serde_json::json!({"query": args.text, "top_k": args.top_k, "filter": filter});
    if let Some(collection) = args.collection {
        request["collection"] = Value::String(collection);
    }
    let answer = client.rag_query(&request).await?;
    if args.remote.json {
        print_raw(&answer);
    } else {
        print(&output::hits(&answer.value));
    }
    Ok(())
}

async fn ingest_async(args: IngestArgs) -> Result<(), Failure> {
    let client = Client::new(&args.remote.url)?.with_token(args.token);
    let mut request = serde_json::Map::new();
    if let Some(dir) = args.dir {
        // The host reads the directory: send it absolute.
        let dir = std::path::absolute(&dir)
            .map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))?;
        request.insert("dir".into(), Value::String(dir.display().to_string()));
    }
    if let Some(collection) = args.collection {
        request.insert("collection".into(), Value::String(collection));
    }
    let started = client.rag_reload(&Value::Object(request)).await?;
    let id = started.value["id"].as_str().unwrap_or_default().to_owned();
    if args.detach {
        if args.remote.json {
            print_raw(&started);
        } else {
            print(&format!("ingest {id} started\n"));
        }
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:30}] {pos}/{len} files, {msg} ({elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix("ingesting");
    let report = loop {
        let answer = client.rag_ingest(&id).await?;
        let report = &answer.value["report"];
        if let Some(total) = report["files_total"].as_u64() {
            bar.set_length(total);
            bar.set_position(report["files_done"].as_u64().unwrap_or(0));
            bar.set_message(format!(
                "{} chunks embedded",
                report["chunks_embedded"].as_u64().unwrap_or(0)
            ));
        }
        if answer.value["running"] == Value::Bool(false) && report.is_object() {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    if args.remote.json {
        print_raw(&report);
    } else {
        print(&output::ingest(&report.value["report"]));
    }
    match report.value["report"]["error"].as_str() {
        Some(error) => Err(Failure::Reported(format!("ingest {id} failed: {error}"))),
        None => Ok(()),
    }
}
