//! Faults under load: a worker killed with SIGKILL in the middle of runs,
//! and Redis restarting (without persistence, so losing its streams).
//! Every accepted run must finish, each step recorded exactly once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nova_tests::{Backend, Nova, Options, plugin, test_plugin, unique};
use serde_json::{Value, json};

const RUNS: usize = 40;

fn workflow(n: usize) -> Value {
    json!({
        "steps": [
            // ~tens of ms of work, so that runs are in flight when the
            // fault strikes.
            {"plugin": "slow", "config": {"iterations": 30_000_000u64}},
            {"plugin": "template", "config": {"template": format!("{{\"n\": {n}, \"done\": {{{{ done|tojson }}}}}}"), "output": "json"}},
            {"plugin": "template", "config": {"template": "{\"n\": {{ n + 1 }}}", "output": "json"}},
        ],
        "input": null,
    })
}

/// Every run finished, succeeded, and recorded each step exactly once with
/// the output the chain implies.
async fn assert_all_finished_once(api: &Nova, ids: &[(usize, String)]) {
    for (n, id) in ids {
        let run = api.wait_run(id, 60).await;
        assert_eq!(run["status"], "succeeded", "run {n}: {run}");
        assert_eq!(run["output"], json!({"n": n + 1}), "run {n}: {run}");
        let steps = run["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        for step in steps {
            assert_eq!(step["status"], "succeeded", "run {n}: {run}");
            assert!(step["output"].is_object(), "run {n}: {run}");
            assert!(step["finished_at"].is_string());
        }
        assert_eq!(
            steps[0]["output"],
            json!({"done": true, "version": "1.0.0"})
        );
    }
}

/// A plugin directory with the two plugins of `workflow`, for hosts to
/// share.
fn shared_plugins() -> tempfile::TempDir {
    let shared = tempfile::tempdir().unwrap();
    for (name, file) in [
        ("slow", test_plugin("slow-step")),
        ("template", plugin("template")),
    ] {
        std::fs::copy(file, shared.path().join(format!("{name}.wasm"))).unwrap();
    }
    shared
}

/// Submits `RUNS` runs through `api`; their numbers and ids.
async fn submit_all(api: &Nova) -> Vec<(usize, String)> {
    let mut ids = Vec::new();
    for n in 0..RUNS {
        let (status, answer) = api.submit(&workflow(n)).await;
        assert_eq!(status, 202, "{answer}");
        ids.push((n, answer["id"].as_str().unwrap().to_owned()));
    }
    ids
}

/// Waits until at least `done` runs succeeded, and not all of them: the
/// moment to strike, with runs finished and others in flight.
async fn wait_for_progress(api: &Nova, done: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = api.get_json("/workflows?status=succeeded&limit=100").await;
        let finished = page["runs"].as_array().unwrap().len();
        if finished >= done {
            assert!(
                finished < RUNS,
                "all runs finished before the fault; make them slower"
            );
            return;
        }
        assert!(Instant::now() < deadline, "the worker made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn plugins(options: Options) -> Options {
    options
        .plugin("slow", test_plugin("slow-step"))
        .plugin("template", plugin("template"))
}

#[tokio::test]
async fn a_killed_worker_loses_no_run() {
    let backend = Backend::postgres_redis();
    let shared = shared_plugins();
    let role = |role: &str| {
        Options::default()
            .backend(&backend)
            .shared_plugins_dir(shared.path())
            .env("NOVA_ROLE", role)
            .env("NOVA_LEASE_MS", "1500")
            .env("NOVA_WORKERS", "4")
    };
    let api = Nova::start(role("api")).await;
    let mut doomed = Nova::start(role("worker")).await;

    let ids = submit_all(&api).await;
    // Kill the only worker once it has finished some runs and holds others.
    wait_for_progress(&api, 4).await;
    doomed.kill();

    let _survivor = Nova::start(role("worker")).await;
    assert_all_finished_once(&api, &ids).await;
}

#[tokio::test]
async fn a_stopped_worker_hands_its_runs_back() {
    let backend = Backend::postgres_redis();
    let shared = shared_plugins();
    // A lease far longer than the test: a run the stopping worker kept
    // would stay stuck, so every run finishing means it handed them back.
    let role = |role: &str| {
        Options::default()
            .backend(&backend)
            .shared_plugins_dir(shared.path())
            .env("NOVA_ROLE", role)
            .env("NOVA_LEASE_MS", "600000")
            .env("NOVA_WORKERS", "4")
            .env("NOVA_KNOWLEDGE", "false")
    };
    let api = Nova::start(role("api")).await;
    let mut stopping = Nova::start(role("worker")).await;
    let ids = submit_all(&api).await;
    wait_for_progress(&api, 2).await;
    let status = stopping.terminate(Duration::from_secs(45));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM: the worker exits 0 once its steps in flight are done: {status:?}"
    );

    let _next = Nova::start(role("worker")).await;
    assert_all_finished_once(&api, &ids).await;
    // The steps in flight at the stop finished there; none ran again.
    for (n, id) in &ids {
        let run = api.wait_run(id, 0).await;
        for step in run["steps"].as_array().unwrap() {
            assert_eq!(step["attempts"], 1, "run {n}: {run}");
        }
    }
}

/// A run the queue delivers twice (a hand-back and the sweeper both
/// enqueue it, say) while a worker executes it: another loop of the same
/// worker must not claim it too and run its step a second time at once.
#[tokio::test]
async fn a_run_delivered_twice_runs_its_steps_once() {
    let backend = Backend::postgres_redis();
    let Backend::PostgresRedis { redis_prefix, .. } = &backend else {
        unreachable!()
    };
    let nova = Nova::start(
        plugins(Options::default())
            .backend(&backend)
            .env("NOVA_WORKERS", "4")
            .env("NOVA_LEASE_MS", "600000"),
    )
    .await;
    let (status, answer) = nova
        .submit(&json!({
            "steps": [
                // Seconds of work: the duplicate arrives while it runs.
                {"plugin": "slow", "config": {"iterations": 3_000_000_000u64}, "timeout_ms": 60_000},
                {"plugin": "template", "config": {"template": "{\"after\": {{ done|tojson }}}", "output": "json"}},
            ],
        }))
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = nova.get_json(&format!("/workflows/{id}")).await;
        if run["steps"][0]["status"] == "running" {
            break;
        }
        assert_eq!(run["status"], "queued", "{run}");
        assert!(Instant::now() < deadline, "the step never started: {run}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let added = Command::new("redis-cli")
        .args(["-u", &nova_tests::redis_url(), "XADD"])
        .arg(format!("{redis_prefix}:runs"))
        .args(["*", "run", &id])
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let during = nova.get_json(&format!("/workflows/{id}")).await;
    assert_eq!(
        during["steps"][0]["status"], "running",
        "the duplicate must arrive while the step runs: {during}"
    );

    let run = nova.wait_run(&id, 60).await;

    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"], json!({"after": true}), "{run}");
    for step in run["steps"].as_array().unwrap() {
        assert_eq!(step["attempts"], 1, "{run}");
    }
}

#[tokio::test]
async fn an_embedded_host_resumes_its_runs_after_a_crash() {
    let data = tempfile::tempdir().unwrap();
    let shared = shared_plugins();
    let options = || {
        Options::default()
            .shared_plugins_dir(shared.path())
            .data_dir(data.path())
            .env("NOVA_WORKERS", "1")
            .env("NOVA_LEASE_MS", "1000")
    };
    let mut first = Nova::start(options()).await;
    let ids = submit_all(&first).await;
    // One worker runs them one by one: crash after the first finishes.
    first.wait_run(&ids[0].1, 30).await;
    let last = first.wait_run(&ids[RUNS - 1].1, 0).await;
    assert_ne!(
        last["status"], "succeeded",
        "all runs finished before the crash"
    );
    first.kill();

    // The in-process queue died with the process; the store did not.
    let second = Nova::start(options()).await;
    assert_all_finished_once(&second, &ids).await;
}

/// A sleep step parks its run in the store: the only worker serves other
/// runs meanwhile, and the sleep ends on time after the host is killed and
/// started again, on both backends.
#[tokio::test]
async fn a_sleep_holds_no_worker_and_survives_a_kill() {
    for backend in [Backend::Embedded, Backend::postgres_redis()] {
        let name = backend.name();
        let data = tempfile::tempdir().unwrap();
        let shared = shared_plugins();
        let options = || {
            let options = Options::default()
                .backend(&backend)
                .shared_plugins_dir(shared.path())
                .env("NOVA_WORKERS", "1")
                .env("NOVA_LEASE_MS", "1000");
            match backend {
                Backend::Embedded => options.data_dir(data.path()),
                _ => options,
            }
        };
        let mut first = Nova::start(options()).await;
        let (status, answer) = first
            .submit(&json!({
                "steps": [
                    {"id": "before", "plugin": "template", "config": {"template": "{\"n\": {{ n + 1 }}}", "output": "json"}},
                    {"id": "nap", "sleep": "PT4S"},
                    {"id": "after", "plugin": "template", "config": {"template": "{\"n\": {{ n + 10 }}}", "output": "json"}},
                ],
                "input": {"n": 1},
            }))
            .await;
        assert_eq!(status, 202, "{answer}");
        let id = answer["id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(20);
        let asleep = loop {
            let run = first.wait_run(&id, 0).await;
            if run["steps"][1]["wake_at"].is_string() {
                break run;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: the sleep never started: {run}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(asleep["steps"][1]["status"], "running", "{asleep}");
        // The one worker is free: another run finishes while this sleeps.
        let (status, other) = first
            .submit(&json!({"steps": [{"plugin": "template", "config": {"template": "x"}}]}))
            .await;
        assert_eq!(status, 202, "{other}");
        let other = first.wait_run(other["id"].as_str().unwrap(), 10).await;
        assert_eq!(other["status"], "succeeded", "{name}: {other}");
        assert_eq!(
            first.wait_run(&id, 0).await["status"],
            "running",
            "{name}: still asleep when the other run finished"
        );

        first.kill();
        let second = Nova::start(options()).await;
        let run = second.wait_run(&id, 30).await;
        assert_eq!(run["status"], "succeeded", "{name}: {run}");
        assert_eq!(run["output"], json!({"n": 12}), "{name}: {run}");
        let nap = &run["steps"][1];
        assert_eq!(nap["status"], "succeeded", "{run}");
        assert_eq!(nap["attempts"], 1, "{run}");
        assert_eq!(
            nap["output"],
            json!({"n": 2}),
            "a sleep passes its input on: {run}"
        );
        assert_eq!(nap["wake_at"], asleep["steps"][1]["wake_at"], "{run}");
        assert!(
            nap["finished_at"].as_str() >= nap["wake_at"].as_str(),
            "{name}: woke early: {run}"
        );
    }
}

/// Ticks missed while no host ran: `skip` starts nothing for them, `one`
/// starts one; the schedule goes on after the restart.
#[tokio::test]
async fn missed_ticks_are_skipped_or_caught_up_once() {
    let data = tempfile::tempdir().unwrap();
    let shared = shared_plugins();
    let options = || {
        Options::default()
            .shared_plugins_dir(shared.path())
            .data_dir(data.path())
            .env("NOVA_KNOWLEDGE", "false")
    };
    let mut first = Nova::start(options()).await;
    for catch_up in ["skip", "one"] {
        let definition = json!({
            "steps": [{"plugin": "template", "config": {"template": "tick"}}],
            "schedule": {"cron": "* * * * * *", "catch_up": catch_up},
        });
        let response = first
            .http
            .put(first.url(&format!("/workflows/definitions/{catch_up}")))
            .json(&definition)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    async fn runs(nova: &Nova, name: &str) -> Vec<Value> {
        let page = nova
            .get_json(&format!("/workflows?definition={name}&limit=100"))
            .await;
        page["runs"].as_array().unwrap().clone()
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs(&first, "skip").await.len() < 2 || runs(&first, "one").await.len() < 2 {
        assert!(Instant::now() < deadline, "the schedules did not fire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill();
    // Down for longer than a tick may be late (5 s).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let restarted = unix_ms_now();
    let second = Nova::start(options()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for name in ["skip", "one"] {
        let response = second
            .http
            .delete(second.url(&format!("/workflows/definitions/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }
    for (name, caught_up) in [("skip", 0), ("one", 1)] {
        let mut late = 0;
        let mut after = 0;
        for summary in runs(&second, name).await {
            let run = second.wait_run(summary["id"].as_str().unwrap(), 30).await;
            let tick = nova_tests::unix_ms(run["scheduled_for"].as_str().expect("tick"));
            if let Some(since) = run["input"]["missed_since"].as_str() {
                late += 1;
                assert!(nova_tests::unix_ms(since) < restarted, "{run}");
                assert_eq!(
                    run["input"]["scheduled_for"],
                    run["scheduled_for"]
                        .as_str()
                        .map(|t| t.replace(".000Z", "Z"))
                        .unwrap()
                        .as_str(),
                    "{run}"
                );
            }
            if tick >= restarted {
                after += 1;
            }
        }
        assert_eq!(late, caught_up, "{name}: runs for missed ticks");
        assert!(after >= 1, "{name}: the schedule goes on after the restart");
    }
}

fn unix_ms_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A private Redis on a free port, so restarting it disturbs nobody.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = PrivateRedis { port, child: None };
        redis.launch();
        redis
    }

    fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed by this test");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "private redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn a_redis_restart_loses_no_run() {
    let mut redis = PrivateRedis::start();
    let pg = Backend::postgres_redis();
    let Backend::PostgresRedis { database_url, .. } = &pg else {
        unreachable!()
    };
    let nova = Nova::start(
        plugins(Options::default())
            .env("DATABASE_URL", database_url)
            .env("REDIS_URL", &redis.url())
            .env("NOVA_REDIS_PREFIX", &unique("restart"))
            .env("NOVA_WORKERS", "4"),
    )
    .await;

    let mut ids = Vec::new();
    for n in 0..RUNS {
        if n == RUNS / 2 {
            // Redis goes away with everything queued in it, and returns
            // empty.
            redis.kill();
            tokio::time::sleep(Duration::from_millis(300)).await;
            redis.launch();
        }
        let (status, answer) = nova.submit(&workflow(n)).await;
        assert_eq!(status, 202, "run {n}: {answer}");
        ids.push((n, answer["id"].as_str().unwrap().to_owned()));
    }
    assert_all_finished_once(&nova, &ids).await;
}
