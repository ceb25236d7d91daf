//! The sandbox's last gaps, each closed over real HTTP with a real
//! component: a component that would take the pool's slots, a busy pool
//! (a 503, and runs that wait rather than fail), compilations bounded in
//! time and memory and holding up nothing, outputs no limit covered
//! (`describe()`, errors, chunks), forged log lines, directories a
//! manifest must not grant, symlinks ingest must not follow, and plugin
//! names that must not become paths.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nova_tests::{Backend, Nova, Options, test_plugin, wat_component};
use reqwest::Method;
use serde_json::{Value, json};

/// A host whose `nova.toml` is `toml`.
async fn host_with(dir: &Path, toml: &str, options: Options) -> Nova {
    let config = dir.join("nova.toml");
    std::fs::write(&config, toml).expect("config");
    Nova::start(options.env("NOVA_CONFIG", &config.display().to_string())).await
}

async fn upload(nova: &Nova, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let response = nova
        .admin(Method::PUT, &format!("/admin/plugins/{name}"))
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_component_over_its_share_of_the_pool_is_refused_at_load() {
    let dir = tempfile::tempdir().expect("tmp");
    let mm = wat_component("many-memories");
    // By default its 127 core instances are over the cap.
    let nova = Nova::start(Options::default().env("NOVA_KNOWLEDGE", "false")).await;
    let (status, body) = upload(&nova, "many-memories", mm.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains("127 core module instances"),
        "{body}"
    );
    assert!(
        message(&body).contains("plugins.max_core_instances_per_component"),
        "{body}"
    );
    // With room for the instances, its 127 memories are over that cap.
    let nova = host_with(
        dir.path(),
        "[plugins]\nmax_core_instances_per_component = 200\n",
        Options::default().env("NOVA_KNOWLEDGE", "false"),
    )
    .await;
    let (status, body) = upload(&nova, "many-memories", mm).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains("127 Wasm linear memories"),
        "{body}"
    );
    assert!(
        message(&body).contains("plugins.max_memories_per_component"),
        "{body}"
    );
    assert!(!nova.plugins_dir.join("many-memories.wasm").exists());
}

/// One instance slot, held by a slow call: a direct call gets 503
/// `plugin_busy` with Retry-After; a workflow step waits its turn and the
/// run succeeds, though it allows no retries.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_pool_is_a_503_and_runs_wait_instead_of_failing() {
    let nova = Nova::start(
        Options::default()
            .env("NOVA_KNOWLEDGE", "false")
            .env("NOVA_PLUGIN_CONCURRENCY", "1")
            .env("NOVA_PLUGIN_TIMEOUT_MS", "500")
            .plugin("hello", test_plugin("hello-v1"))
            .plugin("slow", test_plugin("slow-step")),
    )
    .await;
    std::fs::write(
        nova.plugins_dir.join("slow.toml"),
        "[limits]\ntimeout_ms = 60000\n",
    )
    .expect("manifest");
    nova.wait_for("slow", "the manifest applied", |e| {
        e["limits"]["timeout_ms"] == 60000
    })
    .await;
    // About five seconds of counting on the machine this was written on.
    let slow = nova.spawn_step(
        "slow",
        json!(null),
        Some(json!({"iterations": 10_000_000_000u64})),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    let response = nova
        .admin(Method::POST, "/admin/plugins/hello/invoke")
        .json(&json!(1))
        .send()
        .await
        .expect("invoke");
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "plugin_busy");

    let (status, submitted) = nova
        .submit(&json!({"steps": [{"plugin": "hello", "retries": 0}], "input": 7}))
        .await;
    assert_eq!(status, 202, "{submitted}");
    let id = submitted["id"].as_str().expect("id");
    // An upload meanwhile: its describe() waits for the pool, and the
    // plugin is not refused for a busy host.
    let upload = {
        let request = nova
            .admin(Method::PUT, "/admin/plugins/hello2")
            .body(std::fs::read(test_plugin("hello-v1")).expect("component"));
        tokio::spawn(async move {
            let response = request.send().await.expect("upload");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        })
    };
    let (status, _) = slow.await.expect("join");
    assert_eq!(status, 200, "the slow call finished");
    let (status, body) = upload.await.expect("join");
    assert_eq!(status, 201, "{body}");
    let run = nova.wait_run(id, 30).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"]["echo"], 7);
    // The tries that found no free instance are not attempts: another
    // worker taking the run over would count them against its retries.
    assert_eq!(run["steps"][0]["attempts"], 1, "{run}");
    let metrics = nova
        .http
        .get(nova.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("nova_workflow_steps_total{outcome=\"busy\"}"),
        "the busy attempts are counted"
    );
}

/// The compiler runs in a child bounded in time and memory; a killed child
/// refuses that upload with the reason, and while it compiles, other
/// uploads and calls go on.
#[tokio::test(flavor = "multi_thread")]
async fn compilations_are_bounded_and_hold_up_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let bomb = wat_component("compile-bomb");
    let nova = host_with(
        dir.path(),
        "[plugins]\ncompile_timeout_ms = 700\n",
        Options::default()
            .env("NOVA_KNOWLEDGE", "false")
            // Its own compile cache: nothing is compiled already.
            .env(
                "NOVA_CACHE_DIR",
                &dir.path().join("cache").display().to_string(),
            )
            .plugin("hello", test_plugin("hello-v1")),
    )
    .await;
    let bomb_upload = {
        let request = nova
            .admin(Method::PUT, "/admin/plugins/bomb")
            .body(bomb.clone());
        tokio::spawn(async move {
            let response = request.send().await.expect("upload");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.expect("JSON"),
                Instant::now(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Another upload, and a call, while the bomb compiles.
    let (status, body) = upload(
        &nova,
        "other",
        std::fs::read(test_plugin("hello-v2")).unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let other_done = Instant::now();
    let (status, _) = nova.invoke_step("hello", &json!(1), None).await;
    assert_eq!(status, 200);
    let (status, body, bomb_done) = bomb_upload.await.expect("join");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_plugin");
    assert!(message(&body).contains("took longer than 0.7 s"), "{body}");
    assert!(
        message(&body).contains("plugins.compile_timeout_ms"),
        "{body}"
    );
    assert!(
        other_done < bomb_done,
        "the other upload waited for the bomb's compilation"
    );
    assert!(!nova.plugins_dir.join("bomb.wasm").exists());

    // Out of memory: the same, for the memory limit.
    let dir = tempfile::tempdir().expect("tmp");
    let nova = host_with(
        dir.path(),
        "[plugins]\ncompile_memory_mb = 256\n",
        Options::default().env("NOVA_KNOWLEDGE", "false").env(
            "NOVA_CACHE_DIR",
            &dir.path().join("cache").display().to_string(),
        ),
    )
    .await;
    let (status, body) = upload(&nova, "bomb", bomb).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains("memory limit of 256 MiB")
            && message(&body).contains("plugins.compile_memory_mb"),
        "{body}"
    );
    // A small component still compiles within it.
    let (status, body) = upload(
        &nova,
        "hello",
        std::fs::read(test_plugin("hello-v1")).unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// What a plugin hands back is kept only within limits: a 100 MiB
/// `describe()` refuses the plugin at load, a 60 MB error is cut, and two
/// million empty chunks are refused.
#[tokio::test]
async fn outputs_are_kept_within_limits() {
    let mut nova = Nova::start(
        Options::default()
            .env("NOVA_KNOWLEDGE", "false")
            .plugin("bulk", test_plugin("evil-bulk"))
            .plugin("chunks", test_plugin("evil-chunks")),
    )
    .await;
    let (status, body) = upload(
        &nova,
        "describer",
        std::fs::read(test_plugin("evil-describe")).unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "plugin_describe_failed", "{body}");
    let listing = nova.get_json("/admin/plugins").await.to_string();
    assert!(
        listing.len() < 1 << 20,
        "the listing is {} bytes",
        listing.len()
    );

    // 60 MB of error is more than the host copies out of a call: the
    // call traps before the copy.
    let fail = |bytes: u64| json!({"fail_bytes": bytes});
    let (status, body) = nova
        .invoke_step("bulk", &json!(null), Some(&fail(60_000_000)))
        .await;
    assert_eq!(status, 502, "{body:.300}");
    assert_eq!(body["error"]["code"], "plugin_output_too_large");
    assert!(message(&body).len() <= 9 << 10);
    // 1 MB of error is copied, and cut to 8 KiB.
    let (status, body) = nova
        .invoke_step("bulk", &json!(null), Some(&fail(1_000_000)))
        .await;
    assert_eq!(status, 422);
    assert!(message(&body).len() <= 9 << 10);
    assert!(message(&body).ends_with("(cut)"));
    // A run keeps them cut too.
    for bytes in [1_000_000, 60_000_000] {
        let step = json!({"plugin": "bulk", "config": fail(bytes)});
        let (_, submitted) = nova.submit(&json!({"steps": [step]})).await;
        let id = submitted["id"].as_str().expect("id");
        let run = nova.wait_run(id, 30).await;
        assert_eq!(run["status"], "failed");
        assert!(run["error"].as_str().expect("error").len() <= 8 << 10);
        assert!(run["steps"][0]["error"].as_str().expect("error").len() <= 8 << 10);
    }

    // A number no JSON reader can hold (found by `just fuzz
    // plugin_output`): the grammar allows it, the host refuses it as
    // output, as input and as config, so no reader of a run chokes on it.
    let raw = |text: &str| json!({"raw": text});
    let (status, body) = nova
        .invoke_step(
            "bulk",
            &json!(null),
            Some(&raw(r#"{"a": [1E07777777777]}"#)),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "plugin_invalid_output", "{body}");
    assert!(message(&body).contains("number out of range"), "{body}");
    let (status, body) = nova
        .invoke_step(
            "bulk",
            &json!(null),
            Some(&raw(r#"{"a": [1e300, -1e-400, 12]}"#)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let step = json!({"plugin": "bulk", "config": raw("[1e400]")});
    let (_, submitted) = nova.submit(&json!({"steps": [step]})).await;
    let run = nova
        .wait_run(submitted["id"].as_str().expect("id"), 30)
        .await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .expect("error")
            .contains("number out of range"),
        "{run}"
    );
    for body in [
        r#"{"steps": [{"plugin": "bulk"}], "input": {"n": 1e400}}"#,
        r#"{"steps": [{"plugin": "bulk", "config": {"n": -1e400}}]}"#,
    ] {
        let response = nova
            .http
            .post(nova.url("/workflows"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("submit");
        assert_eq!(response.status(), 400);
        let answer = response.text().await.expect("answer");
        assert!(answer.contains("number out of range"), "{answer}");
    }

    let (status, body) = nova
        .invoke_loader("chunks", "x.chunks", b"2000000 0".to_vec())
        .await;
    // Two million chunks are more than the host copies out of a call.
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "plugin_output_too_large");
    // Forty thousand tiny ones fit the copy, but not a 7-byte document.
    let (status, body) = nova
        .invoke_loader("chunks", "x.chunks", b"40000 1".to_vec())
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "plugin_invalid_output");
    assert!(message(&body).contains("40000 chunks"), "{body}");
    assert!(message(&body).contains("plugins.max_chunks"), "{body}");
    let (status, body) = nova
        .invoke_loader("chunks", "x.chunks", b"3 100".to_vec())
        .await;
    assert_eq!(status, 200, "{body}");
    // A whole section in one chunk is kept (a real page's long table is
    // 91 KB); a chunk over plugins.chunk_bytes (1 MiB) is not.
    let (status, body) = nova
        .invoke_loader("chunks", "x.chunks", b"1 100000".to_vec())
        .await;
    assert_eq!(status, 200, "{body:.300}");
    let (status, body) = nova
        .invoke_loader("chunks", "x.chunks", b"1 2000000".to_vec())
        .await;
    assert_eq!(status, 502, "{body:.300}");
    assert!(
        message(&body).contains("plugins.chunk_bytes"),
        "{body:.300}"
    );
    assert!(nova.alive());
}

/// A plugin's log message cannot end its line and write another.
#[tokio::test]
async fn plugin_logs_cannot_forge_lines() {
    let dir = tempfile::tempdir().expect("tmp");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("dir");
    std::fs::copy(test_plugin("evil-bulk"), plugins.join("bulk.wasm")).expect("copy");
    let mut child = std::process::Command::new(nova_tests::nova_bin())
        .arg("serve")
        .env("NOVA_BIND", "127.0.0.1:0")
        .env("NOVA_DATA_DIR", dir.path().join("data"))
        .env("NOVA_PLUGINS_DIR", &plugins)
        .env("NOVA_ADMIN_TOKEN", nova_tests::TOKEN)
        .env("NOVA_KNOWLEDGE", "false")
        .env("NOVA_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let url = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("nova listening on ").map(str::to_owned))
        .expect("listening");
    let http = nova_tests::http_client(Some(nova_tests::TOKEN));
    let deadline = Instant::now() + Duration::from_secs(30);
    let forged =
        "ok\n2026-12-04T00:00:00.000000Z ERROR nova::server: FORGED admin token leaked\r\x1b[2K";
    loop {
        let response = http
            .post(format!("{url}/admin/plugins/bulk/invoke"))
            .query(&[("config", json!({"log": forged}).to_string())])
            .json(&json!(null))
            .send()
            .await;
        if response.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the plugin never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    let _ = child.wait();
    assert!(
        stderr.contains("ok\\n2026-12-04"),
        "the message is missing: {stderr}"
    );
    for line in stderr.lines() {
        assert!(
            !line.trim_start().starts_with("2026-12-04T00:00:00"),
            "a forged line: {line}"
        );
        assert!(
            !line.contains('\x1b'),
            "an escape sequence reached the log: {line:?}"
        );
    }
}

/// No manifest may grant a directory that overlaps a knowledge directory
/// (or holds the plugin or data directory); ingest reads nothing a symlink
/// leads to outside its directory, nor a FIFO; an anonymous caller, and a
/// reader, never see the host's environment.
#[tokio::test(flavor = "multi_thread")]
async fn ingest_and_grants_keep_to_their_directories() {
    let dir = tempfile::tempdir().expect("tmp");
    let knowledge = dir.path().join("knowledge");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(knowledge.join("notes")).expect("dir");
    std::fs::create_dir_all(&outside).expect("dir");
    std::fs::write(
        knowledge.join("notes/tea.md"),
        "# Tea\n\nSteep green tea for two minutes.\n",
    )
    .expect("write");
    std::fs::write(
        outside.join("secret.md"),
        "# Secret\n\nzebra-password-4471\n",
    )
    .expect("write");
    std::os::unix::fs::symlink(
        "../../../../../../../../proc/self/environ",
        knowledge.join("environ.txt"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(outside.join("secret.md"), knowledge.join("secret.md"))
        .expect("symlink");
    std::os::unix::fs::symlink("tea.md", knowledge.join("notes/same.md")).expect("symlink");
    let fifo = std::process::Command::new("mkfifo")
        .arg(knowledge.join("pipe.md"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());

    let mut nova = Nova::start(
        Options::default()
            .loaders()
            .knowledge_dir(&knowledge)
            .plugin("bulk", test_plugin("evil-bulk")),
    )
    .await;
    let reader = nova.key_client(&["rag:query"]).await;
    for question in [
        "NOVA_ADMIN_TOKEN",
        "zebra password",
        "PATH HOME environment",
    ] {
        let answer: Value = reader
            .post(nova.url("/rag/query"))
            .json(&json!({"query": question, "top_k": 10}))
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("JSON");
        let text = answer.to_string();
        assert!(
            !text.contains(nova_tests::TOKEN),
            "the token leaked: {text}"
        );
        assert!(
            !text.contains("zebra-password"),
            "a file outside was read: {text}"
        );
        let sources: Vec<&str> = answer["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter_map(|h| h["source"].as_str())
            .collect();
        assert!(
            sources.iter().all(|s| s.starts_with("notes/")),
            "{sources:?}"
        );
    }
    let stats = nova.get_json("/rag/stats").await;
    let failures = stats["ingest"]["last"]["failures"].to_string();
    assert!(failures.contains("environ.txt"), "{failures}");
    assert!(failures.contains("secret.md"), "{failures}");

    // A file that was read, then swapped for a link that leads out: what
    // was indexed from it goes, and the link is not followed.
    std::fs::remove_file(knowledge.join("notes/tea.md")).expect("remove");
    std::os::unix::fs::symlink(outside.join("secret.md"), knowledge.join("notes/tea.md"))
        .expect("symlink");
    let started: Value = nova
        .admin(Method::POST, "/rag/reload")
        .json(&json!({}))
        .send()
        .await
        .expect("reload")
        .json()
        .await
        .expect("JSON");
    let ingest = format!("/rag/ingests/{}", started["id"].as_str().expect("id"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Done: not running and not queued behind the watcher's own ingest
    // (queued, it says `"running": false` with no report yet).
    loop {
        let progress = nova.get_json(&ingest).await;
        if progress["running"] == json!(false) && progress["report"].is_object() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ingest did not end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer: Value = nova
        .http
        .post(nova.url("/rag/query"))
        .json(&json!({"query": "green tea", "top_k": 10}))
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("JSON");
    let text = answer.to_string();
    assert!(!text.contains("zebra-password"), "{text}");
    assert!(
        !text.contains("Steep green tea"),
        "old chunks answer: {text}"
    );

    // A grant of the knowledge directory, or of a directory inside it,
    // refuses the plugin; another directory is fine.
    for (granted, refused) in [
        (knowledge.clone(), true),
        (knowledge.join("notes"), true),
        (dir.path().to_owned(), true),
        (outside.clone(), false),
    ] {
        std::fs::write(
            nova.plugins_dir.join("bulk.toml"),
            format!(
                "[[grants.dirs]]\nhost = \"{}\"\nguest = \"/data\"\nwritable = true\n",
                granted.display()
            ),
        )
        .expect("manifest");
        let entry = nova
            .wait_for("bulk", "the manifest applied", |e| {
                e["rejected"].is_object() == refused
                    && (refused || e["grants"]["dirs"][0]["host"].is_string())
            })
            .await;
        if refused {
            let error = entry["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("overlaps") || error.contains("contains"),
                "{error}"
            );
        }
    }
    assert!(nova.alive());
}

/// A name that is not a plugin name never becomes a path: not from the
/// fleet's table, not from a URL.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_names_never_become_paths() {
    let backend = Backend::postgres_redis();
    let root = tempfile::tempdir().expect("tmp");
    let plugins = root.path().join("a/b/c/plugins");
    std::fs::create_dir_all(&plugins).expect("dir");
    // Where `../../../pwned.wasm` from the plugin directory lands.
    let bait = root.path().join("a/pwned.wasm");
    std::fs::write(&bait, b"not to be deleted").expect("bait");
    let nova = Nova::start(
        Options::default()
            .backend(&backend)
            .shared_plugins_dir(&plugins)
            .env("NOVA_KNOWLEDGE", "false"),
    )
    .await;
    let Backend::PostgresRedis { database_url, .. } = &backend else {
        unreachable!()
    };
    let hello = std::fs::read(test_plugin("hello-v1")).expect("read");
    let sql = format!(
        "INSERT INTO plugins (name, sha256, wasm, size_bytes, updated_at, updated_by) \
         VALUES ('../../../pwned', 'x', decode('{}', 'hex'), {}, 1, 'attacker'); \
         NOTIFY nova_plugins, '../../../pwned';",
        hex_of(&hello),
        hello.len()
    );
    let out = std::process::Command::new("psql")
        .args([database_url.as_str(), "-v", "ON_ERROR_STOP=1", "-qc", &sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = nova
        .admin(Method::POST, "/admin/plugins/reload")
        .send()
        .await;
    assert_eq!(std::fs::read(&bait).expect("bait"), b"not to be deleted");
    assert!(!root.path().join("a/b/c/pwned.wasm").exists());
    let response = nova
        .admin(Method::DELETE, "/admin/plugins/..%2F..%2F..%2Fpwned")
        .send()
        .await
        .expect("delete");
    assert!(
        response.status() == 404 || response.status() == 400,
        "{}",
        response.status()
    );
    assert_eq!(std::fs::read(&bait).expect("bait"), b"not to be deleted");
    // Nothing serves under that name.
    assert!(
        nova.get_json("/admin/plugins").await["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .all(|p| p["serving"] == false || p["name"] != "../../../pwned")
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Per-plugin quotas on the store and on kv (on Redis): past them a plugin
/// gets an error, keeps what it had, and other plugins are untouched; a
/// manifest cannot raise its quota past the host's maximum.
#[tokio::test(flavor = "multi_thread")]
async fn store_and_kv_quotas_hold_per_plugin() {
    let backend = Backend::postgres_redis();
    let dir = tempfile::tempdir().expect("tmp");
    let nova = host_with(
        dir.path(),
        "[plugins]\nstore_docs = 50\nstore_bytes = 2000000\nkv_keys = 50\nkv_bytes = 200000\n\
         max_store_docs = 1000\n",
        Options::default()
            .backend(&backend)
            .env("NOVA_KNOWLEDGE", "false")
            .plugin("bulk", test_plugin("evil-bulk"))
            .plugin("kvuser", test_plugin("log-and-kv")),
    )
    .await;
    let run = |config: Value| {
        let nova = &nova;
        async move { nova.invoke_step("bulk", &json!(null), Some(&config)).await }
    };
    let (status, out) =
        run(json!({"store_put": {"count": 100, "bytes": 1000, "prefix": "d/"}})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["output"]["stored"], 50, "{out}");
    let error = out["output"]["error"].as_str().expect("an error");
    assert!(error.contains("quota of 50 documents"), "{error}");
    let (_, out) = run(json!({"store_list": {"prefix": "d/", "limit": 1000}})).await;
    assert_eq!(out["output"]["docs"], 50, "{out}");

    let (status, out) = run(json!({"kv_put": {"count": 100, "bytes": 100}})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["output"]["stored"], 50, "{out}");
    assert!(
        out["output"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("kv quota")),
        "{out}"
    );
    // Another plugin's kv and store still work.
    let (status, out) = nova.invoke_step("kvuser", &json!(null), None).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["output"]["kv_roundtrip"], true, "{out}");
    assert!(out["output"]["store"]["error"].is_null(), "{out}");

    // The manifest may raise a quota to the host's maximum, not past it.
    std::fs::write(
        nova.plugins_dir.join("bulk.toml"),
        "[limits]\nstore_docs = 5000\n",
    )
    .expect("manifest");
    let entry = nova
        .wait_for("bulk", "the manifest refused", |e| {
            e["rejected"].is_object()
        })
        .await;
    assert!(
        entry["error"]
            .as_str()
            .is_some_and(|e| e.contains("plugins.max_store_docs")),
        "{entry}"
    );
    std::fs::write(
        nova.plugins_dir.join("bulk.toml"),
        "[limits]\nstore_docs = 60\n",
    )
    .expect("manifest");
    nova.wait_for("bulk", "the manifest applied", |e| {
        e["limits"]["store_docs"] == 60 && e["rejected"].is_null()
    })
    .await;
    let (_, out) = run(json!({"store_put": {"count": 100, "bytes": 1000, "prefix": "e/"}})).await;
    assert_eq!(out["output"]["stored"], 10, "{out}");
}

/// A plugin built against the first contract (`nova:plugin@0.1.0`) loads
/// and runs on a host that serves a later `0.1.x`.
#[tokio::test]
async fn plugins_of_the_first_contract_still_run() {
    let nova = Nova::start(
        Options::default()
            .env("NOVA_KNOWLEDGE", "false")
            .plugin("old", test_plugin("contract-v0-1-0")),
    )
    .await;
    let (status, out) = nova.invoke_step("old", &json!({"n": 1}), None).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["output"], json!({"listed": 1, "input": {"n": 1}}));
}
