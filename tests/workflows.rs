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

// ------------------------------------------------------------ workflows v2

/// A template step rendering `template` as JSON, with optional extra
/// fields (id, needs, input, if, for_each, …).
fn render(template: &str, extra: Value) -> Value {
    let mut step = json!({
        "plugin": "template",
        "config": {"template": template, "output": "json"}
    });
    if let (Some(step), Some(extra)) = (step.as_object_mut(), extra.as_object()) {
        step.extend(extra.clone());
    }
    step
}

fn slow(id: &str, iterations: u64) -> Value {
    json!({"id": id, "needs": [], "plugin": "slow", "config": {"iterations": iterations}, "timeout_ms": 60_000})
}

fn millis(run: &Value, step: usize, field: &str) -> i64 {
    let text = run["steps"][step][field].as_str().expect("a timestamp");
    let parsed = nova_tests::unix_ms(text);
    assert!(parsed > 0, "{field} of step {step}: {run}");
    parsed
}

#[tokio::test]
async fn independent_steps_run_at_once_and_a_join_reads_both() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let id = submitted(
            &nova,
            json!({
                "steps": [
                    slow("left", 150_000_000),
                    slow("right", 150_000_000),
                    render(
                        "{\"n\": {{ n }}, \"left\": {{ left|tojson }}, \"right\": {{ right|tojson }}}",
                        json!({
                            "id": "join",
                            "needs": ["left", "right"],
                            "input": {
                                "n": "$.input.n",
                                "left": "$.steps.left.output.done",
                                "right": "$.steps.right.output.version",
                            }
                        }),
                    ),
                ],
                "input": {"n": 7},
            }),
        )
        .await;
        let run = nova.wait_run(&id, 60).await;
        let name = backend.name();
        assert_eq!(run["status"], "succeeded", "{name}: {run}");
        assert_eq!(
            run["output"],
            json!({"n": 7, "left": true, "right": "1.0.0"}),
            "{name}: {run}"
        );
        let ids: Vec<&str> = run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["left", "right", "join"]);
        // The two roots ran at the same time: each started before the
        // other finished.
        let (l0, l1) = (
            millis(&run, 0, "started_at"),
            millis(&run, 0, "finished_at"),
        );
        let (r0, r1) = (
            millis(&run, 1, "started_at"),
            millis(&run, 1, "finished_at"),
        );
        assert!(
            l0 < r1 && r0 < l1,
            "{name}: the roots did not overlap: {run}"
        );
        // The join started once both were done, on what its expressions
        // read, recorded.
        assert!(millis(&run, 2, "started_at") >= l1.max(r1), "{name}: {run}");
        assert_eq!(
            run["steps"][2]["input"],
            json!({"n": 7, "left": true, "right": "1.0.0"})
        );
        assert!(run["steps"][0].get("input").is_none(), "{run}");
    }
}

#[tokio::test]
async fn conditions_skip_and_for_each_maps_in_order() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let id = submitted(
            &nova,
            json!({
                "steps": [
                    render("{\"items\": {{ items|tojson }}}", json!({"id": "list"})),
                    render(
                        "{\"y\": {{ x * 10 }}, \"i\": {{ i }}}",
                        json!({
                            "id": "times",
                            "for_each": "$.steps.list.output.items",
                            "concurrency": 2,
                            "input": {"x": "$.item", "i": "$.index"},
                        }),
                    ),
                    render(
                        "{\"never\": true}",
                        json!({"id": "never", "needs": ["list"], "if": "$.input.flag"}),
                    ),
                    render(
                        "{\"ran\": true}",
                        json!({"id": "always", "needs": ["list"], "if": "$.input.items[0]"}),
                    ),
                ],
                "input": {"items": [3, 1, 2, 5, 4], "flag": false},
                "output": {
                    "ys": "$.steps.times.output[*].y",
                    "never": "$.steps.never.output",
                    "always": "$.steps.always.output.ran",
                    "literal": "$$.kept",
                },
            }),
        )
        .await;
        let run = nova.wait_run(&id, 60).await;
        let name = backend.name();
        assert_eq!(run["status"], "succeeded", "{name}: {run}");
        assert_eq!(
            run["output"],
            json!({"ys": [30, 10, 20, 50, 40], "never": null, "always": true, "literal": "$.kept"}),
            "{name}: {run}"
        );
        let times = &run["steps"][1];
        assert_eq!(times["output"][3], json!({"y": 50, "i": 3}), "{run}");
        let items = times["items"].as_array().expect("items");
        assert_eq!(items.len(), 5, "{run}");
        for item in items {
            assert_eq!(item["status"], "succeeded", "{run}");
            assert_eq!(item["attempts"], 1, "{run}");
        }
        assert_eq!(times["input"], json!([3, 1, 2, 5, 4]), "{run}");
        assert_eq!(run["steps"][2]["status"], "skipped", "{run}");
        assert_eq!(run["steps"][2]["output"], Value::Null, "{run}");
        assert_eq!(run["steps"][3]["status"], "succeeded", "{run}");
    }
}

#[tokio::test]
async fn a_failed_element_fails_its_step_and_the_run() {
    let nova = host(&Backend::Embedded).await;
    let id = submitted(
        &nova,
        json!({
            "steps": [{
                "id": "each",
                "plugin": "template",
                "config": {"template": "{{ v }}", "strict": true},
                "for_each": "$.input",
                "concurrency": 1,
            }],
            "input": [{"v": 1}, {"w": 2}, {"v": 3}],
        }),
    )
    .await;
    let run = nova.wait_run(&id, 30).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("element 1"),
        "{run}"
    );
    let items = run["steps"][0]["items"].as_array().expect("items");
    assert_eq!(items[0]["status"], "succeeded", "{run}");
    assert_eq!(items[1]["status"], "failed", "{run}");
    assert!(items[1]["error"].as_str().unwrap().contains('v'), "{run}");
    // One at a time: the element after the failure never started.
    assert_eq!(items[2]["status"], "cancelled", "{run}");
}

#[tokio::test]
async fn bad_flows_are_refused_with_the_place_of_the_fault() {
    let nova = host(&Backend::Embedded).await;
    let step = |extra: Value| render("{}", extra);
    let cases = [
        (
            json!({"steps": [step(json!({"id": "a", "needs": ["b"]})), step(json!({"id": "b", "needs": ["a"]}))]}),
            "steps[0].needs: the steps need each other in a cycle: a → b → a",
        ),
        (
            json!({"steps": [step(json!({"id": "a", "needs": ["nope"]}))]}),
            "steps[0].needs[0]: no step has the id \"nope\"",
        ),
        (
            json!({"steps": [step(json!({"id": "a"})), step(json!({"id": "a"}))]}),
            "steps[1].id: \"a\" is used twice",
        ),
        (
            json!({"steps": [step(json!({"id": "9lives"}))]}),
            "steps[0].id: \"9lives\" is not a step id",
        ),
        (
            json!({"steps": [step(json!({"input": {"user": ["$.input["]}}))]}),
            "steps[0].input.user[0]: \"$.input[\" is not a valid JSONPath query",
        ),
        (
            json!({"steps": [step(json!({"id": "a", "needs": []})), step(json!({"id": "b", "needs": [], "input": "$.steps.a.output"}))]}),
            "steps[1].input: $.steps.a.output reads step \"a\", which b does not need",
        ),
        (
            json!({"steps": [step(json!({"input": "$.item"}))]}),
            "steps[0].input: $.item reads the element of a for_each",
        ),
        (
            json!({"steps": [step(json!({"for_each": "$.input", "concurrency": 0}))]}),
            "steps[0].concurrency: 0 is out of range",
        ),
        (
            json!({"steps": [step(json!({"if": "input.flag"}))]}),
            "steps[0].if: \"input.flag\" is not a JSONPath query",
        ),
        (
            json!({"steps": [step(json!({}))], "output": "$.steps.ghost.output"}),
            "output: $.steps.ghost.output reads step \"ghost\", and no step has that id",
        ),
        (
            json!({"steps": [step(json!({}))], "max_parallel": 65}),
            "max_parallel: 65 is out of range",
        ),
    ];
    for (body, words) in cases {
        let (status, answer) = nova.submit(&body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{words:?} not in {message:?}");
    }
}

async fn put_definition(nova: &Nova, name: &str, content_type: &str, body: &str) -> (u16, Value) {
    let response = nova
        .http
        .put(nova.url(&format!("/workflows/definitions/{name}")))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("put");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post_json(nova: &Nova, path: &str, body: &Value) -> (u16, Value) {
    let response = nova
        .http
        .post(nova.url(path))
        .json(body)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn definitions_are_versioned_run_by_name_and_deleted() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let name = backend.name();
        let first = json!({
            "description": "adds one",
            "steps": [add(1)],
        });
        let (status, saved) =
            put_definition(&nova, "adder", "application/json", &first.to_string()).await;
        assert_eq!(status, 201, "{name}: {saved}");
        assert_eq!(saved, json!({"name": "adder", "version": 1}));
        let yaml = "\
description: adds ten, then doubles
steps:
  - id: ten
    plugin: template
    config:
      template: '{\"n\": {{ n + 10 }}}'
      output: json
  - id: double
    plugin: template
    config: {template: '{\"n\": {{ n * 2 }}}', output: json}
output:
  result: $.steps.double.output.n
  was: $.input.n
";
        let (status, saved) = put_definition(&nova, "adder", "application/yaml", yaml).await;
        assert_eq!(status, 201, "{name}: {saved}");
        assert_eq!(saved["version"], 2);

        let latest = nova.get_json("/workflows/definitions/adder").await;
        assert_eq!(latest["version"], 2, "{latest}");
        assert_eq!(latest["definition"]["steps"][1]["id"], "double");
        let old = nova
            .get_json("/workflows/definitions/adder?version=1")
            .await;
        assert_eq!(old["definition"], first, "{old}");
        let list = nova.get_json("/workflows/definitions").await;
        assert_eq!(list["definitions"][0]["name"], "adder", "{list}");
        assert_eq!(list["definitions"][0]["version"], 2, "{list}");

        // Runs of the latest and of an older version, by name.
        let (status, answer) = post_json(
            &nova,
            "/workflows/definitions/adder/runs",
            &json!({"input": {"n": 1}}),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        let run = nova.wait_run(answer["id"].as_str().unwrap(), 30).await;
        assert_eq!(run["status"], "succeeded", "{name}: {run}");
        assert_eq!(run["output"], json!({"result": 22, "was": 1}));
        assert_eq!(run["definition"], "adder");
        assert_eq!(run["definition_version"], 2);
        let (status, answer) = post_json(
            &nova,
            "/workflows/definitions/adder/runs",
            &json!({"input": {"n": 1}, "version": 1, "idempotency_key": "v1-once"}),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        let v1 = answer["id"].as_str().unwrap().to_owned();
        let run = nova.wait_run(&v1, 30).await;
        assert_eq!(run["output"], json!({"n": 2}), "{run}");
        assert_eq!(run["definition_version"], 1);
        let (status, again) = post_json(
            &nova,
            "/workflows/definitions/adder/runs",
            &json!({"input": {"n": 5}, "idempotency_key": "v1-once"}),
        )
        .await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["id"], v1.as_str());
        let page = nova.get_json("/workflows?definition=adder").await;
        assert_eq!(page["runs"].as_array().unwrap().len(), 2, "{page}");
        assert_eq!(page["runs"][0]["definition"], "adder", "{page}");
        let page = nova.get_json("/workflows?definition=other").await;
        assert_eq!(page["runs"].as_array().unwrap().len(), 0, "{page}");

        // Deleted: gone from reads and runs; its runs stay; the name's
        // numbering goes on.
        let response = nova
            .http
            .delete(nova.url("/workflows/definitions/adder"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        let response = nova
            .http
            .get(nova.url("/workflows/definitions/adder"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        let (status, answer) =
            post_json(&nova, "/workflows/definitions/adder/runs", &json!({})).await;
        assert_eq!(status, 404, "{answer}");
        assert_eq!(answer["error"]["code"], "definition_not_found");
        assert_eq!(nova.wait_run(&v1, 0).await["status"], "succeeded");
        let (status, saved) =
            put_definition(&nova, "adder", "application/json", &first.to_string()).await;
        assert_eq!(status, 201, "{saved}");
        assert_eq!(saved["version"], 3, "{name}: {saved}");
    }
}

#[tokio::test]
async fn bad_definitions_are_refused() {
    let nova = host(&Backend::Embedded).await;
    let cases = [
        (
            "application/json",
            json!({"steps": [{"plugin": "nope"}]}).to_string(),
            400,
            "no plugin named \"nope\"",
        ),
        (
            "application/json",
            json!({"steps": [add(1)], "input": 3}).to_string(),
            400,
            "unknown field `input`",
        ),
        (
            "application/yaml",
            "steps: [ {plugin: template".to_owned(),
            400,
            "request body",
        ),
        (
            "application/yaml",
            "- just\n- a list\n".to_owned(),
            400,
            "send a mapping",
        ),
        (
            "text/plain",
            "steps: []".to_owned(),
            415,
            "application/yaml",
        ),
        (
            "application/yaml",
            "steps:\n  - {id: a, plugin: template, needs: [a]}\n".to_owned(),
            400,
            "steps[0].needs[0]: a step cannot need itself",
        ),
    ];
    for (content_type, body, code, words) in cases {
        let (status, answer) = put_definition(&nova, "bad", content_type, &body).await;
        assert_eq!(status, code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{words:?} not in {message:?}");
    }
    let (status, answer) = put_definition(&nova, "bad name", "application/json", "{}").await;
    assert_eq!(status, 400, "{answer}");
    let list = nova.get_json("/workflows/definitions").await;
    assert_eq!(list["definitions"], json!([]), "nothing was saved: {list}");
    // A YAML bomb: aliases that would expand to billions of nodes.
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
                g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n\
                i: [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    let (status, answer) = put_definition(&nova, "bomb", "application/yaml", bomb).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(nova.get_json("/health").await["status"], "ok");
}

#[tokio::test]
async fn a_failed_run_is_retried_from_its_failed_step_and_rerun_anew() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let name = backend.name();
        let id = submitted(
            &nova,
            json!({
                "steps": [
                    add(1),
                    {"id": "shaky", "plugin": "flaky", "config": {"key": "retry", "fail_times": 1}},
                    {"id": "last", "plugin": "template", "input": {"n": "$.steps.step0.output.n", "a": "$.steps.shaky.output.attempts"},
                     "config": {"template": "{\"n\": {{ n }}, \"a\": {{ a }}}", "output": "json"}},
                ],
                "input": {"n": 1},
            }),
        )
        .await;
        let failed = nova.wait_run(&id, 30).await;
        assert_eq!(failed["status"], "failed", "{name}: {failed}");
        assert_eq!(failed["steps"][2]["status"], "pending", "{failed}");

        let (status, answer) =
            post_json(&nova, &format!("/workflows/{id}/retry"), &json!({})).await;
        assert_eq!(status, 200, "{answer}");
        // Queued again (or already on its way: the steps left are quick).
        assert_ne!(answer["status"], "failed", "{answer}");
        assert_eq!(answer["error"], Value::Null, "{answer}");
        let run = nova.wait_run(&id, 30).await;
        assert_eq!(run["status"], "succeeded", "{name}: {run}");
        assert_eq!(run["output"], json!({"n": 2, "a": 2}), "{run}");
        // The finished step was kept, not run again.
        assert_eq!(run["steps"][0]["attempts"], 1, "{run}");
        assert_eq!(
            run["steps"][0]["finished_at"],
            failed["steps"][0]["finished_at"]
        );
        assert_eq!(
            run["steps"][1]["attempts"], 1,
            "attempts count from 0 again: {run}"
        );

        // Only a failed or cancelled run is retried.
        let (status, answer) =
            post_json(&nova, &format!("/workflows/{id}/retry"), &json!({})).await;
        assert_eq!(status, 409, "{answer}");
        assert_eq!(answer["error"]["code"], "run_not_retryable");

        // rerun: a new run, same steps and input.
        let (status, answer) =
            post_json(&nova, &format!("/workflows/{id}/rerun"), &json!({})).await;
        assert_eq!(status, 202, "{answer}");
        let again = answer["id"].as_str().unwrap();
        assert_ne!(again, id);
        let rerun = nova.wait_run(again, 30).await;
        assert_eq!(rerun["status"], "succeeded", "{name}: {rerun}");
        assert_eq!(rerun["input"], json!({"n": 1}));
        assert_eq!(rerun["output"], json!({"n": 2, "a": 3}), "{rerun}");
        let (status, _) = post_json(
            &nova,
            "/workflows/01900000-0000-7000-8000-000000000000/rerun",
            &json!({}),
        )
        .await;
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn sleeps_until_a_time_and_a_sleeping_run_cancels_at_once() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let name = backend.name();
        // sleep_until a time the input gives, in the past: at once.
        let id = submitted(
            &nova,
            json!({
                "steps": [
                    {"id": "wait", "sleep_until": "$.input.at"},
                    {"id": "then", "needs": ["wait"], "plugin": "template", "input": "$.input",
                     "config": {"template": "{\"at\": {{ at|tojson }}}", "output": "json"}},
                ],
                "input": {"at": "2020-01-01T00:00:00Z"},
            }),
        )
        .await;
        let run = nova.wait_run(&id, 30).await;
        assert_eq!(run["status"], "succeeded", "{name}: {run}");
        assert_eq!(
            run["steps"][0]["wake_at"], "2020-01-01T00:00:00.000Z",
            "{run}"
        );
        assert_eq!(run["output"], json!({"at": "2020-01-01T00:00:00Z"}));

        // A long sleep, cancelled: the parked run ends at once.
        let id = submitted(&nova, json!({"steps": [{"sleep": "1h"}, add(1)]})).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while nova.wait_run(&id, 0).await["steps"][0]["wake_at"].is_null() {
            assert!(Instant::now() < deadline, "{name}: the sleep never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(cancel(&nova, &id).await, 200);
        let run = nova.wait_run(&id, 10).await;
        assert_eq!(run["status"], "cancelled", "{name}: {run}");
        assert_eq!(run["steps"][0]["status"], "cancelled", "{run}");
        assert_eq!(run["steps"][1]["status"], "cancelled", "{run}");

        // Bad sleeps are refused with their place.
        for (body, words) in [
            (
                json!({"steps": [{"sleep": "soon"}]}),
                "steps[0].sleep: \"soon\" is not a duration",
            ),
            (
                json!({"steps": [{"sleep": "1m", "plugin": "template"}]}),
                "steps[0]: a sleep step has no plugin",
            ),
            (
                json!({"steps": [{"sleep_until": "tomorrow"}]}),
                "steps[0].sleep_until: \"tomorrow\" is not an RFC 3339 time",
            ),
            (
                json!({"steps": [{"config": {}}]}),
                "steps[0].plugin: missing",
            ),
        ] {
            let (status, answer) = nova.submit(&body).await;
            assert_eq!(status, 400, "{answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(words), "{words:?} not in {message:?}");
        }
    }
}

#[tokio::test]
async fn retry_policies_and_run_timeouts() {
    let nova = host(&Backend::Embedded).await;
    // Failed is retryable by default; non_retryable makes it final.
    let id = submitted(
        &nova,
        json!({"steps": [{"plugin": "flaky", "config": {"key": "p1", "fail_times": 2},
                           "retry": {"max": 3, "initial_ms": 10, "max_ms": 50, "multiplier": 3}}]}),
    )
    .await;
    let run = nova.wait_run(&id, 30).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["steps"][0]["attempts"], 3, "{run}");
    assert_eq!(
        run["steps"][0]["retries"], 3,
        "retry.max is the step's retries: {run}"
    );
    let id = submitted(
        &nova,
        json!({"steps": [{"plugin": "flaky", "config": {"key": "p2", "fail_times": 2},
                           "retry": {"max": 3, "non_retryable": ["failed"]}}]}),
    )
    .await;
    let run = nova.wait_run(&id, 30).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["steps"][0]["attempts"], 1, "not retried: {run}");
    let (status, answer) = nova
        .submit(&json!({"steps": [{"plugin": "flaky", "retries": 1, "retry": {"max": 2}}]}))
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = nova
        .submit(&json!({"steps": [{"plugin": "flaky", "retry": {"non_retryable": ["oops"]}}]}))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("steps[0].retry.non_retryable[0]"),
        "{answer}"
    );

    // A run timeout stops its step in flight and fails the run.
    let id = submitted(
        &nova,
        json!({"steps": [{"plugin": "slow", "config": {"iterations": 100_000_000_000u64}}],
               "timeout": "1s"}),
    )
    .await;
    let run = nova.wait_run(&id, 30).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within its timeout of 1s"),
        "{run}"
    );
    assert_eq!(run["steps"][0]["status"], "cancelled", "{run}");
    // Also while it sleeps.
    let id = submitted(
        &nova,
        json!({"steps": [{"sleep": "1h"}], "timeout": "PT2S"}),
    )
    .await;
    let run = nova.wait_run(&id, 30).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["steps"][0]["status"], "cancelled", "{run}");
}

#[tokio::test]
async fn webhooks_start_runs_on_signed_deliveries_only() {
    for backend in Backend::all() {
        let nova = host(&backend).await;
        let name = backend.name();
        let response = nova
            .http
            .put(nova.url("/admin/secrets/orders-hook"))
            .json(&json!({"value": "s3cret"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        let definition = json!({
            "steps": [render("{\"order\": {{ order }}}", json!({}))],
            "webhook": {"secret": "orders-hook"},
        });
        let (status, saved) = put_definition(
            &nova,
            "on-order",
            "application/json",
            &definition.to_string(),
        )
        .await;
        assert_eq!(status, 201, "{name}: {saved}");
        // A definition naming a secret that is not set is refused.
        let (status, answer) = put_definition(
            &nova,
            "bad-hook",
            "application/json",
            &json!({"steps": [add(1)], "webhook": {"secret": "nope"}}).to_string(),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("webhook.secret"),
            "{answer}"
        );

        // No API key on this route: a bare client, as a sender would be.
        let bare = reqwest::Client::new();
        let deliver =
            |body: &'static str, signature: Option<String>, delivery: Option<&'static str>| {
                let mut request = bare
                    .post(nova.url("/hooks/on-order"))
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(signature) = signature {
                    request = request.header("x-nova-signature", signature);
                }
                if let Some(delivery) = delivery {
                    request = request.header("x-nova-delivery", delivery);
                }
                async move {
                    let response = request.send().await.expect("deliver");
                    let status = response.status().as_u16();
                    (
                        status,
                        response.json::<Value>().await.unwrap_or(Value::Null),
                    )
                }
            };
        let body = r#"{"order": 42}"#;
        let now = nova_tests::unix_now();
        let good = nova_tests::sign_delivery(b"s3cret", body.as_bytes(), now);
        let (status, first) = deliver(body, Some(good.clone()), Some("d-1")).await;
        assert_eq!(status, 202, "{name}: {first}");
        let run = nova.wait_run(first["id"].as_str().unwrap(), 30).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["input"], json!({"order": 42}));
        assert_eq!(run["output"], json!({"order": 42}));
        assert_eq!(run["definition"], "on-order");
        // A redelivery returns the same run.
        let (status, again) = deliver(body, Some(good.clone()), Some("d-1")).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["id"], first["id"]);

        for (signature, why) in [
            (None, "missing"),
            (Some("t=1,v1=00".to_owned()), "more than 300 s"),
            (Some("garbage".to_owned()), "must read t="),
            (
                Some(nova_tests::sign_delivery(b"wrong", body.as_bytes(), now)),
                "does not match",
            ),
            (
                Some(nova_tests::sign_delivery(
                    b"s3cret",
                    body.as_bytes(),
                    now - 301,
                )),
                "more than 300 s",
            ),
            (
                Some(nova_tests::sign_delivery(
                    b"s3cret",
                    br#"{"order": 1}"#,
                    now,
                )),
                "does not match",
            ),
        ] {
            let (status, answer) = deliver(body, signature, Some("d-2")).await;
            assert_eq!(status, 401, "{why}: {answer}");
            assert_eq!(answer["error"]["code"], "invalid_signature");
            assert!(
                answer["error"]["message"].as_str().unwrap().contains(why),
                "{why}: {answer}"
            );
        }
        // No definition, or one without a webhook: 404, signature or not.
        let (status, _) = put_definition(
            &nova,
            "no-hook",
            "application/json",
            &json!({"steps": [add(1)]}).to_string(),
        )
        .await;
        assert_eq!(status, 201);
        for path in ["/hooks/no-hook", "/hooks/ghost"] {
            let response = bare
                .post(nova.url(path))
                .header("x-nova-signature", good.clone())
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{path}");
        }
        let page = nova.get_json("/workflows?definition=on-order").await;
        assert_eq!(
            page["runs"].as_array().unwrap().len(),
            1,
            "only the good delivery ran: {page}"
        );
    }
}

#[tokio::test]
async fn a_for_each_runs_at_most_its_concurrency_at_once() {
    let nova = host(&Backend::Embedded).await;
    let id = submitted(
        &nova,
        json!({
            "steps": [{
                "plugin": "slow",
                "config": {"iterations": 150_000_000u64},
                "timeout_ms": 60_000,
                "for_each": "$.input",
                "concurrency": 2,
                "input": {"n": "$.index"},
            }],
            "input": [0, 1, 2, 3, 4, 5],
        }),
    )
    .await;
    // Watch the elements' states while they run.
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let run = nova.wait_run(&id, 0).await;
        if let Some(items) = run["steps"][0]["items"].as_array() {
            let running = items.iter().filter(|i| i["status"] == "running").count();
            most = most.max(running);
        }
        if run["status"] != "running" && run["status"] != "queued" {
            break run;
        }
        assert!(Instant::now() < deadline, "{run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(most, 2, "two elements at a time, and no more: {run}");
    let output = run["steps"][0]["output"].as_array().expect("an array");
    assert_eq!(output.len(), 6);
    assert!(output.iter().all(|o| o["done"] == true), "{run}");
}

/// An expression that repeats a large value (per for_each element, or
/// many times in one input or output) is refused before it is built: what
/// expressions build is held to what the run may keep.
#[tokio::test]
async fn expressions_build_no_more_than_the_run_may_keep() {
    let nova = host(&Backend::Embedded).await;
    let big = "x".repeat(900_000);
    let list: Vec<u32> = (0..100).collect();
    let repeated: serde_json::Map<String, Value> = (0..20)
        .map(|i| (format!("k{i}"), json!("$.input.big")))
        .collect();
    let cases = [
        (
            // 100 elements × 900 kB: 90 MB of inputs.
            json!({"steps": [{"plugin": "template", "config": {"template": "{{ i }}"},
                              "for_each": "$.input.list", "input": {"big": "$.input.big", "i": "$.item"}}],
                   "input": {"big": big, "list": list}}),
            "the inputs of its elements would bring what the run keeps over the limit",
        ),
        (
            json!({"steps": [{"plugin": "template", "config": {"template": "x"}, "input": repeated}],
                   "input": {"big": big}}),
            "its input would bring what the run keeps over the limit",
        ),
        (
            json!({"steps": [{"plugin": "template", "config": {"template": "x"}}],
                   "output": repeated, "input": {"big": big}}),
            "the run's output would bring what the run keeps over the limit",
        ),
    ];
    for (body, words) in cases {
        let id = submitted(&nova, body).await;
        let run = nova.wait_run(&id, 30).await;
        assert_eq!(run["status"], "failed", "{words}");
        let error = run["error"].as_str().unwrap();
        assert!(error.contains(words), "{words:?} not in {error:?}");
        assert!(error.contains("limits.run_bytes"), "{error}");
    }
    assert_eq!(nova.get_json("/health").await["status"], "ok");
}
