//! `just bench plugins`: the plugin runtime's figures. Prints, asserts
//! nothing about speed.
//!
//! - one step call (fresh instance, run, drop) at p50/p99 over 20,000 calls;
//! - from a new `.wasm` landing in the watched directory to the first call
//!   it serves, over 30 reloads (cached, and new bytes compiled cold);
//! - compile time of each shipped plugin, cold and from the cache;
//! - compile time of the big (interpreter) components, the JavaScript test
//!   step and the examples when built, under wasmtime's settings that
//!   trade compile time: the host's (Cranelift `speed`, parallel), one
//!   thread, and Cranelift `none`;
//! - the dev loop: from an edit of a small Rust plugin's source to
//!   `nova plugin dev` saying the new version serves on a running `nova
//!   serve`, over 10 edits;
//! - an outbound HTTP GET from the `http-request` step against the same
//!   GET from native Rust (hyper, a new connection each, as the host
//!   makes), to the same server on loopback, interleaved: p50, p99, ratio.
//!
//! Needs `just plugins test-plugins` (the `bench` recipe builds them).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nova::knowledge::Knowledge;
use nova::kv::Kv;
use nova::plugins::{Limits, Manifest, Registry, Runtime, watcher};
use nova::store::Store;

mod common;
use common::{build_dir, percentile, summary};

const CALLS: usize = 20_000;
const RELOADS: usize = 30;

fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(10),
        memory_bytes: 128 << 20,
        max_output_bytes: 16 << 20,
        ..Limits::default()
    }
}

async fn runtime(cache: &Path) -> Arc<Runtime> {
    let services = nova::capabilities::lend(
        Kv::in_process(),
        Store::connect("sqlite::memory:").await.expect("store"),
        Knowledge::disabled("not used by this benchmark"),
    );
    let config = nova::plugins::RuntimeConfig {
        defaults: limits(),
        max_memory_bytes: 1 << 30,
        concurrency: 64,
        ..Default::default()
    };
    Arc::new(Runtime::new(cache, config, services).expect("runtime"))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build it with `just plugins test-plugins`",
            path.display()
        )
    })
}

/// Prints the figures of `xs`, and makes their p50 a headline.
fn figures(label: &str, unit: &str, mut xs: Vec<f64>) {
    xs.sort_by(f64::total_cmp);
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    summary::headline(
        "plugins",
        &format!("{label}, p50"),
        format!("{:.2} {unit}", percentile(&xs, 0.5)),
        &format!(
            "{} samples; p99 {:.2} {unit}",
            xs.len(),
            percentile(&xs, 0.99)
        ),
    );
    println!(
        "{label:<48} n={:<6} p50={:>9.2} {unit}  p99={:>9.2} {unit}  mean={:>9.2} {unit}",
        xs.len(),
        percentile(&xs, 0.5),
        percentile(&xs, 0.99),
        mean
    );
}

/// A component with a custom section appended: same behaviour, new bytes,
/// so it misses the compile cache.
fn with_nonce(bytes: &[u8], nonce: u64) -> Vec<u8> {
    let name = b"nova-bench-nonce";
    let payload = nonce.to_le_bytes();
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    out.push((1 + name.len() + payload.len()) as u8); // size, fits one LEB byte
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

async fn bench_calls(build: &Path) {
    let dir = tempfile::tempdir().expect("tmp");
    let rt = runtime(dir.path()).await;
    let bytes = read(&build.join("test-plugins/hello-v1.wasm"));
    let sha = nova::plugins::sha256_hex(&bytes);
    let plugin = rt
        .prepare(
            "hello",
            Path::new("hello.wasm"),
            bytes,
            sha,
            Manifest::defaults(limits()),
        )
        .await
        .expect("prepare hello");
    for _ in 0..1_000 {
        rt.run_step(&plugin, "\"warm\"", "{}").await.expect("call");
    }
    let mut us = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        rt.run_step(&plugin, "\"x\"", "{}").await.expect("call");
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    figures("step call (instantiate + run + drop)", "us", us);

    // Throughput with as many concurrent callers as cores.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let plugin = Arc::new(plugin);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (rt, plugin) = (rt.clone(), plugin.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..CALLS / workers {
                rt.run_step(&plugin, "\"x\"", "{}").await.expect("call");
            }
        }));
    }
    for task in tasks {
        task.await.expect("join");
    }
    let per_s = (CALLS / workers * workers) as f64 / t.elapsed().as_secs_f64();
    println!("step calls/s with {workers} concurrent callers           {per_s:>9.0} calls/s");
    summary::headline(
        "plugins",
        "step calls/s",
        format!("{per_s:.0} calls/s"),
        &format!("{workers} concurrent callers, fresh instance per call"),
    );
}

async fn bench_reload(build: &Path) {
    let v1 = read(&build.join("test-plugins/hello-v1.wasm"));
    let v2 = read(&build.join("test-plugins/hello-v2.wasm"));
    for cold in [false, true] {
        let dir = tempfile::tempdir().expect("tmp");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).expect("mkdir");
        let rt = runtime(&dir.path().join("cache")).await;
        let registry = Arc::new(Registry::new(rt.clone(), plugins.clone()));
        let _watch = watcher::spawn(registry.clone()).expect("watch");
        let mut ms = Vec::with_capacity(RELOADS);
        for i in 0..RELOADS + 2 {
            let base = if i % 2 == 0 { &v1 } else { &v2 };
            let bytes = if cold {
                with_nonce(base, i as u64)
            } else {
                base.clone()
            };
            let want = nova::plugins::sha256_hex(&bytes);
            let tmp = plugins.join(".hello.tmp");
            std::fs::write(&tmp, &bytes).expect("write");
            let t = Instant::now();
            std::fs::rename(&tmp, plugins.join("hello.wasm")).expect("rename");
            loop {
                if let Some(p) = registry.get("hello")
                    && p.sha256 == want
                {
                    rt.run_step(&p, "\"x\"", "{}").await.expect("call");
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "reload never happened"
                );
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            // The first two fill the compile cache (when warm).
            if i >= 2 {
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let label = if cold {
            "reload: new bytes landed -> first call (cold compile)"
        } else {
            "reload: file landed -> first call (compile cached)"
        };
        figures(label, "ms", ms);
    }
}

async fn bench_compile(build: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(build.join("plugins"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "wasm"));
    files.sort();
    assert!(!files.is_empty(), "no shipped plugins: run `just plugins`");
    println!(
        "{:<20} {:>10} {:>12} {:>12} {:>8}",
        "plugin", "bytes", "cold ms", "cached ms", "ratio"
    );
    for file in files {
        let bytes = read(&file);
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let (mut cold, mut cached) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tmp");
            let rt = runtime(dir.path()).await;
            for round in 0..2 {
                let sha = nova::plugins::sha256_hex(&bytes);
                let p = rt
                    .prepare(
                        &name,
                        &file,
                        bytes.clone(),
                        sha,
                        Manifest::defaults(limits()),
                    )
                    .await
                    .expect("prepare");
                assert_eq!(p.compile.from_cache, round == 1);
                if round == 0 { &mut cold } else { &mut cached }.push(p.compile.ms);
            }
        }
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let (c, k) = (min(&cold), min(&cached));
        println!(
            "{name:<20} {:>10} {c:>12.1} {k:>12.2} {:>7.0}x",
            bytes.len(),
            c / k
        );
        summary::headline(
            "plugins",
            &format!("compile {name}, cold / cached"),
            format!("{c:.0} ms / {k:.2} ms"),
            &format!("{} bytes, best of 3", bytes.len()),
        );
    }
}

/// The big components there are: interpreters (a JavaScript engine, a
/// Python one) with the plugin inside.
fn big_components(build: &Path) -> Vec<PathBuf> {
    let mut files = vec![build.join("test-plugins/js-step.wasm")];
    let examples = common::repo_root().join("examples");
    for lang in ["python", "js"] {
        for kind in ["step", "loader"] {
            let dir = examples.join(lang).join(kind).join("build");
            if let Ok(entries) = std::fs::read_dir(dir) {
                files.extend(
                    entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == "wasm")),
                );
            }
        }
    }
    files.retain(|p| p.exists());
    files
}

/// Compile time of big components under the settings that trade it.
/// The same engine settings as the host's otherwise (component model,
/// epoch interruption, stack limits); wasmtime does the compiling, as
/// `nova compile-plugin` does.
fn bench_compile_big(build: &Path) {
    let files = big_components(build);
    if files.is_empty() {
        println!(
            "(no big components: run `just test-plugins`, and `nova plugin build` in examples/)"
        );
        return;
    }
    type Tweak = fn(&mut wasmtime::Config);
    let settings: [(&str, Tweak); 3] = [
        ("host: cranelift speed, parallel", |_| {}),
        ("one thread", |c| {
            c.parallel_compilation(false);
        }),
        ("cranelift opt none, parallel", |c| {
            c.cranelift_opt_level(wasmtime::OptLevel::None);
        }),
    ];
    println!(
        "{:<24} {:>10}  {:<34} {:>10}",
        "component", "MB", "settings", "compile s"
    );
    for file in files {
        let bytes = read(&file);
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let mut base = None;
        for (label, tweak) in settings {
            let mut config = wasmtime::Config::new();
            config
                .wasm_component_model(true)
                .epoch_interruption(true)
                .max_wasm_stack(nova::plugins::engine_limits::MAX_WASM_STACK)
                .async_stack_size(nova::plugins::engine_limits::ASYNC_STACK);
            tweak(&mut config);
            let engine = wasmtime::Engine::new(&config).expect("engine");
            // Best of two: the machine is shared.
            let mut best = f64::INFINITY;
            for _ in 0..2 {
                let t = Instant::now();
                engine.precompile_component(&bytes).expect("compile");
                best = best.min(t.elapsed().as_secs_f64());
            }
            let ratio = base.map_or(String::new(), |b: f64| format!(" ({:.2}x)", best / b));
            base.get_or_insert(best);
            println!(
                "{name:<24} {:>10.1}  {label:<34} {best:>10.2}{ratio}",
                bytes.len() as f64 / 1e6
            );
            summary::headline(
                "plugins",
                &format!("compile {name} ({label})"),
                format!("{best:.2} s{ratio}"),
                &format!("{:.1} MB, best of 2", bytes.len() as f64 / 1e6),
            );
        }
    }
}

/// `nova plugin dev` on a new Rust step, against a real `nova serve`: the
/// time from writing an edit to the line saying its version serves (the
/// watcher's event, cargo's rebuild, the upload, the host's compile and
/// swap).
async fn bench_dev() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    const EDITS: usize = 10;
    let nova = common::nova_bin();
    let dir = tempfile::tempdir().expect("tmp");
    // Rust projects build beside nova's own target directory, so their
    // dependencies compile once across runs.
    let target = nova
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("plugin-projects"))
        .expect("target dir");
    let run = |args: &[&str]| {
        let out = Command::new(&nova)
            .args(args)
            .current_dir(dir.path())
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("nova");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["plugin", "new", "devbench"]);
    // The first build compiles the SDK's dependencies: not part of a loop.
    run(&["plugin", "build", "devbench"]);

    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    let mut serve = common::serve(dir.path(), &plugins)
        .spawn()
        .expect("nova serve");
    let url = common::listening_url(&mut serve).await.expect("listening");

    let mut dev = Command::new(&nova)
        .args([
            "plugin",
            "dev",
            "devbench",
            "--url",
            &url,
            "--token",
            common::ADMIN_TOKEN,
        ])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", &target)
        .stderr(Stdio::piped())
        .spawn()
        .expect("nova plugin dev");
    let (tx, lines) = std::sync::mpsc::channel::<(Instant, String)>();
    let stderr = dev.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let serving = || loop {
        let (at, line) = lines
            .recv_timeout(Duration::from_secs(300))
            .expect("nova plugin dev went quiet");
        if line.starts_with("serving devbench") {
            return at;
        }
        assert!(!line.starts_with("nova: error"), "{line}");
    };
    serving();
    let lib = dir.path().join("devbench/src/lib.rs");
    let source = std::fs::read_to_string(&lib).expect("lib.rs");
    let mut ms = Vec::with_capacity(EDITS);
    for i in 0..EDITS {
        // Let the watcher settle, as between a person's edits.
        std::thread::sleep(Duration::from_millis(500));
        let edited = source.replace(
            "greeting: \"Hello\".into()",
            &format!("greeting: \"Hello {i}\".into()"),
        );
        let t = Instant::now();
        std::fs::write(&lib, edited).expect("edit");
        let at = serving();
        ms.push(at.duration_since(t).as_secs_f64() * 1e3);
    }
    let _ = dev.kill();
    let _ = dev.wait();
    let _ = serve.kill();
    let _ = serve.wait();
    ms.sort_by(f64::total_cmp);
    let (p50, max) = (percentile(&ms, 0.5), ms[ms.len() - 1]);
    println!(
        "dev loop, edit -> new version serving (Rust step, {EDITS} edits): p50 {p50:.0} ms, max {max:.0} ms"
    );
    summary::headline(
        "plugins",
        "dev loop: edit -> new version serving (small Rust step)",
        format!("p50 {:.2} s, max {:.2} s", p50 / 1e3, max / 1e3),
        &format!(
            "{EDITS} edits, nova plugin dev against nova serve; load {}",
            common::loadavg()
        ),
    );
}

/// A loopback HTTP server answering every request with a small JSON body.
async fn json_server() -> std::net::SocketAddr {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    let body = http_body_util::Full::new(bytes::Bytes::from_static(
                        br#"{"greeting":"hello","n":42}"#,
                    ));
                    hyper::Response::builder()
                        .header("content-type", "application/json")
                        .body(body)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// One GET from native Rust, on a new connection (as the host sends a
/// plugin's request), body read to the end.
async fn native_get(addr: std::net::SocketAddr) {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let request = hyper::Request::get("/json")
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("send");
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.expect("body");
    assert!(!body.to_bytes().is_empty());
}

async fn bench_outbound(build: &Path) {
    const ROUNDS: usize = 10;
    const PER_ROUND: usize = 200;
    let addr = json_server().await;
    let dir = tempfile::tempdir().expect("tmp");
    let outbound = nova::outbound::Outbound::new(None).expect("outbound");
    let services = nova::capabilities::lend(
        Kv::in_process(),
        Store::connect("sqlite::memory:").await.expect("store"),
        Knowledge::disabled("not used by this benchmark"),
    )
    .with::<dyn nova::plugins::capability::OutboundHttp>(Arc::new(outbound));
    let config = nova::plugins::RuntimeConfig {
        defaults: limits(),
        concurrency: 8,
        ..Default::default()
    };
    let rt = Runtime::new(dir.path(), config.clone(), services).expect("runtime");
    let rules = nova::plugins::manifest::Rules::of(&config, Default::default());
    let manifest = Manifest::parse(
        &format!(
            "[grants]\nallowed_outbound_hosts = [\"http://127.0.0.1:{}\"]\n",
            addr.port()
        ),
        dir.path(),
        &rules,
    )
    .expect("manifest");
    let bytes = read(&build.join("plugins/http-request.wasm"));
    let sha = nova::plugins::sha256_hex(&bytes);
    let plugin = rt
        .prepare(
            "http-request",
            Path::new("http-request.wasm"),
            bytes,
            sha,
            manifest,
        )
        .await
        .expect("prepare http-request");
    let step_config = format!(r#"{{"url": "http://127.0.0.1:{}/json"}}"#, addr.port());
    for _ in 0..100 {
        rt.run_step(&plugin, "{}", &step_config)
            .await
            .expect("step");
        native_get(addr).await;
    }
    let (mut step_us, mut native_us) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for _ in 0..PER_ROUND {
            let t = Instant::now();
            rt.run_step(&plugin, "{}", &step_config)
                .await
                .expect("step");
            step_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        for _ in 0..PER_ROUND {
            let t = Instant::now();
            native_get(addr).await;
            native_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    step_us.sort_by(f64::total_cmp);
    native_us.sort_by(f64::total_cmp);
    let (s50, s99) = (percentile(&step_us, 0.5), percentile(&step_us, 0.99));
    let (n50, n99) = (percentile(&native_us, 0.5), percentile(&native_us, 0.99));
    println!(
        "outbound GET from the http-request step          p50={s50:>9.1} us  p99={s99:>9.1} us"
    );
    println!(
        "the same GET from native Rust (hyper)            p50={n50:>9.1} us  p99={n99:>9.1} us"
    );
    println!(
        "step / native                                    p50={:>9.2}x    p99={:>9.2}x",
        s50 / n50,
        s99 / n99
    );
    summary::headline(
        "plugins",
        "outbound GET, step / native, p50",
        format!("{:.2}x ({s50:.0} us / {n50:.0} us)", s50 / n50),
        &format!(
            "p99 {:.2}x ({s99:.0} / {n99:.0} us); loopback, new connection each, {} of each interleaved; the step's figure includes its instantiation",
            s99 / n99,
            ROUNDS * PER_ROUND
        ),
    );
}

fn main() {
    // `cargo bench` passes --bench; any other argument filters sections.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |s: &str| filter.is_empty() || filter.iter().any(|f| s.contains(f.as_str()));
    let build = build_dir();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    println!(
        "# nova plugin benchmarks ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if wants("calls") {
        rt.block_on(bench_calls(&build));
    }
    if wants("reload") {
        rt.block_on(bench_reload(&build));
    }
    if wants("compile") {
        rt.block_on(bench_compile(&build));
    }
    if wants("big") {
        bench_compile_big(&build);
    }
    if wants("dev") {
        rt.block_on(bench_dev());
    }
    if wants("outbound") {
        rt.block_on(bench_outbound(&build));
    }
}
