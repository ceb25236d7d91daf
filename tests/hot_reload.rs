//! Hot reload: new, changed, broken and removed plugin files take effect
//! without a restart, and a broken file never replaces a working version.

use std::time::Duration;

use nova_tests::{Nova, Options, sha256_file, test_plugin};
use serde_json::{Value, json};

async fn version_served(nova: &Nova, name: &str) -> String {
    let (status, body) = nova.invoke_step(name, &json!("ping"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["version"], body["version"], "{body}");
    body["output"]["version"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn replaced_broken_and_removed_files() {
    let v1 = test_plugin("hello-v1");
    let v2 = test_plugin("hello-v2");
    let mut nova = Nova::start(Options::default().plugin("hello", v1.clone())).await;

    let entry = nova.entry("hello").await.expect("hello listed");
    assert_eq!(entry["sha256"], sha256_file(&v1));
    assert_eq!(entry["version"], "1.0.0");
    assert_eq!(entry["kind"], "step");
    assert_eq!(version_served(&nova, "hello").await, "1.0.0");

    // A deploy tool's atomic replace.
    nova.install("hello", &v2);
    let entry = nova
        .wait_for("hello", "v2 active", |e| e["sha256"] == sha256_file(&v2))
        .await;
    assert_eq!(entry["version"], "2.0.0");
    assert_eq!(entry["status"], "active");
    assert_eq!(version_served(&nova, "hello").await, "2.0.0");

    // A plain overwrite in place (what `cp` does): the burst of writes
    // settles into one reload.
    std::fs::write(
        nova.plugins_dir.join("hello.wasm"),
        std::fs::read(&v1).unwrap(),
    )
    .unwrap();
    nova.wait_for("hello", "v1 again", |e| e["version"] == "1.0.0")
        .await;
    assert_eq!(version_served(&nova, "hello").await, "1.0.0");

    // A truncated file is rejected; v1 keeps serving.
    let bytes = std::fs::read(&v2).unwrap();
    std::fs::write(
        nova.plugins_dir.join("hello.wasm"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let entry = nova
        .wait_for("hello", "truncated file rejected", |e| {
            e["status"] == "rejected"
        })
        .await;
    let error = entry["error"].as_str().unwrap();
    assert!(
        error.contains("not a valid WebAssembly component"),
        "{error}"
    );
    assert_eq!(entry["serving"], true);
    assert_eq!(entry["version"], "1.0.0");
    assert_eq!(
        entry["sha256"],
        sha256_file(&v1),
        "the serving version is listed"
    );
    assert_eq!(version_served(&nova, "hello").await, "1.0.0");

    // A component of no known world is rejected; v1 keeps serving.
    nova.install("hello", &test_plugin("not-a-plugin"));
    let entry = nova
        .wait_for("hello", "foreign component rejected", |e| {
            e["error"]
                .as_str()
                .is_some_and(|m| m.contains("implements no nova world"))
        })
        .await;
    assert_eq!(entry["status"], "rejected");
    assert_eq!(
        entry["rejected"]["sha256"],
        sha256_file(&test_plugin("not-a-plugin"))
    );
    assert_eq!(version_served(&nova, "hello").await, "1.0.0");

    // A good file clears the rejection.
    nova.install("hello", &v2);
    let entry = nova
        .wait_for("hello", "v2 active again", |e| e["version"] == "2.0.0")
        .await;
    assert_eq!(entry["status"], "active");
    assert_eq!(entry["error"], Value::Null);
    assert_eq!(version_served(&nova, "hello").await, "2.0.0");

    // A new name appears; a removed file disappears.
    nova.install("greeter", &v1);
    nova.wait_for("greeter", "new plugin listed", |e| e["status"] == "active")
        .await;
    assert_eq!(version_served(&nova, "greeter").await, "1.0.0");
    std::fs::remove_file(nova.plugins_dir.join("greeter.wasm")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while nova.entry("greeter").await.is_some() {
        assert!(std::time::Instant::now() < deadline, "greeter still listed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = nova.invoke_step("greeter", &json!(1), None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "plugin_not_found");
    assert!(nova.alive());
}

#[tokio::test]
async fn a_call_in_flight_finishes_on_its_version() {
    let nova = Nova::start(
        Options::default()
            .plugin("work", test_plugin("slow-step"))
            .env("NOVA_PLUGIN_TIMEOUT_MS", "60000"),
    )
    .await;
    let in_flight = nova.spawn_step(
        "work",
        json!(null),
        Some(json!({"iterations": 3_000_000_000u64})),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;

    let v2 = test_plugin("hello-v2");
    nova.install("work", &v2);
    nova.wait_for("work", "replaced", |e| e["sha256"] == sha256_file(&v2))
        .await;
    assert!(
        !in_flight.is_finished(),
        "the slow call must still be running when the new version lands"
    );
    assert_eq!(version_served(&nova, "work").await, "2.0.0");

    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], "1.0.0");
    assert_eq!(body["output"], json!({"done": true, "version": "1.0.0"}));
}

#[tokio::test]
async fn a_restart_loads_compiled_plugins_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let options = || {
        Options::default()
            .plugin("hello", test_plugin("hello-v1"))
            .env("NOVA_CACHE_DIR", cache_dir)
    };
    let first = Nova::start(options()).await;
    let entry = first.entry("hello").await.unwrap();
    assert_eq!(entry["compile"]["from_cache"], false, "{entry}");
    drop(first);

    let second = Nova::start(options()).await;
    let entry = second.entry("hello").await.unwrap();
    assert_eq!(entry["compile"]["from_cache"], true, "{entry}");
    assert_eq!(version_served(&second, "hello").await, "1.0.0");
}
