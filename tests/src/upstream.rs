//! Real HTTP and HTTPS servers on loopback for the outbound tests: what a
//! plugin's requests reach. Each records the requests it received.
//!
//! Routes:
//! - `/echo` (any method): 200, JSON `{"method", "path", "headers", "body"}`
//!   (the body as text);
//! - `/json`: 200, `{"greeting": "hello", "n": 42}`;
//! - `/bytes/N`: 200 with N bytes of `x`;
//! - `/status/N`: status N, body `status N`;
//! - `/redirect?to=URL`: 302 to URL;
//! - `/stall`: the head, then a body that never ends;
//! - `/stall-head`: nothing at all, for a minute;
//! - `/v1/chat/completions` (POST): an OpenAI-compatible chat completion
//!   whose answer is `echo: ` and the last message's content; 401 without
//!   an `Authorization` header.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A server on 127.0.0.1, stopped when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    /// Plain HTTP.
    pub async fn http() -> Upstream {
        Self::start(None).await
    }

    /// HTTPS with a certificate for `localhost` and 127.0.0.1 from `ca`.
    pub async fn https(ca: &TestCa) -> Upstream {
        Self::start(Some(ca.acceptor())).await
    }

    async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let recorded = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let seen = recorded.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, seen.clone()));
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Upstream { addr, seen, task }
    }
}

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .expect("response")
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.to_string());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body).into_owned();
    seen.lock().expect("seen").push(Seen {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    let route = path.split('?').next().unwrap_or("/");
    let response = if route == "/echo" {
        let headers: serde_json::Map<String, Value> = headers
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let echo = json!({ "method": method, "path": path, "headers": headers, "body": body });
        full(200, "application/json", echo.to_string())
    } else if route == "/json" {
        full(
            200,
            "application/json",
            json!({"greeting": "hello", "n": 42}).to_string(),
        )
    } else if let Some(n) = route.strip_prefix("/bytes/") {
        let n: usize = n.parse().unwrap_or(0);
        full(200, "text/plain", vec![b'x'; n])
    } else if let Some(code) = route.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap_or(500);
        full(code, "text/plain", format!("status {code}"))
    } else if route == "/redirect" {
        let to = path.split_once("?to=").map_or("/", |(_, to)| to).to_owned();
        Response::builder()
            .status(302)
            .header("location", to)
            .body(Full::new(Bytes::new()).boxed())
            .expect("response")
    } else if route == "/stall" {
        // One piece of the body, then nothing, ever.
        Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(Stall(false).boxed())
            .expect("response")
    } else if route == "/v1/chat/completions" {
        chat_completion(&body, headers.iter().any(|(k, _)| k == "authorization"))
    } else if route == "/stall-head" {
        tokio::time::sleep(Duration::from_secs(60)).await;
        full(200, "text/plain", "late")
    } else {
        full(404, "text/plain", "no such route")
    };
    Ok(response)
}

/// What an OpenAI-compatible server answers a chat completion.
fn chat_completion(body: &str, authorized: bool) -> Response<Body> {
    if !authorized {
        let error = json!({"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error"}});
        return full(401, "application/json", error.to_string());
    }
    let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let last = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let prompt_tokens = body.split_whitespace().count();
    let answer = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": request["model"],
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": format!("echo: {last}")},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 3, "total_tokens": prompt_tokens + 3},
    });
    full(200, "application/json", answer.to_string())
}

/// A body that yields one frame and then stays pending.
struct Stall(bool);

impl hyper::body::Body for Stall {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.0 {
            std::task::Poll::Pending
        } else {
            self.0 = true;
            std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"first")))))
        }
    }
}

/// A certificate authority made for one test, and its PEM file (for
/// `NOVA_EXTRA_CA_FILE`).
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    pub pem_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "nova test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key");
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).expect("CA");
        let dir = tempfile::tempdir().expect("temp dir");
        let pem_file = dir.path().join("ca.pem");
        std::fs::write(&pem_file, issuer.pem()).expect("write CA");
        TestCa {
            issuer,
            pem_file,
            _dir: dir,
        }
    }

    pub fn pem_path(&self) -> &Path {
        &self.pem_file
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let key_der =
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("private key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key_der)
            .expect("server config");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
