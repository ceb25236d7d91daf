//! Outbound HTTP from plugins (`wasi:http`), through a real host, to real
//! HTTP and HTTPS servers this test starts on loopback: the shipped
//! `http-request` step, the manifest's allowed hosts, the address policy,
//! the limits, TLS with a CA the test makes, and the metrics.

use std::time::{Duration, Instant};

use nova_tests::upstream::{TestCa, Upstream};
use nova_tests::{Nova, Options, plugin};
use serde_json::{Value, json};

/// A host with `http-request` under `manifest`, trusting `ca`.
async fn host(manifest: &str, ca: Option<&TestCa>) -> Nova {
    let mut options = Options::default()
        .plugin("http-request", plugin("http-request"))
        .manifest("http-request", manifest)
        .plugin("template", plugin("template"));
    if let Some(ca) = ca {
        options = options.env("NOVA_EXTRA_CA_FILE", &ca.pem_path().display().to_string());
    }
    Nova::start(options).await
}

fn allow(entries: &[String]) -> String {
    let list: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
    format!("[grants]\nallowed_outbound_hosts = [{}]\n", list.join(", "))
}

async fn request(nova: &Nova, config: Value) -> (u16, Value) {
    nova.invoke_step("http-request", &json!({}), Some(&config))
        .await
}

/// `GET /metrics`, as text.
async fn metrics_page(nova: &Nova) -> String {
    let response = nova.http.get(nova.url("/metrics")).send().await;
    response.expect("metrics").text().await.expect("text")
}

fn error_of(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_allowed_request_arrives_with_its_headers_and_body() {
    let up = Upstream::http().await;
    let base = format!("http://127.0.0.1:{}", up.port());
    let nova = host(&allow(std::slice::from_ref(&base)), None).await;
    let (status, body) = request(
        &nova,
        json!({
            "method": "POST",
            "url": format!("{base}/echo"),
            "query": {"q": "a b", "n": 2},
            "headers": {"X-Api-Key": "k-123"},
            "body": {"hello": "world"},
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let out = &body["output"];
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["body"]["method"], "POST");
    assert_eq!(out["body"]["path"], "/echo?n=2&q=a%20b");
    assert_eq!(out["body"]["headers"]["x-api-key"], "k-123");
    assert_eq!(out["body"]["headers"]["content-type"], "application/json");
    assert_eq!(out["body"]["body"], r#"{"hello":"world"}"#);
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-api-key"), Some("k-123"));
    assert_eq!(
        seen[0].header("host"),
        Some(format!("127.0.0.1:{}", up.port()).as_str())
    );

    // A JSON answer is parsed; a failing status fails the step unless told.
    let (status, body) = request(&nova, json!({"url": format!("{base}/json")})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"]["body"],
        json!({"greeting": "hello", "n": 42})
    );
    let (status, body) = request(&nova, json!({"url": format!("{base}/status/503")})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_failed");
    assert!(error_of(&body).contains("503"), "{body}");
    let (status, body) = request(
        &nova,
        json!({"url": format!("{base}/status/404"), "fail_on_status": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["status"], 404);
}

#[tokio::test]
async fn hosts_ports_schemes_and_redirects_outside_the_manifest_are_refused() {
    let allowed = Upstream::http().await;
    let other = Upstream::http().await;
    let base = format!("http://127.0.0.1:{}", allowed.port());
    let nova = Nova::start(
        Options::default()
            .plugin("http-request", plugin("http-request"))
            .manifest("http-request", &allow(std::slice::from_ref(&base)))
            .capture_log("warn"),
    )
    .await;
    let refused = [
        // Another port of the same address.
        format!("http://127.0.0.1:{}/echo", other.port()),
        // The same port by another name.
        format!("http://localhost:{}/echo", allowed.port()),
        // Another scheme.
        format!("https://127.0.0.1:{}/echo", allowed.port()),
        // A redirect from an allowed host to one that is not.
        format!("{base}/redirect?to=http://127.0.0.1:{}/echo", other.port()),
    ];
    for url in refused {
        let (status, body) = request(&nova, json!({"url": url})).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["error"]["code"], "plugin_failed", "{url}");
        assert!(
            error_of(&body).contains("refused"),
            "{url}: the plugin is told it was refused: {body}"
        );
    }
    assert!(
        other.requests().is_empty(),
        "nothing reached the other server"
    );
    // The host logged each refusal with plugin, method, host and reason,
    // and no header.
    let log = nova.log();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("outbound request refused"))
        .collect();
    assert_eq!(refusals.len(), 4, "{log}");
    for line in refusals {
        for part in ["plugin=http-request", "method=GET", "host=", "reason="] {
            assert!(line.contains(part), "{line}");
        }
    }
    // The allowed server saw only the redirect request.
    let seen = allowed.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].path.starts_with("/redirect"));

    // A redirect within the allowed host is followed.
    let (status, body) = request(
        &nova,
        json!({"url": format!("{base}/redirect?to={base}/json")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["body"]["n"], 42);
}

#[tokio::test]
async fn a_wildcard_entry_does_not_reach_loopback_but_a_literal_one_does() {
    let up = Upstream::http().await;
    // Any host on this port, and the name `localhost` literally.
    let manifest = allow(&[
        format!("http://*:{}", up.port()),
        format!("http://localhost:{}", up.port()),
    ]);
    let nova = host(&manifest, None).await;
    for url in [
        format!("http://127.0.0.1:{}/echo", up.port()),
        format!("http://[::ffff:127.0.0.1]:{}/echo", up.port()),
    ] {
        let (status, body) = request(&nova, json!({"url": url})).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert!(error_of(&body).contains("refused"), "{url}: {body}");
    }
    assert!(up.requests().is_empty(), "{:?}", up.requests());
    let (status, body) = request(
        &nova,
        json!({"url": format!("http://localhost:{}/json", up.port())}),
    )
    .await;
    assert_eq!(status, 200, "the literal entry reaches loopback: {body}");
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn a_plugin_without_a_manifest_reaches_nothing() {
    let up = Upstream::http().await;
    // No manifest at all: nothing is allowed.
    let nova = Nova::start(Options::default().plugin("http-request", plugin("http-request"))).await;
    let (status, body) = request(
        &nova,
        json!({"url": format!("http://127.0.0.1:{}/echo", up.port())}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("refused"), "{body}");
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn oversized_and_stalled_responses_fail_cleanly_and_the_next_call_is_served() {
    let up = Upstream::http().await;
    let base = format!("http://127.0.0.1:{}", up.port());
    let manifest = format!(
        "{}[limits]\nhttp_response_bytes = 100000\nhttp_between_bytes_timeout_ms = 500\n\
         http_first_byte_timeout_ms = 500\n",
        allow(std::slice::from_ref(&base))
    );
    let nova = host(&manifest, None).await;

    let (status, body) = request(&nova, json!({"url": format!("{base}/bytes/100000")})).await;
    assert_eq!(status, 200, "at the cap: {body}");
    assert_eq!(body["output"]["body"].as_str().map(str::len), Some(100_000));
    let (status, body) = request(&nova, json!({"url": format!("{base}/bytes/100001")})).await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("http_response_bytes"), "{body}");

    for route in ["stall", "stall-head"] {
        let started = Instant::now();
        let (status, body) = request(&nova, json!({"url": format!("{base}/{route}")})).await;
        assert_eq!(status, 422, "{route}: {body}");
        assert!(error_of(&body).contains("timed out"), "{route}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{route}: the limit, not the step's 10 s, ended it"
        );
    }
    let (status, body) = request(&nova, json!({"url": format!("{base}/json")})).await;
    assert_eq!(status, 200, "the next call is served: {body}");
}

#[tokio::test]
async fn https_with_the_extra_ca_is_trusted_and_metrics_count_requests() {
    let ca = TestCa::new();
    let up = Upstream::https(&ca).await;
    let base = format!("https://localhost:{}", up.port());
    let nova = host(&allow(std::slice::from_ref(&base)), Some(&ca)).await;
    let (status, body) = request(
        &nova,
        json!({"url": format!("{base}/echo"), "headers": {"Authorization": "Bearer s3cr3t-value"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"]["body"]["headers"]["authorization"],
        "Bearer s3cr3t-value"
    );
    assert_eq!(up.requests().len(), 1);

    // A plain-HTTP request to the TLS port fails as a protocol error, not
    // a hang (and http is not allowed anyway).
    let (status, _) = request(
        &nova,
        json!({"url": format!("http://localhost:{}/echo", up.port())}),
    )
    .await;
    assert_eq!(status, 422);

    let metrics = metrics_page(&nova).await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("nova_plugin_outbound_requests_total{")
                && l.contains("plugin=\"http-request\"")
                && l.contains("host=\"localhost\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("no outbound request counted:\n{metrics}"));
    assert!(line.ends_with(" 1"), "{line}");
    assert!(
        metrics.contains("nova_plugin_outbound_response_bytes_total{"),
        "bytes are counted"
    );
    assert!(!metrics.contains("s3cr3t"), "headers never reach metrics");
}

#[tokio::test]
async fn a_server_whose_certificate_is_not_trusted_is_refused() {
    let ca = TestCa::new();
    let up = Upstream::https(&ca).await;
    let base = format!("https://localhost:{}", up.port());
    // The host does not trust the test CA.
    let nova = host(&allow(std::slice::from_ref(&base)), None).await;
    let (status, body) = request(&nova, json!({"url": format!("{base}/echo")})).await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("TLS"), "{body}");
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn a_workflow_fetches_renders_and_posts() {
    let up = Upstream::http().await;
    let base = format!("http://127.0.0.1:{}", up.port());
    let nova = host(&allow(std::slice::from_ref(&base)), None).await;
    let body = json!({
        "input": {},
        "steps": [
            {"plugin": "http-request", "config": {"url": format!("{base}/json")}},
            {"plugin": "template", "config": {
                "template": "{{ body.greeting }} number {{ body.n }}"
            }},
            {"plugin": "http-request", "config": {
                "method": "POST", "url": format!("{base}/echo"), "send_input": true
            }},
        ],
    });
    let (status, answer) = nova.submit(&body).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().expect("id");
    let run = nova.wait_run(id, 30).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let posted: Vec<_> = up
        .requests()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect();
    assert_eq!(posted.len(), 1);
    let sent: Value = serde_json::from_str(&posted[0].body).expect("JSON body");
    assert_eq!(sent, json!({"text": "hello number 42"}));
}

/// Two copies of `http-request` allowed to reach `base`: `reader` lists
/// the secret `api_key`, `stranger` does not.
async fn secrets_host(base: &str) -> Nova {
    let hosts = allow(&[base.to_owned()]);
    let reader = format!("{hosts}secrets = [\"api_key\"]\n");
    Nova::start(
        Options::default()
            .plugin("reader", plugin("http-request"))
            .manifest("reader", &reader)
            .plugin("stranger", plugin("http-request"))
            .manifest("stranger", &hosts)
            .capture_log("debug"),
    )
    .await
}

const SECRET_1: &str = "sk-first-0123456789abcdef";
const SECRET_2: &str = "sk-second-fedcba9876543210";

#[tokio::test]
async fn a_secret_reaches_only_its_readers_rotates_and_never_shows() {
    let up = Upstream::http().await;
    let base = format!("http://127.0.0.1:{}", up.port());
    let nova = secrets_host(&base).await;
    let set = nova
        .client
        .secret_set("api_key", SECRET_1)
        .await
        .expect("set");
    assert_eq!(set.status, 204);
    let config = json!({
        "url": format!("{base}/echo"),
        "headers": {"Authorization": "Bearer ${secret:api_key}"},
    });

    let (status, body) = nova.invoke_step("reader", &json!({}), Some(&config)).await;
    assert_eq!(status, 200, "{body}");
    let seen = up.requests();
    assert_eq!(
        seen.last().and_then(|s| s.header("authorization")),
        Some(format!("Bearer {SECRET_1}").as_str()),
        "the secret arrives at the server"
    );
    assert_eq!(
        body["output"]["body"]["headers"]["authorization"], "Bearer ${secret:api_key}",
        "an echo of the secret is written back as its name"
    );
    assert!(!body.to_string().contains(SECRET_1));

    // A plugin whose manifest does not list it reads nothing.
    let (status, body) = nova
        .invoke_step("stranger", &json!({}), Some(&config))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        error_of(&body).contains("does not list it in grants.secrets"),
        "{body}"
    );
    assert_eq!(up.requests().len(), 1, "the stranger sent nothing");

    // Rotation: the next call sees the new value, with no reload.
    nova.client
        .secret_set("api_key", SECRET_2)
        .await
        .expect("rotate");
    let (status, body) = nova.invoke_step("reader", &json!({}), Some(&config)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        up.requests().last().and_then(|s| s.header("authorization")),
        Some(format!("Bearer {SECRET_2}").as_str())
    );

    // Through a workflow too, and then nowhere a person could look.
    let (status, answer) = nova
        .submit(&json!({"input": {}, "steps": [{"plugin": "reader", "config": config}]}))
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().expect("id").to_owned();
    let run = nova.wait_run(&id, 30).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    let listing = nova.client.secrets_list().await.expect("list");
    assert_eq!(listing.value.secrets.len(), 1);
    assert_eq!(listing.value.secrets[0].name, "api_key");
    assert_eq!(listing.value.secrets[0].readers, ["reader"]);
    let plugins = nova.get_json("/admin/plugins").await.to_string();
    assert!(plugins.contains("api_key"), "the grant is listed by name");
    let metrics = metrics_page(&nova).await;
    let views = [
        ("the run", run.to_string()),
        (
            "the run list",
            nova.get_json("/workflows?include=input,output")
                .await
                .to_string(),
        ),
        ("the secrets listing", listing.raw.clone()),
        ("the plugins listing", plugins),
        ("/metrics", metrics),
        ("the log", nova.log()),
    ];
    assert!(nova.log().contains("secret set"), "the log was captured");
    for (what, text) in views {
        for secret in [SECRET_1, SECRET_2] {
            assert!(!text.contains(secret), "{what} shows a secret's value");
        }
    }

    // Deleted: the reader finds it missing from its next call.
    let removed = nova.client.secret_remove("api_key").await.expect("rm");
    assert_eq!(removed.status, 204);
    let (status, body) = nova.invoke_step("reader", &json!({}), Some(&config)).await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("is not set"), "{body}");
    let again = nova.client.secret_remove("api_key").await;
    assert!(
        matches!(&again, Err(nova_client::Error::Api { status: 404, .. })),
        "{again:?}"
    );
}

#[tokio::test]
async fn secrets_are_admin_only_and_checked() {
    let nova = Nova::start(Options::default()).await;
    for (method, path) in [
        (reqwest::Method::GET, "/admin/secrets"),
        (reqwest::Method::PUT, "/admin/secrets/x"),
        (reqwest::Method::DELETE, "/admin/secrets/x"),
    ] {
        let response = nova
            .anon
            .request(method.clone(), nova.url(path))
            .json(&json!({"value": "v"}))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    let key = nova.key_client(&["runs:write", "runs:read"]).await;
    let response = key
        .get(nova.url("/admin/secrets"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 403);
    let bad = nova.client.secret_set("not a name", "v").await;
    assert!(
        matches!(&bad, Err(nova_client::Error::Api { status: 400, .. })),
        "{bad:?}"
    );
    let big = "x".repeat(70_000);
    let too_big = nova.client.secret_set("big", &big).await;
    assert!(
        matches!(&too_big, Err(nova_client::Error::Api { status: 400, .. })),
        "{too_big:?}"
    );
    // An unknown field (a typo of "value") is refused, not stored empty.
    let response = nova
        .http
        .put(nova.url("/admin/secrets/typo"))
        .json(&json!({"valeu": "v"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn the_cli_sets_lists_and_removes_secrets_from_stdin() {
    let nova = Nova::start(Options::default()).await;
    let cli = |args: &[&str], stdin: &[u8]| {
        let remote = ["--url", nova.url.as_str(), "--token", nova_tests::TOKEN];
        nova_tests::run_nova(&[args, &remote].concat(), &[], stdin)
    };
    let out = cli(&["secrets", "set", "llm_api_key"], b"sk-from-stdin-123\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["secrets", "list"], b"");
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(listed.contains("llm_api_key"), "{listed}");
    assert!(!listed.contains("sk-from-stdin"), "{listed}");
    let out = cli(&["secrets", "list", "--json"], b"");
    let list: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list["secrets"][0]["name"], "llm_api_key");
    let out = cli(&["secrets", "set", "empty"], b"");
    assert_eq!(
        out.status.code(),
        Some(2),
        "no value on stdin is a usage error"
    );
    let out = cli(&["secrets", "rm", "llm_api_key"], b"");
    assert!(out.status.success());
    let out = cli(&["secrets", "rm", "llm_api_key"], b"");
    assert_eq!(out.status.code(), Some(1), "a second rm finds nothing");
}

#[tokio::test]
async fn llm_chat_completes_on_an_openai_compatible_server_with_the_secret_key() {
    // A local server that speaks the chat completions protocol: the tests
    // never reach a hosted model.
    let up = Upstream::http().await;
    let base = format!("http://127.0.0.1:{}", up.port());
    let manifest = format!(
        "{}secrets = [\"llm_api_key\"]\n",
        allow(std::slice::from_ref(&base))
    );
    let nova = Nova::start(
        Options::default()
            .plugin("llm-chat", plugin("llm-chat"))
            .manifest("llm-chat", &manifest),
    )
    .await;
    let config = json!({
        "base_url": format!("{base}/v1"),
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Summarise: {{ text }}"},
        ],
        "temperature": 0.1,
        "max_tokens": 64,
    });
    // No key set yet: refused before anything is sent.
    let (status, body) = nova
        .invoke_step("llm-chat", &json!({"text": "x"}), Some(&config))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("llm_api_key"), "{body}");
    assert!(up.requests().is_empty());

    nova.client
        .secret_set("llm_api_key", "sk-test-llm-0123456789")
        .await
        .expect("set");
    let (status, answer) = nova
        .submit(&json!({
            "input": {"text": "the quick brown fox"},
            "steps": [{"plugin": "llm-chat", "config": config}],
        }))
        .await;
    assert_eq!(status, 202, "{answer}");
    let run = nova.wait_run(answer["id"].as_str().expect("id"), 30).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let output = &run["output"];
    assert_eq!(output["content"], "echo: Summarise: the quick brown fox");
    assert_eq!(output["model"], "test-model");
    assert_eq!(output["finish_reason"], "stop");
    assert!(
        output["usage"]["total_tokens"].as_u64().unwrap_or(0) > 3,
        "{output}"
    );
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-test-llm-0123456789")
    );
    let sent: Value = serde_json::from_str(&seen[0].body).expect("JSON");
    assert_eq!(sent["model"], "test-model");
    assert_eq!(sent["max_tokens"], 64);
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Answer briefly."})
    );
    assert!(!run.to_string().contains("sk-test-llm"));
}

#[tokio::test]
async fn a_javascript_component_built_with_jco_defaults_loads_and_runs() {
    // `jco componentize` without `--disable http` imports wasi:http/types
    // and outgoing-handler@0.2.10: the host links them (and grants no host).
    let nova =
        Nova::start(Options::default().plugin("js-step", nova_tests::test_plugin("js-step"))).await;
    let (status, body) = nova.invoke_step("js-step", &json!({"n": 21}), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], json!({"n": 42, "lang": "javascript"}));
    let entry = nova.entry("js-step").await.expect("listed");
    assert_eq!(entry["status"], "active", "{entry}");
}

#[tokio::test]
async fn a_plugin_holds_at_most_its_concurrency_of_requests() {
    let up = Upstream::http().await;
    let base = format!("http://127.0.0.1:{}", up.port());
    let manifest = format!(
        "{}[limits]\nhttp_concurrency = 1\nhttp_connect_timeout_ms = 500\n\
         http_first_byte_timeout_ms = 3000\n",
        allow(std::slice::from_ref(&base))
    );
    let nova = host(&manifest, None).await;
    // The first call holds the plugin's only permit while the server stalls.
    let first = nova.spawn_step(
        "http-request",
        json!({}),
        Some(json!({"url": format!("{base}/stall-head")})),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = request(&nova, json!({"url": format!("{base}/json")})).await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("http_concurrency"), "{body}");
    let (status, _) = first.await.expect("join");
    assert_eq!(status, 422, "the stalled call timed out");
    // With the permit back, the next call goes.
    let (status, body) = request(&nova, json!({"url": format!("{base}/json")})).await;
    assert_eq!(status, 200, "{body}");
}
