//! `just bench workflows`: workflow runs over real HTTP against real
//! `nova serve` processes. Prints figures, asserts nothing about speed.
//!
//! - Closed loop: N clients, each submitting a run (`POST /workflows`) and
//!   holding `GET /workflows/{id}?wait=` until it has finished, then the
//!   next; runs/s, and p50/p99 latency from submit to finished. For 1-step
//!   and 5-step workflows (`template` steps), N = 1, 8, 32, on the embedded
//!   default (SQLite, in-process queue) and on Postgres + Redis.
//! - Open loop: many runs in flight (submit them all, then wait for all),
//!   1-step, on both backends: the throughput the workers sustain. Once on
//!   a nearly fresh store, and again after the closed loops' runs.
//!
//! - A 10-step DAG (one step, a fan-out of 8 in parallel, a join), 8
//!   clients in a closed loop, beside a 10-step chain measured the same way
//!   on the same host: runs/s and the ratio.
//! - Cron lateness: a schedule due every second on three hosts sharing
//!   Postgres and Redis, for `NOVA_BENCH_CRON_SECS` (default 20 s): each
//!   run's `created_at - scheduled_for`, p50/p99, and whether every tick
//!   fired exactly once.
//!
//! Each configuration is bounded in count and time (`NOVA_BENCH_RUNS`,
//! default 2,000 runs; `NOVA_BENCH_SECS`, default 10 s). Loopback only.
//! `NOVA_BENCH_BACKENDS=embedded,postgres` picks the backends;
//! `NOVA_BENCH_WORKERS` the hosts' `NOVA_WORKERS` (default 32).
//! Needs the `nova` binary (cargo builds it for a bench), `just plugins`,
//! and Postgres and Redis as the tests use them (`just services`):
//! `NOVA_TEST_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/test,
//! a fresh database is created beside it and dropped at the end) and
//! `NOVA_TEST_REDIS_URL` (default redis://127.0.0.1:6379, a fresh prefix).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

mod common;

use common::summary::headline;
use common::{Host, build_dir, env_or, loadavg, percentile};
use serde_json::{Value, json};

const CLIENTS: [usize; 3] = [1, 8, 32];
const STEPS: [usize; 2] = [1, 5];
/// Runs in flight in the open-loop measurement.
const OPEN_RUNS: usize = 4_000;
/// Concurrent HTTP requests while submitting and waiting in the open loop.
const OPEN_CONCURRENCY: usize = 64;

fn redis_url() -> String {
    std::env::var("NOVA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn postgres_admin_url() -> String {
    std::env::var("NOVA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Where a host keeps runs and moves work.
enum Backend {
    Embedded,
    /// A fresh database (dropped on drop) and a fresh Redis key prefix.
    PostgresRedis {
        database_url: String,
        database: String,
        prefix: String,
    },
}

impl Backend {
    fn postgres_redis() -> Backend {
        let name = unique("nova_bench");
        let out = Command::new("psql")
            .args([
                &postgres_admin_url(),
                "-v",
                "ON_ERROR_STOP=1",
                "-qc",
                &format!("CREATE DATABASE {name}"),
            ])
            .output()
            .expect("psql is needed for the Postgres figures");
        assert!(
            out.status.success(),
            "CREATE DATABASE: {} (start Postgres and Redis with `just services`)",
            String::from_utf8_lossy(&out.stderr)
        );
        let ping = Command::new("redis-cli")
            .args(["-u", &redis_url(), "ping"])
            .output()
            .expect("redis-cli is needed for the Redis figures");
        assert!(
            String::from_utf8_lossy(&ping.stdout).contains("PONG"),
            "Redis is not running at {} (start it with `just services`)",
            redis_url()
        );
        let server = postgres_admin_url()
            .rsplit_once('/')
            .map(|(server, _)| server.to_owned())
            .expect("NOVA_TEST_DATABASE_URL ends with /DATABASE");
        Backend::PostgresRedis {
            database_url: format!("{server}/{name}"),
            database: name.clone(),
            prefix: name,
        }
    }

    /// Whether to VACUUM the runs and steps between configurations: on a
    /// Postgres with autovacuum off. Every run rewrites its rows several
    /// times; without vacuum the dead rows of earlier configurations slow
    /// the later ones, by up to 2x here.
    fn needs_vacuum(&self) -> bool {
        let Backend::PostgresRedis { database_url, .. } = self else {
            return false;
        };
        Command::new("psql")
            .args([database_url.as_str(), "-Atc", "SHOW autovacuum"])
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() != "on")
    }

    /// What autovacuum would do meanwhile, outside the timed windows.
    fn vacuum(&self) {
        if let Backend::PostgresRedis { database_url, .. } = self {
            let _ = Command::new("psql")
                .args([database_url.as_str(), "-qc", "VACUUM ANALYZE runs, steps"])
                .output();
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "embedded (SQLite, in-process queue)",
            Backend::PostgresRedis { .. } => "Postgres + Redis",
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Backend::PostgresRedis {
            database, prefix, ..
        } = self
        {
            let _ = Command::new("psql")
                .args([
                    &postgres_admin_url(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
                ])
                .output();
            let _ = Command::new("sh")
                .args([
                    "-c",
                    &format!(
                        "redis-cli -u {url} --scan --pattern '{prefix}:*' | xargs -r redis-cli -u {url} del",
                        url = redis_url()
                    ),
                ])
                .output();
        }
    }
}

async fn start(backend: &Backend, cache: &Path, http: &reqwest::Client) -> Host {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    let template = build_dir().join("plugins/template.wasm");
    std::fs::copy(&template, plugins.join("template.wasm"))
        .unwrap_or_else(|e| panic!("{}: {e}; build it with `just plugins`", template.display()));
    // Workflows only: no embedding model to load, no ingest to wait for
    // (common::serve turns the knowledge base off).
    let mut command = common::serve(dir.path(), &plugins);
    command
        .env("NOVA_CACHE_DIR", cache)
        .env(
            "NOVA_WORKERS",
            env_or("NOVA_BENCH_WORKERS", 32usize).to_string(),
        )
        .current_dir(dir.path())
        .stderr(Stdio::inherit());
    if let Backend::PostgresRedis {
        database_url,
        prefix,
        ..
    } = backend
    {
        command
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", redis_url())
            .env("NOVA_REDIS_PREFIX", prefix);
    }
    let host = Host::spawn(command, Some(dir)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{}/health", host.url)).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "nova did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    host
}

/// A 10-step DAG: a first step, 8 steps that need only it (run at once),
/// and a join that needs the 8 and reads each one's output.
fn dag() -> Value {
    let add = |id: String, needs: Value, template: &str| {
        json!({
            "id": id, "needs": needs, "plugin": "template",
            "config": {"template": template, "output": "json"}
        })
    };
    let mut steps = vec![add("start".into(), json!([]), "{\"n\": {{ n + 1 }}}")];
    let branches: Vec<String> = (0..8).map(|i| format!("b{i}")).collect();
    for id in &branches {
        steps.push(add(id.clone(), json!(["start"]), "{\"n\": {{ n + 1 }}}"));
    }
    let mut join = add("join".into(), json!(branches), "{\"sum\": {{ ns|sum }}}");
    // Every branch by name (a wildcard over steps is refused).
    join["input"] =
        json!({"ns": branches.iter().map(|b| format!("$.steps.{b}.output.n")).collect::<Vec<_>>()});
    steps.push(join);
    json!({"steps": steps, "input": {"n": 0}})
}

/// Cron lateness on three hosts: (runs, distinct ticks, p50 ms, p99 ms,
/// largest gap between consecutive ticks in s).
async fn cron_lateness(
    cache: &Path,
    http: &reqwest::Client,
    secs: f64,
) -> (usize, usize, f64, f64, f64) {
    let backend = Backend::postgres_redis();
    let hosts = [
        start(&backend, cache, http).await,
        start(&backend, cache, http).await,
        start(&backend, cache, http).await,
    ];
    let definition = json!({
        "steps": [{"plugin": "template", "config": {"template": "tick"}}],
        "schedule": {"cron": "* * * * * *"},
    });
    let saved = http
        .put(format!("{}/workflows/definitions/tick", hosts[0].url))
        .json(&definition)
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status(), 201);
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let _ = http
        .delete(format!("{}/workflows/definitions/tick", hosts[1].url))
        .send()
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut late = Vec::new();
    let mut ticks = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/workflows?definition=tick&limit=100", hosts[2].url);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(url)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("page");
        for summary in page["runs"].as_array().into_iter().flatten() {
            let id = summary["id"].as_str().unwrap_or_default();
            let run: Value = http
                .get(format!("{}/workflows/{id}", hosts[2].url))
                .send()
                .await
                .expect("run")
                .json()
                .await
                .expect("run JSON");
            if let (Some(created), Some(tick)) = (
                rfc3339_ms(&run["created_at"]),
                rfc3339_ms(&run["scheduled_for"]),
            ) {
                late.push(created - tick);
                ticks.push(tick as i64);
            }
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let runs = ticks.len();
    ticks.sort_unstable();
    ticks.dedup();
    let gap = ticks
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / 1e3)
        .fold(0.0, f64::max);
    late.sort_by(f64::total_cmp);
    drop(hosts);
    (
        runs,
        ticks.len(),
        percentile(&late, 0.5),
        percentile(&late, 0.99),
        gap,
    )
}

/// A workflow of `steps` template steps, each adding 1 to `n`.
fn workflow(steps: usize) -> Value {
    let step = json!({
        "plugin": "template",
        "config": {"template": "{\"n\": {{ n + 1 }}}", "output": "json"}
    });
    json!({"steps": vec![step; steps], "input": {"n": 0}})
}

async fn submit(http: &reqwest::Client, url: &str, body: &Value) -> String {
    let response = http
        .post(format!("{url}/workflows"))
        .json(body)
        .send()
        .await
        .expect("submit");
    let status = response.status();
    let answer: Value = response.json().await.expect("submit answers JSON");
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().expect("id").to_owned()
}

/// Holds `?wait=` until the run has finished; the final run. A run that
/// has not finished after two minutes stops the benchmark.
async fn wait(http: &reqwest::Client, url: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "run {id} did not finish in 120 s"
        );
        let run: Value = http
            .get(format!("{url}/workflows/{id}?wait=60"))
            .send()
            .await
            .expect("get run")
            .json()
            .await
            .expect("run is JSON");
        if matches!(
            run["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return run;
        }
    }
}

struct Figures {
    runs: usize,
    failed: usize,
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// From the run's `created_at` to its `finished_at`, as the host
    /// recorded them (ms resolution): the latency without the HTTP round
    /// trips and the `?wait=` polling.
    server_p50_ms: f64,
    server_p99_ms: f64,
}

/// `clients` tasks, each submitting and waiting, until `max_runs` runs have
/// been started or `max_time` has passed.
async fn closed_loop(
    http: &reqwest::Client,
    url: &str,
    body: Value,
    clients: usize,
    max_runs: usize,
    max_time: Duration,
) -> Figures {
    let body = Arc::new(body);
    let issued = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + max_time;
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (http, url, body, issued) =
            (http.clone(), url.to_owned(), body.clone(), issued.clone());
        tasks.push(tokio::spawn(async move {
            let mut ms = Vec::new();
            let mut server = Vec::new();
            let mut failed = 0;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max_runs {
                let t = Instant::now();
                let id = submit(&http, &url, &body).await;
                let run = wait(&http, &url, &id).await;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                if let (Some(a), Some(b)) = (
                    rfc3339_ms(&run["created_at"]),
                    rfc3339_ms(&run["finished_at"]),
                ) {
                    server.push(b - a);
                }
                if run["status"] != "succeeded" {
                    failed += 1;
                }
            }
            (ms, server, failed)
        }));
    }
    let mut ms = Vec::new();
    let mut server = Vec::new();
    let mut failed = 0;
    for task in tasks {
        let (m, s, f) = task.await.expect("client");
        ms.extend(m);
        server.extend(s);
        failed += f;
    }
    let elapsed = start.elapsed().as_secs_f64();
    ms.sort_by(f64::total_cmp);
    server.sort_by(f64::total_cmp);
    Figures {
        runs: ms.len(),
        failed,
        per_s: ms.len() as f64 / elapsed,
        p50_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
        server_p50_ms: percentile(&server, 0.5),
        server_p99_ms: percentile(&server, 0.99),
    }
}

fn rfc3339_ms(v: &Value) -> Option<f64> {
    let t = humantime::parse_rfc3339(v.as_str()?).ok()?;
    Some(t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs_f64() * 1e3)
}

/// Submits `runs` 1-step runs as fast as `OPEN_CONCURRENCY` requests allow,
/// then waits for all of them. Bounded by `max_time` for the submissions.
/// `what` names the configuration in the headline figure.
async fn open_loop(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    runs: usize,
    max_time: Duration,
) -> String {
    let body = Arc::new(workflow(1));
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + max_time;
    let mut tasks = Vec::new();
    for _ in 0..OPEN_CONCURRENCY {
        let (http, url, body, next) = (http.clone(), url.to_owned(), body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while Instant::now() < deadline && next.fetch_add(1, Ordering::Relaxed) < runs {
                ids.push(submit(&http, &url, &body).await);
            }
            ids
        }));
    }
    let mut ids = Vec::with_capacity(runs);
    for task in tasks {
        ids.extend(task.await.expect("submitter"));
    }
    let submitted = start.elapsed().as_secs_f64();
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..OPEN_CONCURRENCY {
        let (http, url, ids, next) = (http.clone(), url.to_owned(), ids.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                let run = wait(&http, &url, id).await;
                out.push((
                    run["status"] == "succeeded",
                    rfc3339_ms(&run["created_at"]),
                    rfc3339_ms(&run["finished_at"]),
                ));
            }
            out
        }));
    }
    let mut finished = Vec::with_capacity(ids.len());
    for task in tasks {
        finished.extend(task.await.expect("waiter"));
    }
    let all = start.elapsed().as_secs_f64();
    let n = finished.len();
    let failed = finished.iter().filter(|(ok, _, _)| !ok).count();
    let first = finished
        .iter()
        .filter_map(|f| f.1)
        .fold(f64::INFINITY, f64::min);
    let last = finished
        .iter()
        .filter_map(|f| f.2)
        .fold(f64::NEG_INFINITY, f64::max);
    let server_s = (last - first) / 1e3;
    headline(
        "workflows",
        &format!("1-step runs/s, many in flight, {what}"),
        format!("{:.0} runs/s", n as f64 / all),
        &format!(
            "{n} runs from {OPEN_CONCURRENCY} concurrent submitters, submit all then wait for all"
        ),
    );
    format!(
        "{n} runs ({failed} not succeeded): submitted in {submitted:.2} s ({:.0}/s); \
         all finished after {all:.2} s: **{:.0} runs/s** end to end \
         ({:.0} runs/s from the first created_at to the last finished_at)",
        n as f64 / submitted,
        n as f64 / all,
        n as f64 / server_s,
    )
}

async fn bench() {
    let max_runs: usize = env_or("NOVA_BENCH_RUNS", 2_000);
    let max_time = Duration::from_secs_f64(env_or("NOVA_BENCH_SECS", 10.0));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "workflows over HTTP: {cores} cores, load average {} at start; NOVA_WORKERS={}; \
         each configuration at most {max_runs} runs or {:.0} s; the load generator \
         shares the machine with the host",
        loadavg(),
        env_or("NOVA_BENCH_WORKERS", 32usize),
        max_time.as_secs_f64()
    );
    let cache = tempfile::tempdir().expect("cache dir");
    let http = common::client(Duration::from_secs(90));
    let mut rows = Vec::new();
    let mut open = Vec::new();
    let mut notes = Vec::new();
    let mut dags = Vec::new();
    let mut cron = None;
    let backends: Vec<Backend> = std::env::var("NOVA_BENCH_BACKENDS")
        .unwrap_or_else(|_| "embedded,postgres".into())
        .split(',')
        .filter_map(|name| match name.trim() {
            "embedded" => Some(Backend::Embedded),
            "postgres" => Some(Backend::postgres_redis()),
            _ => None,
        })
        .collect();
    for backend in backends {
        let host = start(&backend, cache.path(), &http).await;
        // Warm up: plugin compiled and cached, connections pooled.
        let mut stored = closed_loop(&http, &host.url, workflow(1), 8, 100, max_time)
            .await
            .runs;
        // Many runs in flight on a (nearly) fresh store, and again once the
        // closed loops below have added theirs.
        let mut open_loop_line = async |stored: usize| {
            let line = format!(
                "- {}, 1 step, {OPEN_CONCURRENCY} concurrent requests, {stored} runs stored before: {}",
                backend.name(),
                open_loop(
                    &http,
                    &host.url,
                    &format!("{}, {stored} runs stored before", backend.name()),
                    OPEN_RUNS,
                    max_time * 3
                )
                .await
            );
            eprintln!("{line}");
            open.push(line);
        };
        let vacuum = backend.needs_vacuum();
        let between = || {
            if vacuum {
                backend.vacuum();
            }
        };
        between();
        open_loop_line(stored).await;
        stored += OPEN_RUNS;
        for steps in STEPS {
            for clients in CLIENTS {
                between();
                let f = closed_loop(
                    &http,
                    &host.url,
                    workflow(steps),
                    clients,
                    max_runs,
                    max_time,
                )
                .await;
                stored += f.runs;
                headline(
                    "workflows",
                    &format!("{steps}-step runs/s, {}", backend.name()),
                    format!("{:.0} runs/s", f.per_s),
                    &format!(
                        "{clients} concurrent clients (closed loop); submit to finished p50 {:.1} ms, p99 {:.1} ms",
                        f.p50_ms, f.p99_ms
                    ),
                );
                let row = format!(
                    "| {} | {steps} | {clients} | {}{} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} |",
                    backend.name(),
                    f.runs,
                    if f.failed > 0 {
                        format!(" ({} failed)", f.failed)
                    } else {
                        String::new()
                    },
                    f.per_s,
                    f.p50_ms,
                    f.p99_ms,
                    f.server_p50_ms,
                    f.server_p99_ms
                );
                eprintln!("{row}");
                rows.push(row);
            }
        }
        // A 10-step DAG with a fan-out of 8, and a 10-step chain beside it.
        between();
        let chain = closed_loop(&http, &host.url, workflow(10), 8, max_runs, max_time).await;
        between();
        let fan = closed_loop(&http, &host.url, dag(), 8, max_runs, max_time).await;
        stored += chain.runs + fan.runs;
        headline(
            "workflows",
            &format!("10-step DAG (fan-out 8) runs/s, {}", backend.name()),
            format!("{:.0} runs/s", fan.per_s),
            &format!(
                "8 clients (closed loop); p50 {:.1} ms; a 10-step chain on the same host: {:.0} runs/s, p50 {:.1} ms ({:.2}x the DAG's latency)",
                fan.p50_ms,
                chain.per_s,
                chain.p50_ms,
                chain.p50_ms / fan.p50_ms.max(f64::MIN_POSITIVE)
            ),
        );
        dags.push(format!(
            "| {} | {} ({} failed) | {:.0} | {:.1} | {:.1} | {} ({} failed) | {:.0} | {:.1} | {:.1} |",
            backend.name(),
            fan.runs,
            fan.failed,
            fan.per_s,
            fan.p50_ms,
            fan.p99_ms,
            chain.runs,
            chain.failed,
            chain.per_s,
            chain.p50_ms,
            chain.p99_ms
        ));
        between();
        open_loop_line(stored).await;
        if vacuum {
            notes.push(format!(
                "- {}: this Postgres has autovacuum off: runs and steps are vacuumed between \
                 configurations",
                backend.name()
            ));
        }
        if matches!(backend, Backend::PostgresRedis { .. }) {
            drop(host);
            let secs = env_or("NOVA_BENCH_CRON_SECS", 20.0);
            let figures = cron_lateness(cache.path(), &http, secs).await;
            headline(
                "workflows",
                "cron lateness p50 / p99, three hosts",
                format!("{:.0} ms / {:.0} ms", figures.2, figures.3),
                &format!(
                    "every-second schedule for {secs:.0} s on Postgres + Redis: {} runs for {} distinct ticks, largest gap {:.0} s",
                    figures.0, figures.1, figures.4
                ),
            );
            cron = Some((secs, figures));
            continue;
        }
        drop(host);
    }
    println!();
    println!(
        "| backend | steps | clients | runs | runs/s | p50 ms | p99 ms | host p50 ms | host p99 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    println!(
        "\np50/p99: client side, from POST /workflows to the `?wait=` answer with the run \
         finished. host p50/p99: the run's finished_at - created_at (ms resolution)."
    );
    println!();
    println!(
        "10-step DAG (a step, 8 in parallel, a join), 8 clients, beside a 10-step chain on the same host:\n"
    );
    println!(
        "| backend | DAG runs | DAG runs/s | DAG p50 ms | DAG p99 ms | chain runs | chain runs/s | chain p50 ms | chain p99 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in dags {
        println!("{row}");
    }
    if let Some((secs, (runs, ticks, p50, p99, gap))) = cron {
        println!();
        println!(
            "Cron, every second for {secs:.0} s, three hosts on Postgres + Redis: {runs} runs for \
             {ticks} distinct ticks (exactly once: {}), largest gap between ticks {gap:.0} s; \
             lateness (created_at - scheduled_for) p50 {p50:.0} ms, p99 {p99:.0} ms",
            if runs == ticks { "yes" } else { "NO" }
        );
    }
    println!();
    println!("Many runs in flight (submit all, then wait for all):");
    for line in open {
        println!("{line}");
    }
    for note in notes {
        println!("{note}");
    }
    println!();
    println!("load average at the end: {}", loadavg());
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench());
}
