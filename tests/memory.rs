//! The host's memory stays bounded by its configuration whatever callers
//! ask of it: runs with outputs that cost far more to parse than to keep,
//! read alone and in pages, and many large request bodies at once. RSS is
//! read from /proc.

use std::time::Duration;

use nova_tests::{Nova, Options, test_plugin};
use serde_json::{Value, json};

const MIB: u64 = 1 << 20;
/// `[http] max_in_flight_mb` of the host under test.
const IN_FLIGHT_MB: u64 = 32;
/// `[limits] run_bytes`.
const RUN_BYTES: u64 = 16 * MIB;

/// Sends `request` and reads its answer slowly, a chunk every 20 ms: the
/// host must keep what waits for such a reader inside its budget.
async fn slow_answer(request: reqwest::RequestBuilder) -> (u16, String, bool, String) {
    let mut response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let url = response.url().to_string();
    let retry_after = response.headers().contains_key("retry-after");
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("body") {
        body.extend_from_slice(&chunk);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (
        status,
        url,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Sends `request` and reads its whole answer: (status, URL, whether it
/// has Retry-After, body).
async fn answer(request: reqwest::RequestBuilder) -> (u16, String, bool, String) {
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let url = response.url().to_string();
    let retry_after = response.headers().contains_key("retry-after");
    (
        status,
        url,
        retry_after,
        response.text().await.expect("body"),
    )
}

async fn host(dir: &std::path::Path) -> Nova {
    let config = dir.join("nova.toml");
    std::fs::write(
        &config,
        format!(
            "workers = 4\n[http]\nmax_in_flight_mb = {IN_FLIGHT_MB}\n\
             [limits]\nrun_bytes = {RUN_BYTES}\npage_bytes = {}\n",
            8 * MIB
        ),
    )
    .expect("config");
    Nova::start(
        Options::default()
            .env("NOVA_CONFIG", &config.display().to_string())
            .env("NOVA_KNOWLEDGE", "false")
            .plugin("bulk", test_plugin("evil-bulk")),
    )
    .await
}

/// Ten runs whose step outputs 4 MB of `[0,0,…]` (2 million values), then
/// every way of reading them at once (some by slow readers), and 21 bodies
/// of 2 MB at once: the host answers everything (503 with Retry-After is an
/// answer), stays up, and its peak RSS stays within what its limits allow.
#[tokio::test(flavor = "multi_thread")]
async fn reads_and_bodies_stay_within_the_configured_memory() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut nova = host(dir.path()).await;
    let writer = nova.key_client(&["runs:write", "runs:read"]).await;

    let mut ids = Vec::new();
    for _ in 0..10 {
        let response = writer
            .post(nova.url("/workflows"))
            .json(&json!({"steps": [{"plugin": "bulk", "config": {"zeros": 2_000_000}}]}))
            .send()
            .await
            .expect("submit");
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.expect("json");
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        let run = nova.wait_run(id, 60).await;
        assert_eq!(run["status"], "succeeded", "{:.300}", run.to_string());
    }
    // Each kind of request once, one at a time: what the host keeps
    // around after serving them (allocator caches, connections) is the
    // baseline the concurrent load is measured against.
    let big = json!({"steps": [{"plugin": "bulk", "config": {"zeros": 1}}],
                     "input": "x".repeat(2_000_000 - 100)});
    let body = serde_json::to_vec(&big).expect("body");
    for id in &ids {
        let run = writer
            .get(nova.url(&format!("/workflows/{id}")))
            .send()
            .await
            .expect("get");
        assert_eq!(run.status(), 200);
        run.bytes().await.expect("body");
    }
    for query in ["limit=10&include=output", "limit=10&include=input,output"] {
        let page = writer
            .get(nova.url(&format!("/workflows?{query}")))
            .send()
            .await
            .expect("page");
        assert_eq!(page.status(), 200);
        page.bytes().await.expect("body");
    }
    let refused = writer
        .post(nova.url("/workflows"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(
        refused.status(),
        400,
        "an input over limits.run_input_bytes"
    );
    let (baseline, _) = nova.memory();

    let mut calls = Vec::new();
    let mut strangers = Vec::new();
    for round in 0..3 {
        for (i, id) in ids.iter().enumerate() {
            let request = writer.get(nova.url(&format!("/workflows/{id}")));
            if i % 3 == 0 {
                calls.push(tokio::spawn(slow_answer(request)));
            } else {
                calls.push(tokio::spawn(answer(request)));
            }
        }
        for query in [
            "limit=10",
            "limit=10&include=output",
            "limit=10&include=input,output",
        ] {
            let request = writer.get(nova.url(&format!("/workflows?{query}")));
            calls.push(tokio::spawn(answer(request)));
        }
        let _ = round;
    }
    // 21 bodies of 2 MB at once: runs whose input is a long string.
    for _ in 0..21 {
        let request = writer
            .post(nova.url("/workflows"))
            .header("content-type", "application/json")
            .body(body.clone());
        calls.push(tokio::spawn(answer(request)));
        let anonymous = nova
            .anon
            .post(nova.url("/workflows"))
            .header("content-type", "application/json")
            .body(body.clone());
        strangers.push(tokio::spawn(anonymous.send()));
    }
    // A stranger's body is refused before it is read: a 401, or the
    // connection closed under the client while it still sends.
    for call in strangers {
        if let Ok(response) = call.await.expect("join") {
            assert_eq!(response.status(), 401);
        }
    }
    let mut statuses = std::collections::BTreeMap::new();
    let mut pages = 0;
    for call in calls {
        let (status, url, retry_after, text) = call.await.expect("join");
        if status == 503 {
            assert!(retry_after, "a 503 without Retry-After: {text}");
        }
        if status == 200 && url.contains("include=output") {
            let page: Value = serde_json::from_str(&text).expect("page");
            // Paged by bytes: 8 MiB hold two 4 MB outputs, not ten.
            let runs = page["runs"].as_array().expect("runs").len();
            assert!(runs <= 2, "{runs} outputs of 4 MB in one 8 MiB page");
            assert!(page["next_cursor"].is_string());
            pages += 1;
        }
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert!(pages > 0, "no page was served: {statuses:?}");
    for status in statuses.keys() {
        assert!(
            [200, 202, 400, 503].contains(status),
            "unexpected {status}: {statuses:?}"
        );
    }

    assert!(nova.alive(), "the host died");
    let health = nova
        .anon
        .get(nova.url("/health"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let (now, peak) = nova.memory();
    eprintln!(
        "baseline {} MiB, peak {} MiB, now {} MiB; answers {statuses:?}",
        baseline / MIB,
        peak / MIB,
        now / MIB
    );
    // What the limits allow beyond the settled host: the bodies and
    // answers in flight (the budget counts their copies; twice that for
    // what the allocators keep of them), and 64 MiB of slack.
    let allowance = 2 * IN_FLIGHT_MB * MIB + 64 * MIB;
    assert!(
        peak <= baseline + allowance,
        "peak RSS {} MiB over a baseline of {} MiB (allowed {} MiB more); now {} MiB",
        peak / MIB,
        baseline / MIB,
        allowance / MIB,
        now / MIB
    );
}

/// Thirty documents of 1 MB, stored through the shipped store-doc step,
/// then listed by ten runs at once: each listing reads only what fits the
/// host's byte limit for one listing (4 MiB), says where to go on, and the
/// host's peak RSS stays within what its limits allow.
#[tokio::test(flavor = "multi_thread")]
async fn store_listings_stay_within_the_configured_memory() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("nova.toml");
    std::fs::write(&config, "workers = 4\n").expect("config");
    let mut nova = Nova::start(
        Options::default()
            .env("NOVA_CONFIG", &config.display().to_string())
            .env("NOVA_KNOWLEDGE", "false")
            .plugin("store-doc", nova_tests::plugin("store-doc")),
    )
    .await;
    let writer = nova.key_client(&["runs:write", "runs:read"]).await;
    let submit = |workflow: Value| {
        let request = writer.post(nova.url("/workflows")).json(&workflow);
        async move {
            let response = request.send().await.expect("submit");
            assert_eq!(response.status(), 202);
            let body: Value = response.json().await.expect("JSON");
            body["id"].as_str().expect("id").to_owned()
        }
    };
    let value = "x".repeat(1_000_000);
    for i in 0..30 {
        let id = submit(json!({
            "steps": [{"plugin": "store-doc",
                       "config": {"op": "put", "key": format!("big/{i:02}")}}],
            "input": value,
        }))
        .await;
        assert_eq!(nova.wait_run(&id, 60).await["status"], "succeeded");
    }
    let list = json!({"steps": [{"plugin": "store-doc",
                                  "config": {"op": "list", "prefix": "big/", "limit": 1000}}]});
    let first = submit(list.clone()).await;
    let run = nova.wait_run(&first, 60).await;
    assert_eq!(run["status"], "succeeded", "{:.300}", run.to_string());
    let (baseline, _) = nova.memory();

    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(submit(list.clone()).await);
    }
    for id in &ids {
        let run = nova.wait_run(id, 60).await;
        assert_eq!(run["status"], "succeeded");
        let docs = run["output"]["docs"].as_array().expect("docs").len();
        assert!(
            (1..=4).contains(&docs),
            "{docs} documents of 1 MB in one listing"
        );
        assert!(run["output"]["next"].is_string(), "no way to go on");
    }
    assert!(nova.alive());
    let (now, peak) = nova.memory();
    eprintln!(
        "baseline {} MiB, peak {} MiB, now {} MiB",
        baseline / MIB,
        peak / MIB,
        now / MIB
    );
    // Four workers at once, each holding a listing's values (4 MiB) about
    // three times over (the rows, the guest's copy, the step's output),
    // and 64 MiB of slack.
    let allowance = 4 * 3 * 4 * MIB + 64 * MIB;
    assert!(
        peak <= baseline + allowance,
        "peak RSS {} MiB over a baseline of {} MiB (allowed {} MiB more)",
        peak / MIB,
        baseline / MIB,
        allowance / MIB
    );
}
