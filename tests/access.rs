//! Access control over real HTTP: no anonymous route but `/health`, API
//! keys with scopes, revocation across hosts, JSON-only bodies, the
//! authentication switch, and the metrics address.

use std::time::Duration;

use nova_tests::{Backend, Nova, Options, free_port, http_client, nova_bin};
use reqwest::Method;
use serde_json::{Value, json};

/// Every operation of the host's own OpenAPI document: (method, path).
async fn operations(nova: &Nova) -> Vec<(Method, String, Value)> {
    let doc = nova.get_json("/openapi.json").await;
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            ops.push((method, path.clone(), op.clone()));
        }
    }
    ops
}

fn fill(path: &str) -> String {
    path.replace("{id}", "00000000-0000-7000-8000-000000000000")
        .replace("{name}", "hello")
}

async fn status_of(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn no_anonymous_route_but_health() {
    let nova =
        Nova::start(Options::default().plugin("hello", nova_tests::test_plugin("hello-v1"))).await;
    let ops = operations(&nova).await;
    assert!(ops.len() >= 20, "{} operations", ops.len());
    for (method, path, _) in &ops {
        let url = nova.url(&fill(path));
        let response = nova
            .anon
            .request(method.clone(), &url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        if path == "/health" {
            assert_ne!(status, 401, "{method} {path}");
            continue;
        }
        if path == "/hooks/{name}" {
            // Its signature is its credential (tests/workflows.rs): no
            // such hook here.
            assert_eq!(status, 404, "{method} {path}");
            continue;
        }
        assert_eq!(status, 401, "{method} {path} answered an anonymous caller");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.expect("a JSON error");
        assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
    }
    // A route that does not exist tells a stranger nothing either.
    let (status, _) = status_of(nova.anon.get(nova.url("/admin/secrets"))).await;
    assert!(status == 401 || status == 404, "{status}");
    // Nothing was deleted by the anonymous DELETE.
    assert!(nova.plugins_dir.join("hello.wasm").exists());
    // /health tells a stranger what is ready, not where the host keeps
    // its files; a caller with a credential is told.
    let (status, anonymous) = status_of(nova.anon.get(nova.url("/health"))).await;
    assert_eq!(status, 200);
    assert_eq!(anonymous["checks"]["plugins"]["active"], 1);
    assert!(
        anonymous["checks"]["plugins"].get("dir").is_none(),
        "{anonymous}"
    );
    let plugins_dir = nova.plugins_dir.display().to_string();
    assert!(!anonymous.to_string().contains(&plugins_dir), "{anonymous}");
    let told = nova.get_json("/health").await;
    assert_eq!(
        told["checks"]["plugins"]["dir"],
        plugins_dir.as_str(),
        "{told}"
    );
}

#[tokio::test]
async fn keys_carry_their_scopes_and_are_shown_once() {
    let nova =
        Nova::start(Options::default().plugin("hello", nova_tests::test_plugin("hello-v1"))).await;
    let (status, created) = status_of(
        nova.http
            .post(nova.url("/admin/keys"))
            .json(&json!({"name": "reader", "scopes": ["runs:read", "rag:query"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("the key").to_owned();
    assert!(key.starts_with("nova_"), "{key}");
    assert_eq!(created["scopes"], json!(["runs:read", "rag:query"]));
    let id = created["id"].as_str().expect("id").to_owned();
    let reader = http_client(Some(&key));

    // Allowed: list runs. Not allowed: submit, plugins, keys, metrics.
    let (status, _) = status_of(reader.get(nova.url("/workflows"))).await;
    assert_eq!(status, 200);
    let submit = json!({"steps": [{"plugin": "hello"}], "input": 1});
    let (status, body) = status_of(reader.post(nova.url("/workflows")).json(&submit)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("runs:write")),
        "{body}"
    );
    for (method, path) in [
        (Method::GET, "/admin/plugins"),
        (Method::GET, "/admin/keys"),
        (Method::GET, "/metrics"),
        (Method::POST, "/admin/plugins/hello/invoke"),
    ] {
        let (status, body) = status_of(reader.request(method.clone(), nova.url(path))).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }

    // rag:write starts an ingest and follows it, but does not query.
    let (_, made) = status_of(
        nova.http
            .post(nova.url("/admin/keys"))
            .json(&json!({"name": "ingester", "scopes": ["rag:write"]})),
    )
    .await;
    let ingester = http_client(made["key"].as_str());
    let (status, started) =
        status_of(ingester.post(nova.url("/rag/reload")).json(&json!({}))).await;
    assert_eq!(status, 202, "{started}");
    let ingest = format!("/rag/ingests/{}", started["id"].as_str().expect("id"));
    let (status, body) = status_of(ingester.get(nova.url(&ingest))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = status_of(reader.get(nova.url(&ingest))).await;
    assert_eq!(status, 200, "rag:query follows ingests too");
    let query = json!({"query": "anything"});
    let (status, _) = status_of(ingester.post(nova.url("/rag/query")).json(&query)).await;
    assert_eq!(status, 403);
    // Naming a directory of the host needs admin.
    let (status, body) = status_of(
        ingester
            .post(nova.url("/rag/reload"))
            .json(&json!({"dir": "/etc"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // The listing never shows the key, only its prefix; use is recorded.
    let (status, list) = status_of(nova.http.get(nova.url("/admin/keys"))).await;
    assert_eq!(status, 200);
    let text = list.to_string();
    assert!(!text.contains(&key), "the listing leaks the key: {text}");
    let listed = list["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == "reader")
        .expect("the reader key");
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(listed["name"], "reader");
    assert!(key.starts_with(listed["prefix"].as_str().expect("prefix")));
    assert!(listed["last_used_at"].is_string(), "{listed}");

    // Bad requests for a key: unknown scope, no scope, no name.
    for bad in [
        json!({"name": "x", "scopes": ["runs:delete"]}),
        json!({"name": "x", "scopes": []}),
        json!({"name": "", "scopes": ["admin"]}),
    ] {
        let (status, body) = status_of(nova.http.post(nova.url("/admin/keys")).json(&bad)).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // Keys cannot make keys unless they hold admin.
    let (status, _) = status_of(
        reader
            .post(nova.url("/admin/keys"))
            .json(&json!({"name": "escalate", "scopes": ["admin"]})),
    )
    .await;
    assert_eq!(status, 403);

    // Revoked: refused at once on this host.
    let (status, body) = status_of(nova.http.delete(nova.url(&format!("/admin/keys/{id}")))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = status_of(reader.get(nova.url("/workflows"))).await;
    assert_eq!(status, 401);
    let (status, _) = status_of(nova.http.delete(nova.url(&format!("/admin/keys/{id}")))).await;
    assert_eq!(status, 404);
}

/// Two hosts over one Postgres: a key made on one works on the other, and
/// once revoked, neither accepts it after a second.
#[tokio::test]
async fn revocation_reaches_every_host_within_a_second() {
    let backend = Backend::postgres_redis();
    let a = Nova::start(Options::default().backend(&backend)).await;
    let b = Nova::start(Options::default().backend(&backend)).await;
    let created = a
        .client
        .key_create("ci", &["runs:read"])
        .await
        .expect("key");
    let key = created.value.key.clone();
    let client = http_client(Some(&key));
    for host in [&a, &b] {
        let (status, _) = status_of(client.get(host.url("/workflows"))).await;
        assert_eq!(status, 200);
    }
    a.client
        .key_revoke(&created.value.id)
        .await
        .expect("revoke");
    tokio::time::sleep(Duration::from_secs(1)).await;
    for host in [&a, &b] {
        let (status, _) = status_of(client.get(host.url("/workflows"))).await;
        assert_eq!(status, 401, "{} still accepts a revoked key", host.url);
    }
}

/// JSON routes take JSON only: a web page's cross-site form post (which a
/// browser sends without asking) is refused before anything is done.
#[tokio::test]
async fn json_routes_refuse_other_content_types() {
    let nova =
        Nova::start(Options::default().plugin("hello", nova_tests::test_plugin("hello-v1"))).await;
    let workflow = json!({"steps": [{"plugin": "hello"}], "input": 1}).to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        for path in ["/workflows", "/rag/query", "/admin/keys"] {
            let (status, body) = status_of(
                nova.http
                    .post(nova.url(path))
                    .header("content-type", content_type)
                    .header("origin", "https://evil.example")
                    .body(workflow.clone()),
            )
            .await;
            assert_eq!(status, 415, "{path} {content_type}: {body}");
            assert_eq!(body["error"]["code"], "unsupported_media_type");
        }
    }
    let runs = nova.get_json("/workflows").await;
    assert_eq!(runs["runs"], json!([]), "a refused post made a run");
    // The same body as JSON is taken.
    let (status, _) = status_of(
        nova.http
            .post(nova.url("/workflows"))
            .header("content-type", "application/json; charset=utf-8")
            .body(workflow),
    )
    .await;
    assert_eq!(status, 202);

    // Request bodies are objects: serde would read a struct from an array
    // of its fields, which the OpenAPI document does not allow
    // (schemathesis: a schema-violating request accepted).
    for (path, body) in [
        ("/workflows", r#"[[{"plugin": "hello"}], 1]"#),
        ("/admin/keys", r#"["ci", ["admin"]]"#),
        ("/rag/query", r#"["what is nova?"]"#),
        ("/rag/reload", "[null, null]"),
    ] {
        let (status, answer) = status_of(
            nova.http
                .post(nova.url(path))
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(
            answer["error"]["message"],
            "request body: send a JSON object"
        );
    }
    let keys = nova.get_json("/admin/keys").await;
    assert_eq!(keys["keys"], json!([]), "an array made a key: {keys}");
}

/// `NOVA_AUTH=off` is refused on a host reachable from the network, and on
/// loopback it says so at start.
#[tokio::test]
async fn authentication_can_only_be_off_on_loopback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = std::process::Command::new(nova_bin())
        .arg("serve")
        .env("NOVA_AUTH", "off")
        .env("NOVA_BIND", "0.0.0.0:0")
        .env("NOVA_DATA_DIR", dir.path())
        .env("NOVA_KNOWLEDGE", "false")
        .output()
        .expect("run nova");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");

    let port = free_port();
    let nova = Nova::start(
        Options::default()
            .port(port)
            .env("NOVA_AUTH", "off")
            .env("NOVA_KNOWLEDGE", "false"),
    )
    .await;
    assert!(
        nova.stdout_lines()
            .iter()
            .any(|l| l.contains("WARNING: authentication is OFF")),
        "{:?}",
        nova.stdout_lines()
    );
    let (status, _) = status_of(nova.anon.get(nova.url("/workflows"))).await;
    assert_eq!(status, 200);
    // With no credential in the way, a browser must not drive the host: a
    // page of another origin, a cross-site fetch, a DNS name rebound to
    // 127.0.0.1 are refused; the host's own origin is not.
    let reload = || nova.anon.post(nova.url("/admin/plugins/reload"));
    for request in [
        reload().header("origin", "https://evil.example"),
        reload().header("origin", "null"),
        reload().header("sec-fetch-site", "cross-site"),
        reload().header("host", format!("evil.example:{port}")),
    ] {
        let (status, body) = status_of(request).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "not_local", "{body}");
    }
    let (status, body) =
        status_of(reload().header("origin", format!("http://127.0.0.1:{port}"))).await;
    assert_eq!(status, 200, "{body}");
}

/// `/metrics` needs `metrics:read`, unless it is scraped on its own
/// address.
#[tokio::test]
async fn metrics_need_a_scope_or_their_own_address() {
    let port = free_port();
    let nova =
        Nova::start(Options::default().env("NOVA_METRICS_BIND", &format!("127.0.0.1:{port}")))
            .await;
    let (status, _) = status_of(nova.anon.get(nova.url("/metrics"))).await;
    assert_eq!(status, 401);
    let key = nova
        .client
        .key_create("prometheus", &["metrics:read"])
        .await
        .expect("key")
        .value
        .key;
    let scraper = http_client(Some(&key));
    let response = scraper.get(nova.url("/metrics")).send().await.expect("get");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .expect("text")
            .contains("nova_http_requests_total")
    );
    // The metrics address: no credentials, and nothing else served there.
    let separate = format!("http://127.0.0.1:{port}");
    let response = nova
        .anon
        .get(format!("{separate}/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert!(response.text().await.expect("text").contains("nova_"));
    let response = nova
        .anon
        .get(format!("{separate}/workflows"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 404);
}

/// The `/rag` rate limit counts per key, and `X-Forwarded-For` from a peer
/// that is not a trusted proxy changes nothing.
#[tokio::test]
async fn the_rate_limit_keys_on_the_credential() {
    let nova = Nova::start(
        Options::default()
            .env("NOVA_RAG_RATE_LIMIT", "1")
            .env("NOVA_RAG_RATE_BURST", "2")
            .env("NOVA_KNOWLEDGE", "false"),
    )
    .await;
    let mut clients = Vec::new();
    for name in ["one", "two"] {
        let key = nova
            .client
            .key_create(name, &["rag:query"])
            .await
            .expect("key")
            .value
            .key;
        clients.push(http_client(Some(&key)));
    }
    let stats = |client: &reqwest::Client, forwarded: &str| {
        client
            .get(nova.url("/rag/stats"))
            .header("x-forwarded-for", forwarded)
            .send()
    };
    // Key one spends its burst, whatever address it claims to come from.
    for i in 0..2 {
        let status = stats(&clients[0], &format!("10.0.0.{i}"))
            .await
            .expect("get")
            .status();
        assert_ne!(status, 429);
    }
    let status = stats(&clients[0], "10.0.0.9").await.expect("get").status();
    assert_eq!(status, 429);
    // Key two has its own bucket.
    let status = stats(&clients[1], "10.0.0.1").await.expect("get").status();
    assert_ne!(status, 429);
}
