//! A small HTTP client for the `/workflows` and `/rag` APIs, used by the
//! CLI verbs.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// How a CLI request failed. Each kind maps to an exit code: the server
/// answering with an error is 1; a server that cannot be reached is 2.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL cannot be used.
    #[error("invalid --url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// No answer: connection refused, reset, timed out, name not resolved.
    #[error("cannot reach nova at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server answered with an error (`{"error": {"code", "message"}}`).
    #[error("{code}: {message} (HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// A success status with a body that is not the JSON we expect.
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer { url: String, reason: String },
}

impl ClientError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::BadUrl { .. } | ClientError::Unreachable { .. } => 2,
            ClientError::Api { .. } | ClientError::BadAnswer { .. } => 1,
        }
    }
}

/// A success answer: the JSON, and the body as the server sent it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub value: Value,
    pub raw: String,
}

/// A client for one nova host.
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// Bearer token for admin routes.
    token: Option<String>,
}

/// Slack on top of a `?wait=` hold before the client gives up on an answer.
const REQUEST_SLACK: Duration = Duration::from_secs(30);

impl Client {
    pub fn new(base: &str) -> Result<Client, ClientError> {
        let bad = |reason: String| ClientError::BadUrl {
            url: base.to_owned(),
            reason,
        };
        let parsed = reqwest::Url::parse(base).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            http,
            token: None,
        })
    }

    /// Sends `token` as the bearer token (for admin routes).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// `POST /rag/query`.
    pub async fn rag_query(&self, query: &Value) -> Result<Answer, ClientError> {
        let (_, answer) = self
            .request(Method::POST, "/rag/query", &[], Some(query), Duration::ZERO)
            .await?;
        Ok(answer)
    }

    /// `POST /rag/reload` (admin): `{"id", "status", "collections"}`.
    pub async fn rag_reload(&self, request: &Value) -> Result<Answer, ClientError> {
        let (_, answer) = self
            .request(
                Method::POST,
                "/rag/reload",
                &[],
                Some(request),
                Duration::ZERO,
            )
            .await?;
        Ok(answer)
    }

    /// `GET /rag/ingests/{id}`: `{"running", "report"}`.
    pub async fn rag_ingest(&self, id: &str) -> Result<Answer, ClientError> {
        let path = format!("/rag/ingests/{}", path_segment(id));
        let (_, answer) = self
            .request(Method::GET, &path, &[], None, Duration::ZERO)
            .await?;
        Ok(answer)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and returns the status and the JSON answer of a
    /// success; an error answer becomes [`ClientError::Api`].
    async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        hold: Duration,
    ) -> Result<(StatusCode, Answer), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .timeout(hold + REQUEST_SLACK);
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: error_chain(&e),
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                reason: error_chain(&e),
            })?;
        let parsed: Result<Value, _> = serde_json::from_slice(&bytes);
        if !status.is_success() {
            let (code, message) = match &parsed {
                Ok(v) if v["error"]["code"].is_string() => (
                    v["error"]["code"].as_str().unwrap_or_default().to_owned(),
                    v["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ),
                _ => (
                    format!("http_{}", status.as_u16()),
                    String::from_utf8_lossy(&bytes).trim().to_owned(),
                ),
            };
            return Err(ClientError::Api {
                status: status.as_u16(),
                code,
                message,
            });
        }
        let value = parsed.map_err(|e| ClientError::BadAnswer {
            url,
            reason: format!("not JSON ({e})"),
        })?;
        let raw = String::from_utf8_lossy(&bytes).trim_end().to_owned();
        Ok((status, Answer { value, raw }))
    }

    /// `POST /workflows`: whether a new run was created (202; an
    /// idempotent repeat is 200), and the answer `{"id", "status"}`.
    pub async fn submit(&self, workflow: &Value) -> Result<(bool, Answer), ClientError> {
        let (status, answer) = self
            .request(
                Method::POST,
                "/workflows",
                &[],
                Some(workflow),
                Duration::ZERO,
            )
            .await?;
        self.expect_id(&answer.value, "/workflows")?;
        Ok((status == StatusCode::ACCEPTED, answer))
    }

    /// `GET /workflows/{id}`, holding up to `wait` (at most 60 s) for the
    /// run to finish when given.
    pub async fn run(&self, id: &str, wait: Option<Duration>) -> Result<Answer, ClientError> {
        let path = format!("/workflows/{}", path_segment(id));
        let query: Vec<(&str, String)> = wait
            .map(|w| ("wait", format!("{:.3}", w.as_secs_f64())))
            .into_iter()
            .collect();
        let (_, run) = self
            .request(Method::GET, &path, &query, None, wait.unwrap_or_default())
            .await?;
        self.expect_id(&run.value, &path)?;
        Ok(run)
    }

    /// `GET /workflows?status=&limit=&cursor=`: `{"runs", "next_cursor"}`.
    pub async fn list(
        &self,
        status: Option<&str>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let mut query = Vec::new();
        if let Some(s) = status {
            query.push(("status", s.to_owned()));
        }
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        let (_, page) = self
            .request(Method::GET, "/workflows", &query, None, Duration::ZERO)
            .await?;
        if !page.value["runs"].is_array() {
            return Err(ClientError::BadAnswer {
                url: format!("{}/workflows", self.base),
                reason: "no \"runs\" array".into(),
            });
        }
        Ok(page)
    }

    /// `POST /workflows/{id}/cancel`: the run after the request.
    pub async fn cancel(&self, id: &str) -> Result<Answer, ClientError> {
        let path = format!("/workflows/{}/cancel", path_segment(id));
        let (_, run) = self
            .request(Method::POST, &path, &[], None, Duration::ZERO)
            .await?;
        self.expect_id(&run.value, &path)?;
        Ok(run)
    }

    fn expect_id(&self, answer: &Value, path: &str) -> Result<(), ClientError> {
        if answer["id"].is_string() && answer["status"].is_string() {
            Ok(())
        } else {
            Err(ClientError::BadAnswer {
                url: format!("{}{path}", self.base),
                reason: "no \"id\" and \"status\"".into(),
            })
        }
    }
}

/// A run id as one path segment: anything but unreserved characters is
/// percent-encoded, so a stray `/` or `?` cannot change the route.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An error with its causes, for the one-line messages the CLI prints.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_segment() {
        assert_eq!(path_segment("0193-ab_c"), "0193-ab_c");
        assert_eq!(path_segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn urls_are_checked() {
        assert!(Client::new("http://127.0.0.1:8080/").is_ok());
        assert_eq!(Client::new("ftp://x").err().map(|e| e.exit_code()), Some(2));
        assert!(Client::new("not a url").is_err());
    }
}
