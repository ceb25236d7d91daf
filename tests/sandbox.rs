//! Hostile plugins fail only their own call, with a clear error, within
//! their limits; the host and the next call are unaffected.

use std::time::{Duration, Instant};

use nova_tests::{Nova, Options, test_plugin};
use serde_json::{Value, json};

const EVIL: [&str; 6] = [
    "evil-loop",
    "evil-alloc",
    "evil-recurse",
    "evil-trap",
    "evil-escape",
    "evil-output",
];

async fn host_with_evil_plugins(timeout_ms: u64) -> Nova {
    let mut options = Options::default()
        .plugin("hello", test_plugin("hello-v1"))
        .env("NOVA_PLUGIN_TIMEOUT_MS", &timeout_ms.to_string());
    for name in EVIL {
        options = options.plugin(name, test_plugin(name));
    }
    Nova::start(options).await
}

async fn assert_next_call_served(nova: &Nova) {
    let (status, body) = nova.invoke_step("hello", &json!({"n": 1}), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["echo"], json!({"n": 1}));
}

#[tokio::test]
async fn each_hostile_plugin_fails_only_its_own_call() {
    let mut nova = host_with_evil_plugins(1_000).await;
    // (plugin, status, code, words the message must carry)
    let cases: [(&str, u16, &str, &str); 5] = [
        ("evil-loop", 504, "plugin_timeout", "time limit of 1000 ms"),
        (
            "evil-alloc",
            502,
            "plugin_out_of_memory",
            "memory limit of 128 MiB",
        ),
        ("evil-recurse", 502, "plugin_stack_overflow", "stack"),
        (
            "evil-trap",
            502,
            "plugin_trap",
            "evil-trap: deliberate panic",
        ),
        (
            "evil-output",
            502,
            "plugin_output_too_large",
            "exceeds its limit of 16777216 bytes",
        ),
    ];
    for (plugin, status, code, words) in cases {
        let start = Instant::now();
        let (got, body) = nova.invoke_step(plugin, &json!("go"), None).await;
        let took = start.elapsed();
        assert_eq!(got, status, "{plugin}: {body}");
        assert_eq!(body["error"]["code"], code, "{plugin}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{plugin}: {message}");
        // Stopped by its limit, not by some later, unrelated one.
        assert!(took < Duration::from_secs(6), "{plugin} took {took:?}");
        if plugin == "evil-loop" {
            assert!(
                took >= Duration::from_millis(1_000),
                "stopped early: {took:?}"
            );
        }
        assert_next_call_served(&nova).await;
        assert!(nova.alive(), "host died after {plugin}");
    }

    // A bare `unreachable` has no panic message: still a clear trap.
    let (status, body) = nova
        .invoke_step("evil-trap", &json!("unreachable"), None)
        .await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );

    // Failures are counted per plugin.
    let entry = nova.entry("evil-loop").await.unwrap();
    assert_eq!(entry["stats"]["calls"], 1);
    assert_eq!(entry["stats"]["failures"], 1);
    assert_eq!(
        entry["status"], "active",
        "a failing call does not unload a plugin"
    );
}

#[tokio::test]
async fn nothing_is_reachable_without_grants() {
    let nova = host_with_evil_plugins(5_000).await;
    let (status, body) = nova
        .invoke_step(
            "evil-escape",
            &json!({"path": "/etc/hostname", "env": "HOME"}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seen = &body["output"];
    assert_eq!(seen["file"], Value::Null, "read a host file: {seen}");
    assert!(seen["file_error"].is_string());
    assert_eq!(seen["env"], Value::Null, "read a host variable: {seen}");
    assert_eq!(
        seen["dir_entries"],
        Value::Null,
        "listed the host's root: {seen}"
    );
    assert_next_call_served(&nova).await;
}

#[tokio::test]
async fn manifest_grants_directories_variables_and_limits() {
    let granted = tempfile::tempdir().unwrap();
    std::fs::write(granted.path().join("note.txt"), "granted content").unwrap();
    let nova = host_with_evil_plugins(5_000).await;
    std::fs::write(
        nova.plugins_dir.join("evil-escape.toml"),
        format!(
            "[grants]\nenv = {{ HOME = \"/granted-home\" }}\n\
             [[grants.dirs]]\nhost = \"{}\"\nguest = \"/data\"\n",
            granted.path().display()
        ),
    )
    .unwrap();
    std::fs::write(
        nova.plugins_dir.join("evil-loop.toml"),
        "[limits]\ntimeout_ms = 300\n",
    )
    .unwrap();
    // A manifest change alone reloads the plugin.
    nova.wait_for("evil-escape", "grants applied", |e| {
        e["grants"]["env"] == json!(["HOME"])
    })
    .await;
    nova.wait_for("evil-loop", "limit applied", |e| {
        e["limits"]["timeout_ms"] == 300
    })
    .await;

    let (status, body) = nova
        .invoke_step(
            "evil-escape",
            &json!(null),
            Some(&json!({"path": "/data/note.txt", "env": "HOME"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["file"], "granted content");
    assert_eq!(body["output"]["env"], "/granted-home");

    // The grant is that directory, nothing above it.
    let (_, body) = nova
        .invoke_step(
            "evil-escape",
            &json!(null),
            Some(&json!({"path": "/etc/hostname"})),
        )
        .await;
    assert_eq!(body["output"]["file"], Value::Null, "{body}");

    let start = Instant::now();
    let (status, body) = nova.invoke_step("evil-loop", &json!(null), None).await;
    assert_eq!(status, 504, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("300 ms")
    );
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_runaway_plugin_does_not_block_other_calls() {
    let nova = host_with_evil_plugins(3_000).await;
    let looping = nova.spawn_step("evil-loop", json!(null), None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..20 {
        assert_next_call_served(&nova).await;
    }
    assert!(
        !looping.is_finished(),
        "the loop should still be running while other calls are served"
    );
    assert_eq!(looping.await.unwrap().0, 504);
}

/// A one-line TCP server on loopback: answers "pong:" and what it read.
fn echo_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            let mut got = String::new();
            let _ = stream.read_to_string(&mut got);
            let _ = stream.write_all(format!("pong:{got}").as_bytes());
        }
    });
    addr
}

#[tokio::test]
async fn network_and_clocks_only_when_granted() {
    let server = echo_server();
    let nova = host_with_evil_plugins(5_000).await;
    let probe = json!({"connect": server.to_string()});

    let (status, body) = nova
        .invoke_step("evil-escape", &json!(null), Some(&probe))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"]["net"],
        Value::Null,
        "connected without a grant: {body}"
    );
    assert!(body["output"]["net_error"].is_string());
    assert_eq!(
        body["output"]["clock_secs"], 0,
        "clocks read real time without a grant"
    );

    // Granting another address does not open this one.
    let other = format!("127.0.0.1:{}", server.port().wrapping_add(1).max(1));
    std::fs::write(
        nova.plugins_dir.join("evil-escape.toml"),
        format!("[grants]\nnetwork = [\"{other}\"]\n"),
    )
    .unwrap();
    nova.wait_for("evil-escape", "other address granted", |e| {
        e["grants"]["network"] == json!([other])
    })
    .await;
    let (_, body) = nova
        .invoke_step("evil-escape", &json!(null), Some(&probe))
        .await;
    assert_eq!(body["output"]["net"], Value::Null, "{body}");

    std::fs::write(
        nova.plugins_dir.join("evil-escape.toml"),
        format!("[grants]\nnetwork = [\"{server}\"]\nclocks = true\n"),
    )
    .unwrap();
    nova.wait_for("evil-escape", "address granted", |e| {
        e["grants"]["network"] == json!([server.to_string()])
    })
    .await;
    let (status, body) = nova
        .invoke_step("evil-escape", &json!(null), Some(&probe))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["net"], "pong:ping", "{body}");
    assert!(
        body["output"]["clock_secs"].as_u64().unwrap() > 1_600_000_000,
        "{body}"
    );
}

#[tokio::test]
async fn calls_beyond_the_pool_fail_busy_instead_of_queueing_forever() {
    let nova = Nova::start(
        Options::default()
            .plugin("hello", test_plugin("hello-v1"))
            .plugin("evil-loop", test_plugin("evil-loop"))
            .env("NOVA_PLUGIN_CONCURRENCY", "1")
            .env("NOVA_PLUGIN_TIMEOUT_MS", "1500"),
    )
    .await;
    std::fs::write(
        nova.plugins_dir.join("hello.toml"),
        "[limits]\ntimeout_ms = 300\n",
    )
    .unwrap();
    nova.wait_for("hello", "short limit", |e| e["limits"]["timeout_ms"] == 300)
        .await;
    let looping = nova.spawn_step("evil-loop", json!(null), None);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let response = nova
        .admin(reqwest::Method::POST, "/admin/plugins/hello/invoke")
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "plugin_busy", "{body}");
    assert_eq!(looping.await.unwrap().0, 504);
    // The slot is free again.
    assert_next_call_served(&nova).await;
}
