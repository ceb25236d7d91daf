//! `GET /openapi.json`: the document is OpenAPI 3.x, and every operation in
//! it is served by the host (a request to it is not the router's fallback
//! nor a 405), answered with a status the document lists for it.

use nova_tests::{Nova, Options, TOKEN};
use reqwest::Method;
use serde_json::Value;

/// Fills `{param}` segments: ids with a well-formed UUID no run or ingest
/// has, names with a plugin that does not exist, so that no request changes
/// the host.
fn fill(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{id}" => "00000000-0000-7000-8000-000000000000",
            "{name}" => "no-such-plugin",
            // Not a valid collection name: nothing can be created under it.
            "{collection}" => "No-Such",
            s if s.starts_with('{') => panic!("no dummy value for path parameter {s} in {path}"),
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// (method, path, operation) for every operation in the document.
fn operations(doc: &Value) -> Vec<(Method, String, Value)> {
    let mut ops = Vec::new();
    let paths = doc["paths"].as_object().expect("paths is an object");
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for (method, op) in item {
            let method = match method.as_str() {
                "get" => Method::GET,
                "post" => Method::POST,
                "put" => Method::PUT,
                "delete" => Method::DELETE,
                "patch" => Method::PATCH,
                "head" => Method::HEAD,
                "options" => Method::OPTIONS,
                // Path-level fields (parameters, summary...), not operations.
                _ => continue,
            };
            ops.push((method, path.clone(), op.clone()));
        }
    }
    ops
}

/// Whether the operation names a credential (every one but `/health`).
fn needs_credentials(op: &Value) -> bool {
    op["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()))
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let nova = Nova::start(Options::default()).await;
    let response = nova
        .http
        .get(nova.url("/openapi.json"))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = response.json().await.expect("the document is JSON");
    let version = doc["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3."), "OpenAPI 3.x, not {version}");
    assert_eq!(doc["info"]["title"], "nova");
    assert!(doc["info"]["version"].as_str().is_some());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("bearer")
    );

    let ops = operations(&doc);
    // The routes this test was written against, at the least.
    for (method, path) in [
        (Method::GET, "/health"),
        (Method::GET, "/metrics"),
        (Method::GET, "/openapi.json"),
        (Method::POST, "/workflows"),
        (Method::GET, "/workflows"),
        (Method::GET, "/workflows/{id}"),
        (Method::POST, "/workflows/{id}/cancel"),
        (Method::GET, "/admin/plugins"),
        (Method::POST, "/admin/plugins/reload"),
        (Method::GET, "/admin/plugins/{name}"),
        (Method::PUT, "/admin/plugins/{name}"),
        (Method::DELETE, "/admin/plugins/{name}"),
        (Method::POST, "/admin/plugins/{name}/invoke"),
        (Method::POST, "/rag/query"),
        (Method::GET, "/rag/stats"),
        (Method::POST, "/rag/reload"),
        (Method::GET, "/rag/ingests/{id}"),
        (Method::POST, "/admin/keys"),
        (Method::GET, "/admin/keys"),
        (Method::DELETE, "/admin/keys/{id}"),
    ] {
        assert!(
            ops.iter().any(|(m, p, _)| *m == method && p == path),
            "{method} {path} is missing from the document"
        );
    }

    for (method, path, op) in &ops {
        let url = nova.url(&fill(path));
        let mut request = nova.http.request(method.clone(), &url);
        if needs_credentials(op) {
            request = request.bearer_auth(TOKEN);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        assert_ne!(status, 405, "{method} {path}: 405 {body}");
        assert!(
            !body.contains("\"no route for "),
            "{method} {path} fell through to the router's fallback: {status} {body}"
        );
        let documented = &op["responses"];
        assert!(
            documented.get(status.to_string()).is_some(),
            "{method} {path} answered {status}, which the document does not list: {body}"
        );
        if status >= 400 {
            let error: Value = serde_json::from_str(&body).expect("errors are JSON");
            assert!(
                error["error"]["code"].is_string() && error["error"]["message"].is_string(),
                "{method} {path}: {body}"
            );
        }

        // The document says which operations need a credential; without
        // one they answer 401, and the others do not.
        let without = nova
            .anon
            .request(method.clone(), &url)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16();
        if needs_credentials(op) {
            assert_eq!(without, 401, "{method} {path} without a token");
        } else {
            assert_ne!(without, 401, "{method} {path} asks for a token");
        }
    }
}
