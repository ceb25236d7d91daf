//! The admin API: authentication, upload validation, removal, and JSON
//! errors on every route.

use std::collections::BTreeMap;
use std::path::Path;

use nova_tests::{Nova, Options, TOKEN, sha256_file, test_plugin};
use reqwest::Method;
use serde_json::{Value, json};

fn dir_snapshot(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                sha256_file(&path),
            )
        })
        .collect()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "status {status}: content-type {ct}"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    (status, body)
}

#[tokio::test]
async fn admin_routes_need_the_token() {
    let nova = Nova::start(Options::default().plugin("hello", test_plugin("hello-v1"))).await;
    let routes = [
        (Method::GET, "/admin/plugins"),
        (Method::POST, "/admin/plugins/reload"),
        (Method::GET, "/admin/plugins/hello"),
        (Method::PUT, "/admin/plugins/hello"),
        (Method::DELETE, "/admin/plugins/hello"),
        (Method::POST, "/admin/plugins/hello/invoke"),
    ];
    for (method, path) in routes {
        let bare = nova
            .anon
            .request(method.clone(), nova.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(bare.headers()["www-authenticate"], "Bearer");
        let (status, body) = error_of(bare).await;
        assert_eq!(status, 401, "{method} {path} without a token: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");

        let wrong = nova
            .anon
            .request(method.clone(), nova.url(path))
            .bearer_auth("not-the-token-at-all")
            .send()
            .await
            .unwrap();
        let (status, _) = error_of(wrong).await;
        assert_eq!(status, 401, "{method} {path} with a wrong token");
    }
    // Nothing was deleted by the unauthorised DELETE.
    assert!(nova.plugins_dir.join("hello.wasm").exists());
    let ok = nova
        .admin(Method::GET, "/admin/plugins")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn uploads_are_validated_before_anything_changes() {
    let v1 = test_plugin("hello-v1");
    let nova = Nova::start(Options::default().plugin("hello", v1.clone())).await;
    let before = dir_snapshot(&nova.plugins_dir);
    let truncated = {
        let b = std::fs::read(test_plugin("hello-v2")).unwrap();
        b[..b.len() / 3].to_vec()
    };
    let bad_uploads: [(&str, Vec<u8>, &str); 5] = [
        ("hello", b"this is not wasm".to_vec(), "invalid_plugin"),
        (
            "fresh",
            b"\0asm garbage after a magic".to_vec(),
            "invalid_plugin",
        ),
        ("hello", truncated, "invalid_plugin"),
        (
            "hello",
            std::fs::read(test_plugin("not-a-plugin")).unwrap(),
            "unknown_world",
        ),
        ("fresh", Vec::new(), "empty_body"),
    ];
    for (name, bytes, code) in bad_uploads {
        let response = nova
            .admin(Method::PUT, &format!("/admin/plugins/{name}"))
            .body(bytes)
            .send()
            .await
            .unwrap();
        let (status, body) = error_of(response).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    let response = nova
        .admin(Method::PUT, "/admin/plugins/Bad%20Name")
        .body(std::fs::read(&v1).unwrap())
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(response).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_plugin_name"))
    );

    assert_eq!(
        dir_snapshot(&nova.plugins_dir),
        before,
        "the directory changed"
    );
    let listing = nova.plugins().await;
    assert_eq!(listing.len(), 1, "{listing:?}");
    assert_eq!(listing[0]["version"], "1.0.0");
    assert_eq!(listing[0]["status"], "active");

    // A valid upload replaces the file atomically and serves at once.
    let v2 = test_plugin("hello-v2");
    let response = nova
        .admin(Method::PUT, "/admin/plugins/hello")
        .body(std::fs::read(&v2).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let entry: Value = response.json().await.unwrap();
    assert_eq!(entry["version"], "2.0.0");
    assert_eq!(entry["sha256"], sha256_file(&v2));
    assert_eq!(
        sha256_file(&nova.plugins_dir.join("hello.wasm")),
        sha256_file(&v2)
    );
    let (_, body) = nova.invoke_step("hello", &json!(1), None).await;
    assert_eq!(body["output"]["version"], "2.0.0");

    // A new name is created (201), then removed.
    let response = nova
        .admin(Method::PUT, "/admin/plugins/fresh")
        .body(std::fs::read(&v1).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (status, _) = nova.invoke_step("fresh", &json!(1), None).await;
    assert_eq!(status, 200);
    let response = nova
        .admin(Method::DELETE, "/admin/plugins/fresh")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!nova.plugins_dir.join("fresh.wasm").exists());
    assert!(nova.entry("fresh").await.is_none());
    let response = nova
        .admin(Method::DELETE, "/admin/plugins/fresh")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(response).await;
    assert_eq!(status, 404, "{body}");
    // No temporary upload files were left behind.
    let left: Vec<String> = dir_snapshot(&nova.plugins_dir).into_keys().collect();
    assert_eq!(left, vec!["hello.wasm".to_string()]);
}

#[tokio::test]
async fn reload_rescans_the_directory() {
    let nova = Nova::start(Options::default().plugin("hello", test_plugin("hello-v1"))).await;
    let response = nova
        .admin(Method::POST, "/admin/plugins/reload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["outcomes"]["hello"], "unchanged");
    let entry = &body["plugins"][0];
    for field in [
        "name",
        "kind",
        "version",
        "sha256",
        "size_bytes",
        "loaded_at",
        "path",
        "limits",
        "stats",
        "status",
        "error",
    ] {
        assert!(
            entry.get(field).is_some(),
            "listing entry lacks {field}: {entry}"
        );
    }
    assert_eq!(entry["limits"]["timeout_ms"], 10_000);
    assert_eq!(entry["limits"]["memory_mb"], 128);
}

#[tokio::test]
async fn every_error_is_json() {
    let nova = Nova::start(Options::default().plugin("hello", test_plugin("hello-v1"))).await;
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (nova.http.get(nova.url("/no/such/route")), 404, "not_found"),
        (
            nova.http.delete(nova.url("/health")),
            405,
            "method_not_allowed",
        ),
        (
            nova.admin(Method::POST, "/admin/plugins/missing/invoke")
                .json(&json!({})),
            404,
            "plugin_not_found",
        ),
        (
            nova.admin(Method::POST, "/admin/plugins/hello/invoke")
                .body("{not json"),
            400,
            "invalid_json",
        ),
        (
            nova.admin(Method::POST, "/admin/plugins/hello/invoke?config=%7Bbad")
                .json(&json!(1)),
            400,
            "invalid_config",
        ),
        (
            // On a client of its own: the host closes this connection
            // after its 413, and a pooled one would fail the next request.
            reqwest::Client::new()
                .post(nova.url("/admin/plugins/hello/invoke"))
                .bearer_auth(TOKEN)
                .body(vec![b' '; 40 << 20]),
            413,
            "payload_too_large",
        ),
    ];
    for (request, status, code) in cases {
        let response = match request.send().await {
            Ok(response) => response,
            // The host answers 413 as soon as it has read the headers and
            // closes the connection; a client still writing the body may
            // see the reset before the answer. Either way the body was
            // refused unread.
            Err(e) if code == "payload_too_large" && e.is_request() => {
                let chain = format!("{e:?}");
                assert!(
                    chain.contains("BodyWrite")
                        || chain.contains("BrokenPipe")
                        || chain.contains("ConnectionReset"),
                    "{chain}"
                );
                continue;
            }
            Err(e) => panic!("{code}: {e:?}"),
        };
        let (got, body) = error_of(response).await;
        assert_eq!(
            (got, body["error"]["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }
    let health = nova.get_json("/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["checks"]["plugins"]["ready"], true);
    assert_eq!(health["checks"]["plugins"]["active"], 1);
}

#[tokio::test]
async fn deleting_a_refused_manifest_loads_the_plugin_again() {
    // A manifest that does not parse keeps the plugin from loading...
    let nova = Nova::start(
        Options::default()
            .plugin("hello", test_plugin("hello-v1"))
            .manifest("hello", "[limits]\nno_such_key = 1\n"),
    )
    .await;
    let entry = nova.entry("hello").await.expect("listed");
    assert_eq!(entry["status"], "rejected", "{entry}");
    assert!(
        entry["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no_such_key"),
        "{entry}"
    );
    // ... and deleting it (the `.wasm` unchanged) is a change: the next
    // reload loads the plugin with the host's defaults.
    std::fs::remove_file(nova.plugins_dir.join("hello.toml")).expect("rm manifest");
    let response = nova
        .admin(Method::POST, "/admin/plugins/reload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    // The watcher may have seen the deletion first.
    let outcome = body["outcomes"]["hello"].as_str().unwrap_or_default();
    assert!(["loaded", "unchanged"].contains(&outcome), "{body}");
    let entry = nova.entry("hello").await.expect("listed");
    assert_eq!(entry["status"], "active", "{entry}");
    assert!(entry["error"].is_null(), "{entry}");
}

#[tokio::test]
async fn invoke_answers_with_the_calls_log_lines() {
    let nova =
        Nova::start(Options::default().plugin("log-and-kv", test_plugin("log-and-kv"))).await;
    let (status, body) = nova
        .invoke_step("log-and-kv", &serde_json::json!({}), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let logs = body["logs"].as_array().expect("logs");
    assert_eq!(
        logs.first(),
        Some(&serde_json::json!({"level": "info", "message": "log-and-kv called"})),
        "{body}"
    );
    assert!(
        body.get("logs_dropped").is_none(),
        "nothing dropped: {body}"
    );
    // Each call answers with its own lines only.
    let (_, again) = nova
        .invoke_step("log-and-kv", &serde_json::json!({}), None)
        .await;
    assert_eq!(again["logs"].as_array().map(Vec::len), Some(logs.len()));
}

#[tokio::test]
async fn a_component_needing_what_nova_does_not_serve_is_refused_before_compiling() {
    let nova = Nova::start(Options::default()).await;
    let response = nova
        .admin(Method::PUT, "/admin/plugins/needs-spin")
        .body(nova_tests::wat_component("needs-spin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_plugin", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    for part in [
        "imports fermyon:spin/variables@2.0.0",
        "found before compiling",
        "nova:plugin/{types,log,kv,store,knowledge}@0.1.x",
        "wasi:http/{types,outgoing-handler}@0.2.x",
        "wasi:keyvalue/{store,atomics,batch}@0.2.0-draft",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    assert!(
        !message.contains("wasi:io/error"),
        "a served import is not named: {message}"
    );
}
