//! The retry rules against a scripted HTTP server: each connection gets
//! the next scripted reply, and the server records every request it read,
//! so the tests count attempts without timing anything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nova_client::{Client, Error, HealthStatus, RetryPolicy, RunStatus};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server does with one request.
enum Reply {
    /// Answer with this status, extra header lines and body.
    Answer(u16, &'static str, String),
    /// Read the request, then close the connection without answering.
    Hang,
}

fn answer(status: u16, body: serde_json::Value) -> Reply {
    Reply::Answer(status, "", body.to_string())
}

fn error(status: u16, code: &str, headers: &'static str) -> Reply {
    Reply::Answer(
        status,
        headers,
        json!({"error": {"code": code, "message": format!("{code} on purpose")}}).to_string(),
    )
}

/// Serves `script` in order, one reply per connection; returns the base URL
/// and the requests read so far (head and body as text).
async fn serve(script: Vec<Reply>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for reply in script {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let request = read_request(&mut socket).await;
            log.lock().expect("log").push(request);
            if let Reply::Answer(status, headers, body) = reply {
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        }
    });
    (url, seen)
}

/// Reads one request: the head, then `content-length` bytes of body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return String::from_utf8_lossy(&data).into_owned();
            }
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&data).into_owned(),
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

/// Quick retries, so that the tests do not wait on backoff.
fn client(url: &str, attempts: u32) -> Client {
    Client::builder(url)
        .retry(RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
        })
        .build()
        .expect("client")
}

fn count(seen: &Arc<Mutex<Vec<String>>>) -> usize {
    seen.lock().expect("log").len()
}

fn queued() -> serde_json::Value {
    json!({"id": "r1", "status": "queued"})
}

#[tokio::test]
async fn refusals_are_retried_until_an_answer() {
    let (url, seen) = serve(vec![
        error(429, "rate_limited", "retry-after: 0\r\n"),
        error(503, "store_unavailable", ""),
        answer(200, json!({"ready": true, "documents": 3})),
    ])
    .await;
    let stats = client(&url, 5).rag_stats().await.expect("stats");
    assert_eq!(stats.attempts, 3);
    assert_eq!(stats.value.documents, 3);
    assert_eq!(count(&seen), 3);
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let (url, seen) = serve(vec![
        error(400, "invalid_workflow", ""),
        answer(202, queued()),
    ])
    .await;
    let e = client(&url, 5)
        .submit(&json!({"steps": [], "idempotency_key": "k"}))
        .await
        .expect_err("400");
    match &e {
        Error::Api {
            status,
            code,
            message,
            attempts,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code, "invalid_workflow");
            assert_eq!(message, "invalid_workflow on purpose");
            assert_eq!(*attempts, 1);
        }
        other => panic!("not an API error: {other:?}"),
    }
    assert_eq!(e.exit_code(), 1);
    assert_eq!(count(&seen), 1);
}

#[tokio::test]
async fn a_lost_answer_is_retried_only_when_repeating_is_safe() {
    // Without an idempotency key the host may have stored the run: no retry.
    let (url, seen) = serve(vec![Reply::Hang, answer(202, queued())]).await;
    let e = client(&url, 5)
        .submit(&json!({"steps": [{"plugin": "p"}]}))
        .await
        .expect_err("not retried");
    assert!(matches!(e, Error::Unreachable { attempts: 1, .. }), "{e:?}");
    assert_eq!(e.exit_code(), 2);
    assert_eq!(count(&seen), 1);

    // With a key the second delivery returns the same run: retried.
    let (url, seen) = serve(vec![Reply::Hang, answer(200, queued())]).await;
    let submitted = client(&url, 5)
        .submit(&json!({"steps": [{"plugin": "p"}], "idempotency_key": "k"}))
        .await
        .expect("retried");
    assert_eq!(submitted.attempts, 2);
    assert!(!submitted.value.created, "200 is the earlier run");
    assert_eq!(count(&seen), 2);
}

#[tokio::test]
async fn a_refused_request_is_retried_even_when_not_idempotent() {
    let (url, seen) = serve(vec![
        error(503, "plugin_busy", "retry-after: 0\r\n"),
        answer(202, queued()),
    ])
    .await;
    let submitted = client(&url, 5)
        .submit(&json!({"steps": [{"plugin": "p"}]}))
        .await
        .expect("retried");
    assert_eq!(submitted.attempts, 2);
    assert!(submitted.value.created);
    assert_eq!(submitted.value.status, RunStatus::Queued);
    assert_eq!(count(&seen), 2);
}

#[tokio::test]
async fn connection_refused_is_retried_for_any_request() {
    // A port nothing listens on: the request never left.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let e = client(&format!("http://127.0.0.1:{port}"), 3)
        .submit(&json!({"steps": [{"plugin": "p"}]}))
        .await
        .expect_err("nothing listens");
    assert!(matches!(e, Error::Unreachable { attempts: 3, .. }), "{e:?}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");
}

#[tokio::test]
async fn retrying_stops_at_max_attempts_and_when_it_cannot_help() {
    let (url, seen) = serve(vec![
        error(503, "store_unavailable", "retry-after: 0\r\n"),
        error(503, "store_unavailable", "retry-after: 0\r\n"),
        error(503, "store_unavailable", "retry-after: 0\r\n"),
        answer(200, json!({})),
    ])
    .await;
    let e = client(&url, 3).rag_stats().await.expect_err("gave up");
    assert_eq!(e.status(), Some(503));
    assert_eq!(e.code(), Some("store_unavailable"));
    assert_eq!(e.attempts(), Some(3));
    assert_eq!(count(&seen), 3);

    // A disabled knowledge base stays disabled.
    let (url, seen) = serve(vec![
        error(503, "knowledge_disabled", ""),
        answer(200, json!({})),
    ])
    .await;
    let e = client(&url, 5).rag_stats().await.expect_err("not retried");
    assert_eq!(e.code(), Some("knowledge_disabled"));
    assert_eq!(count(&seen), 1);
}

#[tokio::test]
async fn retry_after_is_capped_by_max_delay() {
    // An hour's Retry-After would hang the test if it were not capped.
    let (url, seen) = serve(vec![
        error(429, "rate_limited", "retry-after: 3600\r\n"),
        answer(200, json!({"results": [], "took_ms": 1.5, "cached": false})),
    ])
    .await;
    let answer = client(&url, 2)
        .rag_query(&nova_client::Query::new("q"))
        .await
        .expect("capped wait, then an answer");
    assert_eq!(answer.attempts, 2);
    assert_eq!(answer.value.took_ms, 1.5);
    assert_eq!(count(&seen), 2);

    // Without retries the 429 comes back with its Retry-After.
    let (url, _) = serve(vec![error(429, "rate_limited", "retry-after: 7\r\n")]).await;
    match client(&url, 1).rag_stats().await {
        Err(Error::Api { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn health_takes_a_503_report_as_an_answer() {
    let (url, seen) = serve(vec![
        answer(
            503,
            json!({"status": "starting", "version": "0.1.0",
                   "checks": {"plugins": {"ready": false, "active": 0},
                              "store": {"ready": true, "backend": "sqlite"},
                              "queue": {"ready": true, "backend": "in-process"},
                              "kv": {"ready": true, "backend": "in-process"},
                              "knowledge": {"ready": true, "enabled": false}}}),
        ),
        answer(200, json!({"status": "ok"})),
    ])
    .await;
    let health = client(&url, 5).health().await.expect("a report");
    assert_eq!(health.status, 503);
    assert_eq!(health.value.status, HealthStatus::Starting);
    assert_eq!(health.value.failing(), ["plugins"]);
    assert_eq!(count(&seen), 1);

    // A 503 that is not a health report is an error, not retried either.
    let (url, seen) = serve(vec![
        error(503, "unavailable", ""),
        answer(200, json!({"status": "ok", "checks": {}})),
    ])
    .await;
    let e = client(&url, 5).health().await.expect_err("not a report");
    assert_eq!(e.code(), Some("unavailable"));
    assert_eq!(count(&seen), 1);
}

#[tokio::test]
async fn other_error_bodies_and_bad_answers() {
    let (url, _) = serve(vec![
        Reply::Answer(502, "", "<html>bad gateway</html>".into()),
        Reply::Answer(200, "", "not json".into()),
    ])
    .await;
    let client = client(&url, 1);
    let e = client.plugins_list().await.expect_err("502");
    assert_eq!(e.code(), Some("http_502"));
    assert!(e.to_string().contains("bad gateway"), "{e}");
    let e = client.plugins_list().await.expect_err("not JSON");
    assert!(matches!(e, Error::BadAnswer { .. }), "{e:?}");
    assert_eq!(e.exit_code(), 1);
}

#[tokio::test]
async fn requests_carry_the_token_the_hold_and_the_raw_answer() {
    let (url, seen) = serve(vec![
        answer(200, json!({"id": "r1", "status": "running"})),
        answer(
            200,
            json!({"id": "r1", "status": "succeeded", "output": {"n": 2}, "new": 1}),
        ),
    ])
    .await;
    let client = Client::builder(&url)
        .token("secret-token")
        .build()
        .expect("client");
    let run = client
        .wait("r1", Duration::from_secs(90))
        .await
        .expect("run");
    assert_eq!(run.value.status, RunStatus::Succeeded);
    assert_eq!(run.value.output.to_value(), json!({"n": 2}));
    assert!(run.raw.contains("\"new\":1"), "{}", run.raw);
    let requests = seen.lock().expect("log").clone();
    assert_eq!(requests.len(), 2);
    // The first hold is capped at 60 s; the second asks for what is left.
    assert!(
        requests[0].starts_with("GET /workflows/r1?wait=60.000 "),
        "{}",
        requests[0]
    );
    assert!(requests[1].starts_with("GET /workflows/r1?wait="));
    assert!(
        requests[0]
            .to_lowercase()
            .contains("authorization: bearer secret-token"),
        "{}",
        requests[0]
    );
}
