//! `GET /metrics`, JSON logs and request ids, against a real `nova serve`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nova_tests::{Nova, Options, model_dir, nova_bin, plugin, unique};
use serde_json::{Value, json};

/// One series: the metric name and its labels, sorted.
type Series = (String, BTreeMap<String, String>);

/// A strict reader of Prometheus' text format 0.0.4: every line is a
/// `# HELP`/`# TYPE` comment or `name{label="value",...} value`; every
/// sample belongs to a family declared by a TYPE line before it, and no
/// series appears twice.
fn parse(page: &str) -> BTreeMap<Series, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        assert!(!line.is_empty(), "empty line in:\n{page}");
        let (name, labels, rest) = sample(line);
        let value: f64 = rest
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("value: {line}"));
        let family = types
            .keys()
            .find(|f| match types[*f].as_str() {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name == format!("{f}{s}")),
                _ => name == **f,
            })
            .unwrap_or_else(|| panic!("no TYPE for {line}"));
        if types[family] == "counter" {
            assert!(name.ends_with("_total"), "{line}");
        }
        assert!(name.starts_with("nova_"), "{line}");
        assert!(
            samples.insert((name, labels), value).is_none(),
            "duplicate series: {line}"
        );
    }
    assert!(!types.is_empty(), "no metrics:\n{page}");
    samples
}

/// Splits `name{labels} value`, unescaping label values.
fn sample(line: &str) -> (String, BTreeMap<String, String>, &str) {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = &line[..name_end];
    assert!(
        !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()),
        "{line}"
    );
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        loop {
            let (start, c) = chars
                .next()
                .unwrap_or_else(|| panic!("open labels: {line}"));
            if c == '}' {
                rest = &body[start + 1..];
                break;
            }
            let key_start = start;
            let eq = body[key_start..].find('=').expect(line) + key_start;
            let key = &body[key_start..eq];
            assert!(
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "label name {key:?}: {line}"
            );
            while chars.peek().is_some_and(|&(i, _)| i <= eq) {
                chars.next();
            }
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
            let mut value = String::new();
            loop {
                match chars.next().map(|(_, c)| c) {
                    Some('"') => break,
                    Some('\\') => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape {other:?}: {line}"),
                    },
                    Some(c) => value.push(c),
                    None => panic!("open label value: {line}"),
                }
            }
            assert!(labels.insert(key.to_owned(), value).is_none(), "{line}");
            match chars.peek().map(|&(_, c)| c) {
                Some(',') => {
                    chars.next();
                }
                Some('}') => {}
                other => panic!("after a label: {other:?}: {line}"),
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value: {line}"));
    (name.to_owned(), labels, value)
}

async fn scrape(nova: &Nova) -> BTreeMap<Series, f64> {
    let response = nova
        .http
        .get(nova.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&response.text().await.expect("text"))
}

/// The value of a series, 0 when absent (a counter not yet incremented).
fn value(samples: &BTreeMap<Series, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .get(&(name.to_owned(), labels))
        .copied()
        .unwrap_or(0.0)
}

/// A json-transform step that sets `y` to the input's `field` plus one.
fn step(field: &str) -> Value {
    json!({"plugin": "json-transform", "config": {"fields": {"y": format!("$.{field} + 1")}}})
}

#[test]
fn the_parser_is_strict() {
    let good = "# HELP nova_a_total A.\n# TYPE nova_a_total counter\nnova_a_total{x=\"q\\\"\\\\\",y=\"2\"} 3\n";
    let parsed = parse(good);
    assert_eq!(
        value(&parsed, "nova_a_total", &[("x", "q\"\\"), ("y", "2")]),
        3.0
    );
    for bad in [
        "nova_a_total 3\n",                                              // no TYPE
        "# TYPE nova_a_total counter\nnova_a_total{x=\"1\" 3\n",         // open labels
        "# TYPE nova_a_total counter\nnova_a_total 3\nnova_a_total 4\n", // duplicate
        "# TYPE nova_a counter\nnova_a 3\n",                             // counter w/o _total
        "# TYPE nova_a_total counter\nnova_a_total x\n",                 // value
    ] {
        assert!(std::panic::catch_unwind(|| parse(bad)).is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_plugin_calls_steps_and_queries() {
    let nova =
        Nova::start(Options::default().plugin("json-transform", plugin("json-transform"))).await;
    let before = scrape(&nova).await;

    let (status, answer) = nova
        .submit(&json!({"steps": [step("x")], "input": {"x": 1}}))
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().expect("id");
    let run = nova.wait_run(id, 30).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"]["y"], 2, "{run}");

    let query = json!({"query": "what does the metrics test ask", "top_k": 1});
    for _ in 0..2 {
        let response = nova
            .http
            .post(nova.url("/rag/query"))
            .json(&query)
            .send()
            .await
            .expect("query");
        assert_eq!(response.status(), 200);
    }
    let missing = nova
        .http
        .get(nova.url("/no/such/path"))
        .send()
        .await
        .expect("get");
    assert_eq!(missing.status(), 404);

    let after = scrape(&nova).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let http = "nova_http_requests_total";
    assert_eq!(
        delta(
            http,
            &[
                ("route", "/workflows"),
                ("method", "POST"),
                ("status", "202")
            ]
        ),
        1.0
    );
    assert!(
        delta(
            http,
            &[
                ("route", "/workflows/{id}"),
                ("method", "GET"),
                ("status", "200")
            ]
        ) >= 1.0
    );
    assert_eq!(
        delta(
            http,
            &[
                ("route", "/rag/query"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        2.0
    );
    assert_eq!(
        delta(
            http,
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        1.0
    );
    // The raw path is never a label value.
    assert!(
        after
            .keys()
            .all(|(_, labels)| labels.get("route").is_none_or(|r| !r.contains(id)))
    );
    assert!(
        delta(
            "nova_http_request_duration_seconds_count",
            &[("route", "/workflows"), ("method", "POST")]
        ) >= 1.0
    );
    assert_eq!(
        delta(
            "nova_plugin_calls_total",
            &[
                ("plugin", "json-transform"),
                ("kind", "step"),
                ("outcome", "ok")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "nova_plugin_call_duration_seconds_count",
            &[("plugin", "json-transform"), ("kind", "step")]
        ),
        1.0
    );
    assert_eq!(
        delta("nova_workflow_steps_total", &[("outcome", "succeeded")]),
        1.0
    );
    // The first query embeds and misses; the same query again hits.
    assert_eq!(delta("nova_query_cache_misses_total", &[]), 1.0);
    assert_eq!(delta("nova_query_cache_hits_total", &[]), 1.0);
    assert!(delta("nova_embed_texts_total", &[]) >= 1.0);
    assert!(delta("nova_embed_batch_size_count", &[]) >= 1.0);
    // The host's first ingest (of its empty knowledge dir) ran before.
    assert!(value(&after, "nova_ingest_runs_total", &[]) >= 1.0);

    // The gauges are refreshed in the background: wait for the run to show.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = scrape(&nova).await;
        if value(&now, "nova_workflow_runs", &[("status", "succeeded")]) >= 1.0 {
            assert_eq!(
                value(&now, "nova_workflow_runs", &[("status", "queued")]),
                0.0
            );
            assert_eq!(value(&now, "nova_queue_depth", &[]), 0.0);
            break;
        }
        assert!(Instant::now() < deadline, "runs gauge never showed the run");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A `nova serve` whose stderr is collected, line by line.
struct LoggingHost {
    child: std::process::Child,
    url: String,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Drop for LoggingHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LoggingHost {
    /// The harness lets the host's stderr through to the test's; this
    /// starts one the same way but keeps its stderr to read.
    fn start(env: &[(&str, &str)]) -> LoggingHost {
        let dir = tempfile::tempdir().expect("temp dir");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        std::fs::copy(
            plugin("json-transform"),
            plugins.join("json-transform.wasm"),
        )
        .expect("copy plugin");
        let mut command = Command::new(nova_bin());
        command
            .arg("serve")
            .env("NOVA_BIND", "127.0.0.1:0")
            .env("NOVA_DATA_DIR", dir.path().join("data"))
            .env("NOVA_PLUGINS_DIR", &plugins)
            .env("NOVA_ADMIN_TOKEN", nova_tests::TOKEN)
            .env("NOVA_MODEL_DIR", model_dir())
            .env("NOVA_KNOWLEDGE", "false")
            .env_remove("NOVA_CONFIG")
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn nova");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let url = stdout
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("nova listening on ")
                    .map(|u| u.trim().to_owned())
            })
            .expect("nova exited before listening");
        std::thread::spawn(move || for _ in stdout {});
        LoggingHost {
            child,
            url,
            lines,
            _dir: dir,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }
}

/// The `request_id` fields of a JSON log line's spans.
fn span_request_ids(line: &Value) -> Vec<String> {
    line["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["request_id"].as_str().map(str::to_owned))
        .collect()
}

fn in_step(line: &Value) -> bool {
    line["spans"]
        .as_array()
        .is_some_and(|spans| spans.iter().any(|s| s["name"] == "step"))
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_the_request_id_through_the_steps() {
    let host = LoggingHost::start(&[
        ("NOVA_LOG_FORMAT", "json"),
        // The plugin logs at debug, the worker's step line too.
        ("NOVA_LOG", "info,nova::plugin=debug,nova::workflow=debug"),
    ]);
    let http = nova_tests::http_client(Some(nova_tests::TOKEN));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http
        .get(format!("{}/health", host.url))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let request_id = unique("e2e-request");
    let response = http
        .post(format!("{}/workflows", host.url))
        .header("x-request-id", &request_id)
        .json(&json!({"steps": [step("x"), step("y")], "input": {"x": 1}}))
        .send()
        .await
        .expect("submit");
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-request-id"], request_id.as_str());
    let answer: Value = response.json().await.expect("JSON");
    let id = answer["id"].as_str().expect("id").to_owned();
    let run: Value = http
        .get(format!("{}/workflows/{id}?wait=30", host.url))
        .send()
        .await
        .expect("wait")
        .json()
        .await
        .expect("JSON");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"]["y"], 3, "{run}");

    // A request without the header gets a fresh id back.
    let other = http
        .get(format!("{}/health", host.url))
        .send()
        .await
        .expect("health");
    let fresh = other.headers()["x-request-id"].to_str().expect("ASCII");
    assert_ne!(fresh, request_id);

    // Wait until both steps' lines are out.
    let deadline = Instant::now() + Duration::from_secs(20);
    let step_lines = loop {
        let parsed: Vec<Value> = host
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        for line in &parsed {
            assert!(
                line["timestamp"].is_string() && line["level"].is_string(),
                "{line}"
            );
        }
        let step_lines: Vec<Value> = parsed.into_iter().filter(in_step).collect();
        let plugin_lines = step_lines
            .iter()
            .filter(|l| l["target"] == "nova::plugin")
            .count();
        if plugin_lines >= 2 {
            break step_lines;
        }
        assert!(
            Instant::now() < deadline,
            "no plugin lines in {:?}",
            host.lines()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Every line logged inside a step carries the run and the request id.
    for line in &step_lines {
        assert_eq!(
            span_request_ids(line),
            std::slice::from_ref(&request_id),
            "{line}"
        );
        let run_span = line["spans"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "run"))
            .unwrap_or_else(|| panic!("no run span: {line}"));
        assert_eq!(run_span["run_id"], id.as_str(), "{line}");
    }
    let indexes: std::collections::BTreeSet<i64> = step_lines
        .iter()
        .filter_map(|l| {
            l["spans"]
                .as_array()?
                .iter()
                .find(|s| s["name"] == "step")?["index"]
                .as_i64()
        })
        .collect();
    assert_eq!(indexes, [0, 1].into(), "lines of both steps");
}
