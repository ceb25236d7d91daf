//! The HTTP server under load from a hostile client: idle and half-sent
//! connections (slowloris), a stop signal while clients hold connections,
//! and requests hyper itself refuses, whose answers must be JSON too.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use nova_tests::{Nova, Options, test_plugin};
use serde_json::{Value, json};

/// A host with a small connection cap and a short header timeout, set in
/// its configuration file.
async fn host(dir: &Path, extra: &str) -> Nova {
    let config = dir.join("nova.toml");
    std::fs::write(
        &config,
        format!("[http]\nmax_connections = 40\nheader_timeout_ms = 1000\n{extra}"),
    )
    .expect("write config");
    Nova::start(
        Options::default()
            .env("NOVA_CONFIG", &config.display().to_string())
            .env("NOVA_KNOWLEDGE", "false")
            .plugin("slow", test_plugin("slow-step")),
    )
    .await
}

fn addr(nova: &Nova) -> String {
    nova.url.trim_start_matches("http://").to_owned()
}

/// Sends `request` on a new connection and reads the answer to its end:
/// (status, headers and body as text).
fn raw(nova: &Nova, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr(nova)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

fn json_body(answer: &str) -> Value {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {answer:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn what_hyper_refuses_is_answered_in_json() {
    let dir = tempfile::tempdir().expect("tmp");
    let nova = host(dir.path(), "").await;
    let long_uri = format!(
        "GET /workflows?x={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let (status, answer) = raw(&nova, long_uri.as_bytes());
    assert_eq!(status, 414, "{answer:.200}");
    assert_eq!(json_body(&answer)["error"]["code"], "uri_too_long");

    let mut many = String::from("GET /health HTTP/1.1\r\nhost: x\r\n");
    for i in 0..300 {
        many.push_str(&format!("x-filler-{i}: {}\r\n", "b".repeat(400)));
    }
    many.push_str("\r\n");
    let (status, answer) = raw(&nova, many.as_bytes());
    assert_eq!(status, 431, "{answer:.200}");
    assert_eq!(json_body(&answer)["error"]["code"], "headers_too_large");

    let (status, answer) = raw(&nova, b"NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(status, 400, "{answer:.200}");
    assert_eq!(json_body(&answer)["error"]["code"], "bad_request");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/json")
    );

    // The host is fine, and answers the next request.
    let (status, _) = raw(
        &nova,
        b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
}

/// More idle connections than the cap, and connections that send their
/// headers a byte at a time: each is closed after the header timeout, and
/// `/health` answers all along (waiting at most that long for a slot).
#[tokio::test(flavor = "multi_thread")]
async fn slowloris_cannot_hold_the_host() {
    let dir = tempfile::tempdir().expect("tmp");
    let nova = host(dir.path(), "").await;
    let mut idle = Vec::new();
    for _ in 0..120 {
        idle.push(TcpStream::connect(addr(&nova)).expect("connect"));
    }
    let mut trickling = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(addr(&nova)).expect("connect");
        let _ = s.write_all(b"GET /health HTTP/1.1\r\nx-slow: ");
        trickling.push(s);
    }
    // Keep trickling one byte a second from another thread.
    let trickle = std::thread::spawn(move || {
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(500));
            for s in &mut trickling {
                let _ = s.write_all(b"z");
            }
        }
        trickling
    });
    for _ in 0..3 {
        let start = Instant::now();
        let health = nova
            .anon
            .get(nova.url("/health"))
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .expect("/health answers while slow clients hold connections");
        assert_eq!(health.status(), 200);
        // Served once the timeout frees slots: not after the client gave up.
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{:?}",
            start.elapsed()
        );
    }
    // The idle connections were closed by the host: reading ends.
    for stream in idle.iter_mut().take(5) {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut byte = [0u8; 64];
        match stream.read(&mut byte) {
            Ok(0) => {}
            Ok(n) => panic!("an idle connection got {n} bytes"),
            Err(e) => assert!(
                e.kind() == std::io::ErrorKind::ConnectionReset,
                "an idle connection was not closed: {e}"
            ),
        }
    }
    let trickling = trickle.join().expect("trickle");
    drop(trickling);
}

/// SIGTERM with a client holding an idle connection and a request in
/// flight: the request gets its answer, and the process exits by itself,
/// without waiting for the idle client.
#[tokio::test(flavor = "multi_thread")]
async fn stop_finishes_requests_and_does_not_wait_for_idle_clients() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut nova = host(dir.path(), "shutdown_timeout_ms = 5000\n").await;
    // Connected, says nothing.
    let _idle = TcpStream::connect(addr(&nova)).expect("connect");
    // Half a request: headers never finished.
    let mut half = TcpStream::connect(addr(&nova)).expect("connect");
    half.write_all(b"GET /health HTTP/1.1\r\n").expect("write");
    // A request in flight for about a second.
    let in_flight = nova.spawn_step(
        "slow",
        json!(null),
        Some(json!({"iterations": 400_000_000u64})),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let stopping = tokio::task::spawn_blocking(move || {
        let exit = nova.terminate(Duration::from_secs(20));
        (nova, exit)
    });
    let (status, answer) = in_flight.await.expect("join");
    assert_eq!(status, 200, "the request in flight was cut: {answer}");
    let (_nova, exit) = stopping.await.expect("join");
    let exit = exit.expect("the host did not exit by itself within 20 s");
    assert!(exit.success(), "{exit:?}");
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
}

/// A body that trickles in is given up after `http.body_timeout_ms` with a
/// JSON 408, and its share of the memory budget is free again.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_is_given_up() {
    let dir = tempfile::tempdir().expect("tmp");
    let nova = host(dir.path(), "body_timeout_ms = 1000\n").await;
    let request = format!(
        "POST /workflows HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"steps\"",
        addr(&nova),
        nova_tests::TOKEN
    );
    let (status, answer) = raw(&nova, request.as_bytes());
    assert_eq!(status, 408, "{answer}");
    let body = json_body(&answer);
    assert_eq!(body["error"]["code"], "body_timeout", "{body}");
    // The host goes on.
    let (status, submitted) = nova
        .submit(&json!({"steps": [{"plugin": "slow", "config": {"iterations": 1}}]}))
        .await;
    assert_eq!(status, 202, "{submitted}");
}
