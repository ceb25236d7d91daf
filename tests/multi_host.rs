//! Several `nova serve` processes over one Postgres and one Redis, each
//! with its own port, data directory and plugin directory: plugins
//! uploaded through one host's admin API reach every host, and a load of
//! runs survives a worker host killed midway.

use std::time::{Duration, Instant};

use nova_tests::{Backend, Nova, Options, plugin, sha256_file, test_plugin};
use reqwest::Method;
use serde_json::{Value, json};

/// Generous against a loaded machine: the notification itself takes
/// milliseconds; the test prints how long each change took.
const CONVERGE: Duration = Duration::from_secs(10);

fn host(backend: &Backend, role: &str) -> Options {
    Options::default()
        .backend(backend)
        .env("NOVA_ROLE", role)
        .env("NOVA_KNOWLEDGE", "false")
}

async fn upload(host: &Nova, name: &str, file: &std::path::Path) -> Value {
    let response = host
        .admin(Method::PUT, &format!("/admin/plugins/{name}"))
        .body(std::fs::read(file).unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "upload {name}: {status} {body}");
    body
}

/// The sha256 each host serves `name` with (None: not serving it).
async fn served(hosts: &[&Nova], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for host in hosts {
        out.push(
            host.entry(name)
                .await
                .filter(|e| e["serving"] == true)
                .and_then(|e| e["sha256"].as_str().map(str::to_owned)),
        );
    }
    out
}

/// Waits until every host serves `name` with `sha256` (or none, for
/// None); returns how long it took.
async fn converge(hosts: &[&Nova], name: &str, sha256: Option<&str>) -> Duration {
    let start = Instant::now();
    let want = vec![sha256.map(str::to_owned); hosts.len()];
    loop {
        let now = served(hosts, name).await;
        if now == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{name}: hosts serve {now:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn plugins_uploaded_to_one_host_reach_every_host() {
    let backend = Backend::postgres_redis();
    let a = Nova::start(host(&backend, "api")).await;
    let b = Nova::start(host(&backend, "worker")).await;
    let c = Nova::start(host(&backend, "all")).await;
    let v1 = test_plugin("hello-v1");
    let v2 = test_plugin("hello-v2");
    let (sha1, sha2) = (sha256_file(&v1), sha256_file(&v2));

    // Uploaded to one host: every host serves it, from its own directory.
    let answer = upload(&a, "hello", &v1).await;
    assert_eq!(answer["sha256"], sha1.as_str());
    let took = converge(&[&a, &b, &c], "hello", Some(&sha1)).await;
    println!("upload reached 3 hosts in {took:?}");
    for h in [&b, &c] {
        assert_eq!(
            sha256_file(&h.plugins_dir.join("hello.wasm")),
            sha1,
            "the file is in each host's own plugin directory"
        );
    }
    let (status, out) = b
        .invoke_step("hello", &json!({"name": "fleet"}), None)
        .await;
    assert_eq!(status, 200, "{out}");

    // A new version through another host replaces it everywhere.
    upload(&b, "hello", &v2).await;
    let took = converge(&[&a, &b, &c], "hello", Some(&sha2)).await;
    println!("replacement reached 3 hosts in {took:?}");

    // A host that starts later catches up before it says ready.
    let (late_data, late_plugins) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let late_host = || {
        host(&backend, "worker")
            .data_dir(late_data.path())
            .shared_plugins_dir(late_plugins.path())
    };
    let mut late = Nova::start(late_host()).await;
    assert_eq!(served(&[&late], "hello").await, vec![Some(sha2.clone())]);

    // A removal while a host is down reaches it when it comes back.
    late.kill();
    let removed = c
        .admin(Method::DELETE, "/admin/plugins/hello")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 200);
    let took = converge(&[&a, &b, &c], "hello", None).await;
    println!("removal reached 3 hosts in {took:?}");
    assert!(!a.plugins_dir.join("hello.wasm").exists());
    assert!(late_plugins.path().join("hello.wasm").exists());
    let late = Nova::start(late_host()).await;
    assert_eq!(served(&[&late], "hello").await, vec![None]);
    assert!(!late_plugins.path().join("hello.wasm").exists());

    // A file put in one host's directory stays that host's own.
    a.install("local-only", &v1);
    a.wait_for("local-only", "loaded", |e| e["serving"] == true)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(served(&[&b, &c, &late], "local-only").await, vec![None; 3]);
}

const RUNS: usize = 60;

fn workflow(n: usize) -> Value {
    json!({
        "steps": [
            // Tens of ms of work, so runs are in flight when a host dies.
            {"plugin": "slow", "config": {"iterations": 30_000_000u64}},
            {"plugin": "template", "config": {"template": format!("{{\"n\": {n}}}"), "output": "json"}},
            {"plugin": "template", "config": {"template": "{\"n\": {{ n + 1 }}}", "output": "json"}},
        ],
        "input": null,
        "idempotency_key": format!("multi-host-{n}"),
    })
}

#[tokio::test]
async fn a_worker_host_killed_midway_loses_no_run() {
    let backend = Backend::postgres_redis();
    let worker = || {
        host(&backend, "worker")
            .env("NOVA_LEASE_MS", "1500")
            .env("NOVA_WORKERS", "4")
    };
    let api = Nova::start(host(&backend, "api")).await;
    let mut doomed = Nova::start(worker()).await;
    let survivor = Nova::start(worker()).await;

    // The plugins reach the workers through the api host's admin API.
    let slow = test_plugin("slow-step");
    let template = plugin("template");
    upload(&api, "slow", &slow).await;
    upload(&api, "template", &template).await;
    let hosts = [&api, &doomed, &survivor];
    converge(&hosts, "slow", Some(&sha256_file(&slow))).await;
    converge(&hosts, "template", Some(&sha256_file(&template))).await;

    let mut ids = Vec::new();
    for n in 0..RUNS {
        let (status, answer) = api.submit(&workflow(n)).await;
        assert_eq!(status, 202, "{answer}");
        ids.push((n, answer["id"].as_str().unwrap().to_owned()));
    }
    // Kill one worker host once some runs are done and others in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = api.get_json("/workflows?status=succeeded&limit=100").await;
        let finished = done["runs"].as_array().unwrap().len();
        if finished >= 6 {
            assert!(finished < RUNS, "all runs finished before the kill");
            break;
        }
        assert!(Instant::now() < deadline, "the workers made no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    doomed.kill();

    for (n, id) in &ids {
        let run = api.wait_run(id, 60).await;
        assert_eq!(run["status"], "succeeded", "run {n}: {run}");
        assert_eq!(run["output"], json!({"n": n + 1}), "run {n}: {run}");
        let steps = run["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3, "run {n}: {run}");
        for step in steps {
            assert_eq!(step["status"], "succeeded", "run {n}: {run}");
            assert!(step["finished_at"].is_string(), "run {n}: {run}");
        }
        // Resubmitting finds the same, finished run: nothing ran twice
        // under a new id.
        let (status, again) = api.submit(&workflow(*n)).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["id"], id.as_str());
    }
    let runs = api.get_json("/workflows?limit=100").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), RUNS);
}

/// A schedule due every second, on three hosts sharing one Postgres and
/// Redis: each tick starts exactly one run, none skipped, none twice.
#[tokio::test]
async fn each_tick_of_a_schedule_starts_one_run_across_three_hosts() {
    let backend = Backend::postgres_redis();
    let start = || {
        Nova::start(
            Options::default()
                .backend(&backend)
                .plugin("template", plugin("template"))
                .env("NOVA_KNOWLEDGE", "false"),
        )
    };
    let (a, b, c) = tokio::join!(start(), start(), start());
    let definition = json!({
        "steps": [{"plugin": "template", "config": {"template": "{\"at\": {{ scheduled_for|tojson }}}", "output": "json"}}],
        "schedule": {"cron": "* * * * * *", "timezone": "Europe/Madrid"},
    });
    let response = a
        .admin(Method::PUT, "/workflows/definitions/tick")
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = b.get_json("/workflows?definition=tick&limit=100").await;
        if page["runs"].as_array().unwrap().len() >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule did not fire: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = c
        .admin(Method::DELETE, "/workflows/definitions/tick")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    // A tick being fired as the schedule went keeps its run.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let page = a.get_json("/workflows?definition=tick&limit=100").await;
    let mut ticks = Vec::new();
    for summary in page["runs"].as_array().unwrap() {
        let run = a.wait_run(summary["id"].as_str().unwrap(), 30).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        let at = run["scheduled_for"].as_str().expect("scheduled_for");
        assert_eq!(
            nova_tests::unix_ms(run["output"]["at"].as_str().unwrap()),
            nova_tests::unix_ms(at),
            "the run's input names its tick: {run}"
        );
        ticks.push(nova_tests::unix_ms(at));
    }
    ticks.sort_unstable();
    assert!(ticks.len() >= 5, "{ticks:?}");
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1000,
            "one run per tick, none missed: {ticks:?}"
        );
    }
    // Nothing fires once the definition is gone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = a.get_json("/workflows?definition=tick&limit=100").await;
    assert_eq!(
        after["runs"].as_array().unwrap().len(),
        ticks.len(),
        "{after}"
    );
}

/// A definition with a DAG, a for_each, a condition and a sleep, saved and
/// run through an api host, executed by a separate worker host.
#[tokio::test]
async fn a_saved_dag_runs_on_split_api_and_worker_hosts() {
    let backend = Backend::postgres_redis();
    let role = |role: &str| host(&backend, role).plugin("template", plugin("template"));
    let (api, _worker) = tokio::join!(Nova::start(role("api")), Nova::start(role("worker")));
    let yaml = "\
steps:
  - id: split
    plugin: template
    config: {template: '{\"words\": {{ words|tojson }}}', output: json}
  - id: shout
    for_each: $.steps.split.output.words
    concurrency: 2
    plugin: template
    config: {template: '{{ word|upper }}'}
    input: {word: $.item}
  - id: count
    needs: [split]
    plugin: template
    config: {template: '{\"n\": {{ words|length }}}', output: json}
  - id: never
    needs: [split]
    if: $.input.never
    plugin: template
    config: {template: x}
  - id: nap
    needs: [shout, count, never]
    sleep: 2s
output:
  words: $.steps.shout.output[*].text
  n: $.steps.count.output.n
  skipped: $.steps.never.output
";
    let response = api
        .admin(Method::PUT, "/workflows/definitions/shout")
        .header("content-type", "application/yaml")
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let response = api
        .admin(Method::POST, "/workflows/definitions/shout/runs")
        .json(&json!({"input": {"words": ["a", "b", "c"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = api.wait_run(&id, 60).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["output"],
        json!({"words": ["A", "B", "C"], "n": 3, "skipped": null}),
        "{run}"
    );
    let statuses: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "succeeded",
            "succeeded",
            "succeeded",
            "skipped",
            "succeeded"
        ]
    );
    assert_eq!(run["definition_version"], 1);
}
