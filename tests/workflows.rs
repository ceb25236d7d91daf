//! Workflows over HTTP, on the embedded default (SQLite, in-process queue)
//! and on the real Postgres and Redis of this machine.

use std::time::{Duration, Instant};

use nova_tests::{Backend, Nova, Options, plugin, test_plugin};
use serde_json::{Value, json};

async fn host(backend: &Backend) -> Nova {
    Nova::start(
        Options::default()
            .backend(backend)
            .plugin("template", plugin("template"))
            .plugin("markdown", plugin("markdown"))
            .plugin("flaky", test_plugin("flaky"))
            .plugin("slow", test_plugin("slow-step"))
            .env("NOVA_PLUGIN_TIMEOUT_MS", "60000"),
    )
    .await
}

/// A template step that adds `by` to the input's `n`.
fn add(by: u32) -> Value {
    json!({
        "plugin": "template",
        "config": {"template": format!("{{\"n\": {{{{ n + {by} }}}}}}"), "output": "json"}
    })
}

async fn submitted(nova: &Nova, body: Value) -> String {
    let (status, answer) = nova.submit(&body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "queued");
    answer["id"].as_str().expect("id").to_owned()
}

/// Waits until step `index` of run `id` is running.
async fn wait_step_running(nova: &Nova, id: &str, index: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let run = nova.wait_run(id, 0).await;
        if run["steps"][index]["status"] == "running" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "step {index} never started: {run}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asks to cancel run `id`; returns the HTTP status.
async fn cancel(nova: &Nova, id: &str) -> u16 {
    nova.http
        .post(nova.url(&format!("/workflows/{id}/cancel")))
        .send()
        .await
        .expect("cancel")
        .status()
        .as_u16()
}

#[tokio::test]
async fn three_steps_end_to_end() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let id = submitted(
            &nova,
            json!({"steps": [add(1), add(10), add(100)], "input": {"n": 1}}),
        )
        .await;
        let run = nova.wait_run(&id, 30).await;
        assert_eq!(run["status"], "succeeded", "{}: {run}", backend.name());
        assert_eq!(run["output"], json!({"n": 112}));
        assert_eq!(run["input"], json!({"n": 1}));
        assert_eq!(run["error"], Value::Null);
        for field in ["created_at", "started_at", "finished_at"] {
            assert!(run[field].is_string(), "{field}: {run}");
        }
        let steps = run["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        let outputs: Vec<&Value> = steps.iter().map(|s| &s["output"]).collect();
        assert_eq!(
            outputs,
            [&json!({"n": 2}), &json!({"n": 12}), &json!({"n": 112})]
        );
        for step in steps {
            assert_eq!(step["status"], "succeeded");
            assert_eq!(step["attempts"], 1);
            assert_eq!(step["plugin"], "template");
            assert_eq!(step["plugin_version"], "0.1.0");
            assert!(step["duration_ms"].as_f64().unwrap() >= 0.0);
            assert!(step["finished_at"].is_string());
        }
    }
}

#[tokio::test]
async fn retries_then_success_and_retries_exhausted() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let ok = submitted(
            &nova,
            json!({"steps": [{"plugin": "flaky", "config": {"key": "a", "fail_times": 2}, "retries": 3}], "input": "x"}),
        )
        .await;
        let run = nova.wait_run(&ok, 30).await;
        assert_eq!(run["status"], "succeeded", "{}: {run}", backend.name());
        assert_eq!(run["output"], json!({"attempts": 3, "input": "x"}));
        assert_eq!(run["steps"][0]["attempts"], 3);

        let bad = submitted(
            &nova,
            json!({"steps": [{"plugin": "flaky", "config": {"key": "b", "fail_times": 5}, "retries": 1}, add(1)]}),
        )
        .await;
        let run = nova.wait_run(&bad, 30).await;
        assert_eq!(run["status"], "failed", "{}: {run}", backend.name());
        let error = run["error"].as_str().unwrap();
        assert!(error.contains("step 0 (flaky) failed"), "{error}");
        assert!(error.contains("attempt 2 fails on purpose"), "{error}");
        assert_eq!(run["steps"][0]["status"], "failed");
        assert_eq!(run["steps"][0]["attempts"], 2);
        assert_eq!(
            run["steps"][1]["status"], "pending",
            "later steps never ran"
        );
    }
}

#[tokio::test]
async fn a_step_timeout_fails_the_run() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let id = submitted(
            &nova,
            json!({"steps": [{"plugin": "slow", "config": {"iterations": 100_000_000_000u64}, "timeout_ms": 300}]}),
        )
        .await;
        let run = nova.wait_run(&id, 30).await;
        assert_eq!(run["status"], "failed", "{}: {run}", backend.name());
        assert!(
            run["error"]
                .as_str()
                .unwrap()
                .contains("time limit of 300 ms"),
            "{run}"
        );
        assert!(
            run["steps"][0]["duration_ms"].as_f64().unwrap() < 5_000.0,
            "{run}"
        );
    }
}

#[tokio::test]
async fn cancel_interrupts_a_running_step() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let id = submitted(
            &nova,
            json!({"steps": [{"plugin": "slow", "config": {"iterations": 100_000_000_000u64}}, add(1)]}),
        )
        .await;
        wait_step_running(&nova, &id, 0).await;
        let start = Instant::now();
        assert_eq!(cancel(&nova, &id).await, 200);
        let run = nova.wait_run(&id, 30).await;
        assert_eq!(run["status"], "cancelled", "{}: {run}", backend.name());
        assert_eq!(run["steps"][0]["status"], "cancelled");
        // The step that never ran is cancelled with its run.
        assert_eq!(run["steps"][1]["status"], "cancelled");
        assert_eq!(run["steps"][1]["attempts"], 0);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the step was not interrupted"
        );

        // Cancelling a finished run is a conflict; an unknown one, 404.
        assert_eq!(cancel(&nova, &id).await, 200, "cancelled stays cancelled");
        let done = submitted(&nova, json!({"steps": [add(1)], "input": {"n": 0}})).await;
        nova.wait_run(&done, 30).await;
        assert_eq!(cancel(&nova, &done).await, 409);
        let missing = "0190f4c2-0000-7000-8000-000000000000";
        assert_eq!(cancel(&nova, missing).await, 404);
    }
}

#[tokio::test]
async fn idempotency_keys_return_the_same_run() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let body = json!({"steps": [add(1)], "input": {"n": 1}, "idempotency_key": "order-42"});
        let (first, a) = nova.submit(&body).await;
        let (second, b) = nova.submit(&body).await;
        assert_eq!(first, 202, "{a}");
        assert_eq!(second, 200, "{b}");
        assert_eq!(a["id"], b["id"], "{}", backend.name());
        let list = nova.get_json("/workflows?limit=100").await;
        assert_eq!(list["runs"].as_array().unwrap().len(), 1, "{list}");
        // The plugin gone since: a repeat still finds its run.
        let removed = nova
            .admin(reqwest::Method::DELETE, "/admin/plugins/template")
            .send()
            .await
            .unwrap();
        assert!(removed.status().is_success(), "{}", removed.status());
        let (third, c) = nova.submit(&body).await;
        assert_eq!(third, 200, "{c}");
        assert_eq!(c["id"], a["id"]);
    }
}

#[tokio::test]
async fn invalid_submissions_are_refused_with_the_reason() {
    let backend = Backend::Embedded;
    let nova = host(&backend).await;
    let many: Vec<Value> = (0..65).map(|_| add(1)).collect();
    let cases = [
        (
            json!({"steps": [{"plugin": "nope"}]}),
            "no plugin named \"nope\"",
        ),
        (
            json!({"steps": [{"plugin": "markdown"}]}),
            "is a loader, not a step",
        ),
        (json!({"steps": []}), "at least one step"),
        (json!({"steps": many}), "at most 64 steps"),
        (json!({"steps": [add(1)], "bogus": 1}), "unknown field"),
        (
            json!({"steps": [{"plugin": "template", "config": 3}]}),
            "config must be a JSON object",
        ),
    ];
    for (body, words) in cases {
        let (status, answer) = nova.submit(&body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(words),
            "{answer}"
        );
    }
    let response = nova
        .http
        .post(nova.url("/workflows"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "invalid_json");
}

#[tokio::test]
async fn runs_are_listed_by_status_with_a_cursor() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(submitted(&nova, json!({"steps": [add(1)], "input": {"n": n}})).await);
        }
        let failing = submitted(
            &nova,
            json!({"steps": [{"plugin": "flaky", "config": {"key": "z", "fail_times": 9}}]}),
        )
        .await;
        for id in ids.iter().chain([&failing]) {
            nova.wait_run(id, 30).await;
        }
        let page = nova.get_json("/workflows?status=succeeded&limit=3").await;
        let first: Vec<&str> = page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(first.len(), 3, "{page}");
        let cursor = page["next_cursor"].as_str().expect("a next page");
        let page = nova
            .get_json(&format!(
                "/workflows?status=succeeded&limit=3&cursor={cursor}"
            ))
            .await;
        let second: Vec<&str> = page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(second.len(), 2, "{page}");
        let mut all: Vec<&str> = first.into_iter().chain(second).collect();
        all.sort();
        let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
        expected.sort();
        assert_eq!(all, expected, "{}", backend.name());
        let failed = nova.get_json("/workflows?status=failed").await;
        assert_eq!(failed["runs"][0]["id"], failing.as_str());
        let response = nova
            .http
            .get(nova.url("/workflows?status=nonsense"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }
}

#[tokio::test]
async fn later_steps_use_a_plugin_replaced_mid_run_and_record_its_version() {
    for backend in Backend::all() {
        let nova = Nova::start(
            Options::default()
                .backend(&backend)
                .plugin("hello", test_plugin("hello-v1"))
                .plugin("slow", test_plugin("slow-step"))
                .env("NOVA_PLUGIN_TIMEOUT_MS", "60000"),
        )
        .await;
        let id = submitted(
            &nova,
            json!({"steps": [
                {"plugin": "hello"},
                {"plugin": "slow", "config": {"iterations": 3_000_000_000u64}},
                {"plugin": "hello"},
            ], "input": 1}),
        )
        .await;
        wait_step_running(&nova, &id, 1).await;
        nova.install("hello", &test_plugin("hello-v2"));
        nova.wait_for("hello", "v2 serving", |e| e["version"] == "2.0.0")
            .await;
        let during = nova.wait_run(&id, 0).await;
        assert_eq!(
            during["steps"][1]["status"], "running",
            "replaced too late to tell: {during}"
        );

        let run = nova.wait_run(&id, 60).await;
        assert_eq!(run["status"], "succeeded", "{}: {run}", backend.name());
        assert_eq!(run["steps"][0]["plugin_version"], "1.0.0");
        assert_eq!(run["steps"][2]["plugin_version"], "2.0.0");
        assert_eq!(run["output"]["version"], "2.0.0");
    }
}
