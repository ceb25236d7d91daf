//! `just bench code`: code snippets run by the shipped code steps, over
//! real HTTP (`POST /sandbox/run`) against a real `nova serve`, beside the
//! same snippet run natively as a process per call (`python3 -c`,
//! `node -e`): what a user compares nova against. Prints figures, asserts
//! nothing about speed.
//!
//! For each language, `NOVA_BENCH_CODE_CALLS` sequential calls (default
//! 200; a tenth of that for native processes) of:
//!
//! - a trivial snippet (`result = input + 1`), and
//! - a compute snippet: the sum of i*i below 200,000, about 10 ms in
//!   native CPython.
//!
//! Figures: p50 and p99 of the whole request as the client sees it, p50 of
//! the host's own `duration_ms` (instantiate + run), and the ratio of
//! nova's p50 to the native process's. Needs the `nova` binary (cargo
//! builds it for a bench), `just interpreters`, and `python3` and `node`
//! on PATH for the native baseline (skipped, and said so, without them).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::summary::headline;
use common::{Host, build_dir, env_or, loadavg, percentile};
use serde_json::{Value, json};

/// The compute snippet's bound: about 10 ms of native CPython.
const COMPUTE_N: u64 = 200_000;

async fn start(http: &reqwest::Client) -> Host {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    for lang in ["python", "javascript"] {
        let wasm = build_dir().join(format!("plugins/{lang}.wasm"));
        std::fs::copy(&wasm, plugins.join(format!("{lang}.wasm"))).unwrap_or_else(|e| {
            panic!("{}: {e}; build it with `just interpreters`", wasm.display())
        });
        let manifest = common::repo_root().join(format!("plugins/{lang}/{lang}.toml"));
        std::fs::copy(&manifest, plugins.join(format!("{lang}.toml")))
            .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    }
    let mut command = common::serve(dir.path(), &plugins);
    command.current_dir(dir.path()).stderr(Stdio::inherit());
    let host = Host::spawn(command, Some(dir)).await;
    // Ready once both code steps have compiled (minutes on a cold cache).
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let probe = http
            .post(format!("{}/sandbox/run", host.url))
            .json(&json!({"language": "javascript", "code": "result = 1;"}))
            .send()
            .await;
        let python = http
            .post(format!("{}/sandbox/run", host.url))
            .json(&json!({"language": "python", "code": "result = 1"}))
            .send()
            .await;
        if matches!((&probe, &python), (Ok(a), Ok(b)) if a.status() == 200 && b.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the code steps did not load within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    host
}

/// (language, figure name, code) of each snippet.
fn snippets() -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("python", "trivial", "result = input + 1".to_owned()),
        (
            "python",
            "compute",
            format!("result = sum(i * i for i in range({COMPUTE_N}))"),
        ),
        ("javascript", "trivial", "result = input + 1;".to_owned()),
        (
            "javascript",
            "compute",
            format!("let s = 0;\nfor (let i = 0; i < {COMPUTE_N}; i++) s += i * i;\nresult = s;"),
        ),
    ]
}

/// The interpreter `python3` runs, resolved once: a version manager's
/// shim (pyenv's is a shell script) would add its own start-up to every
/// call and flatter nova.
fn python3() -> String {
    Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_owned())
}

/// The same snippet natively, a process per call, with the same
/// convention (input on stdin as JSON, result printed as JSON).
fn native(language: &str, code: &str, python: &str) -> Command {
    match language {
        "python" => {
            let mut c = Command::new(python);
            c.args([
                "-c",
                &format!(
                    "import json, sys\ninput = json.load(sys.stdin)\n{code}\nprint(json.dumps(result))"
                ),
            ]);
            c
        }
        _ => {
            let mut c = Command::new("node");
            c.args([
                "-e",
                &format!(
                    "const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));\nlet result;\n{code}\nconsole.log(JSON.stringify(result));"
                ),
            ]);
            c
        }
    }
}

fn run_native(language: &str, code: &str, python: &str) -> Option<f64> {
    use std::io::Write;
    let start = Instant::now();
    let mut child = native(language, code, python)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(b"41").ok()?;
    let out = child.wait_with_output().ok()?;
    out.status
        .success()
        .then(|| start.elapsed().as_secs_f64() * 1e3)
}

struct Figures {
    p50: f64,
    p99: f64,
}

fn figures(mut ms: Vec<f64>) -> Figures {
    ms.sort_by(f64::total_cmp);
    Figures {
        p50: percentile(&ms, 0.5),
        p99: percentile(&ms, 0.99),
    }
}

#[tokio::main]
async fn main() {
    let calls: usize = env_or("NOVA_BENCH_CODE_CALLS", 200);
    let native_calls = (calls / 10).max(10);
    let http = common::client(Duration::from_secs(60));
    let python = python3();
    let host = start(&http).await;
    println!("## code steps (load {})", loadavg());
    println!();
    println!(
        "{calls} sequential calls of each snippet through `POST /sandbox/run`; \
         {native_calls} native processes per snippet (`{python} -c`, `node -e`) \
         with the same input and result convention."
    );
    println!();
    println!(
        "| language | snippet | nova p50 ms | nova p99 ms | host duration_ms p50 | native process p50 ms | native p99 ms | nova / native (p50) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (language, name, code) in snippets() {
        let body = json!({"language": language, "code": code, "input": 41});
        // Warm: the first calls fault the interpreter's pages in.
        for _ in 0..5 {
            let _ = http
                .post(format!("{}/sandbox/run", host.url))
                .json(&body)
                .send()
                .await;
        }
        let mut wall = Vec::with_capacity(calls);
        let mut inside = Vec::with_capacity(calls);
        for _ in 0..calls {
            let start = Instant::now();
            let answer: Value = http
                .post(format!("{}/sandbox/run", host.url))
                .json(&body)
                .send()
                .await
                .expect("POST /sandbox/run")
                .json()
                .await
                .expect("JSON");
            wall.push(start.elapsed().as_secs_f64() * 1e3);
            assert!(answer["error"].is_null(), "{answer}");
            inside.push(answer["duration_ms"].as_f64().unwrap_or(f64::NAN));
        }
        let nova = figures(wall);
        let host_ms = figures(inside);
        let baseline: Option<Vec<f64>> = (0..native_calls)
            .map(|_| run_native(language, &code, &python))
            .collect();
        let (native_p50, native_p99, ratio) = match baseline.map(figures) {
            Some(n) => (
                format!("{:.1}", n.p50),
                format!("{:.1}", n.p99),
                format!("{:.3}", nova.p50 / n.p50),
            ),
            None => ("skipped".into(), "skipped".into(), "-".into()),
        };
        println!(
            "| {language} | {name} | {:.2} | {:.2} | {:.2} | {native_p50} | {native_p99} | {ratio} |",
            nova.p50, nova.p99, host_ms.p50
        );
        let conditions = format!(
            "{calls} sequential calls over HTTP, load {}; native: {native_calls} processes",
            loadavg()
        );
        headline(
            "code",
            &format!("{language} {name} p50 / p99 ms"),
            format!("{:.2} / {:.2}", nova.p50, nova.p99),
            &conditions,
        );
        headline(
            "code",
            &format!("{language} {name}: nova p50 / native process p50"),
            &ratio,
            &format!("native p50 {native_p50} ms"),
        );
    }
    floor(&http, &host, calls).await;
    drop(host);
}

/// Where a trivial call's time goes: each interpreter invoked with no
/// code (it refuses at once, having parsed two small JSON texts) beside
/// the trivial snippet, both through `POST /admin/plugins/{name}/invoke`.
/// The first is the price of a fresh instance of the interpreter (plus
/// HTTP); the difference is the snippet's own work. The interpreter's
/// start-up is not in either: it is in the component's build-time
/// snapshot.
async fn floor(http: &reqwest::Client, host: &Host, calls: usize) {
    println!();
    println!(
        "Where a trivial call goes ({calls} calls each, `POST /admin/plugins/NAME/invoke`): \
         a call refused at once (no code) is a fresh instance of the interpreter; \
         the trivial snippet adds its own compile and run."
    );
    println!();
    println!(
        "| language | refused at once p50 ms | trivial snippet p50 ms | the snippet's share |"
    );
    println!("|---|---:|---:|---:|");
    for (language, trivial) in [
        ("python", "result = input + 1"),
        ("javascript", "result = input + 1;"),
    ] {
        let time = |config: serde_json::Value| {
            let url = format!("{}/admin/plugins/{language}/invoke", host.url);
            async move {
                let mut ms = Vec::with_capacity(calls);
                for _ in 0..calls + 5 {
                    let start = Instant::now();
                    let status = http
                        .post(&url)
                        .query(&[("config", config.to_string())])
                        .json(&json!(41))
                        .send()
                        .await
                        .expect("invoke")
                        .status();
                    ms.push(start.elapsed().as_secs_f64() * 1e3);
                    assert!(status == 200 || status == 422, "{status}");
                }
                // The first calls warm up.
                figures(ms.split_off(5)).p50
            }
        };
        let refused = time(json!({})).await;
        let snippet = time(json!({"code": trivial})).await;
        println!(
            "| {language} | {refused:.2} | {snippet:.2} | {:.0} % |",
            100.0 * (snippet - refused) / snippet
        );
        headline(
            "code",
            &format!("{language}: a fresh interpreter instance (a call refused at once) p50 ms"),
            format!("{refused:.2}"),
            &format!("the trivial snippet: {snippet:.2} ms over the same route"),
        );
    }
}
