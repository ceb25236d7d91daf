//! The HTTP client: one method per route, with retries.

use crate::error::Error;
use crate::retry::{Jitter, RetryPolicy};
use crate::types::*;

use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where a host listens unless told otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// The longest `?wait=` a host holds one request.
pub const MAX_HOLD: Duration = Duration::from_secs(60);

/// A success answer.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    /// The decoded body.
    pub value: T,
    /// The body as the host sent it (trailing whitespace removed).
    pub raw: String,
    /// The HTTP status.
    pub status: u16,
    /// Requests sent to get it, retries included.
    pub attempts: u32,
}

impl<T> Answer<T> {
    /// The body as untyped JSON (for fields the types do not cover).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.raw).unwrap_or(serde_json::Value::Null)
    }
}

/// Settings of a [`Client`]; from [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
}

impl ClientBuilder {
    /// The bearer credential sent with every request: an API key (from
    /// `POST /admin/keys`, `nova keys create`) or the host's admin token
    /// (`NOVA_ADMIN_TOKEN`, every scope). Every route but `GET /health`
    /// needs one. An empty credential is the same as none.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }

    /// [`token`](ClientBuilder::token), by the name of what it usually is.
    pub fn api_key(self, key: impl Into<String>) -> Self {
        self.token(key)
    }

    /// How long one request may take, from sending to the whole answer
    /// [default: 30 s]. A `?wait=` request gets its hold on top.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long opening a connection may take [default: 5 s].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// When and how to retry [default: [`RetryPolicy::default`]].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Checks the URL and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let bad = |reason: String| Error::BadUrl {
            url: self.url.clone(),
            reason,
        };
        let parsed = reqwest::Url::parse(&self.url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".into()));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("a base URL has no query or fragment".into()));
        }
        let token = match &self.token {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| Error::Encode("the token is not a valid header value".into()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            // nova closes a kept-alive connection idle for its
            // header_timeout (10 s by default): reusing one it is closing
            // fails the request, which a non-idempotent one cannot retry.
            .pool_idle_timeout(IDLE_CONNECTION)
            .build()
            .map_err(|e| bad(error_chain(&e)))?;
        Ok(Client {
            base: self.url.trim_end_matches('/').to_owned(),
            http,
            token,
            timeout: self.timeout,
            retry: self.retry,
            jitter: std::sync::Arc::new(Jitter::new()),
        })
    }
}

/// How long an idle connection is kept for reuse: under the host's own
/// idle limit ([http] header_timeout_ms, 10 s by default).
const IDLE_CONNECTION: Duration = Duration::from_secs(5);

/// A client of one nova host. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<HeaderValue>,
    timeout: Duration,
    retry: RetryPolicy,
    jitter: std::sync::Arc<Jitter>,
}

/// A request body, kept so that a retry can send it again.
enum Body {
    None,
    Json(Vec<u8>),
    Yaml(Vec<u8>),
    Bytes(Vec<u8>),
    /// Bytes of a media type.
    Typed(String, Vec<u8>),
}

/// One call, as the retry loop sees it.
struct Request {
    method: Method,
    path: String,
    query: Vec<(&'static str, String)>,
    headers: Vec<(&'static str, String)>,
    body: Body,
    /// Added to the timeout: the `?wait=` hold.
    hold: Duration,
    /// Sending it twice does no harm.
    idempotent: bool,
    /// Retry `503` answers (not for `/health`, whose `503` is an answer).
    retry_unavailable: bool,
}

impl Request {
    fn new(method: Method, path: String) -> Request {
        let idempotent = method == Method::GET;
        Request {
            method,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::None,
            hold: Duration::ZERO,
            idempotent,
            retry_unavailable: true,
        }
    }

    fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    fn json(mut self, body: &impl Serialize) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Encode(e.to_string()))?;
        self.body = Body::Json(bytes);
        Ok(self)
    }
}

/// An answer the retry loop did not retry, success or not.
struct Received {
    status: StatusCode,
    body: Vec<u8>,
    retry_after: Option<Duration>,
    attempts: u32,
}

impl Client {
    /// Starts the settings of a client for the host at `url` (for example
    /// `http://127.0.0.1:8080`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }

    /// A client with the default settings and no token.
    pub fn new(url: impl Into<String>) -> Result<Client, Error> {
        Client::builder(url).build()
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    // ------------------------------------------------------------ health

    /// `GET /health`. A `503` with a health report (the host is starting,
    /// or its store, queue or index does not answer) is an answer, with
    /// [`Health::status`] saying which; it is not retried.
    pub async fn health(&self) -> Result<Answer<Health>, Error> {
        let mut request = Request::new(Method::GET, "/health".into());
        request.retry_unavailable = false;
        let received = self.send(&request).await?;
        // Only a health report is an answer: a 503 with an error body (a
        // proxy with no upstream, say) stays an error.
        if received.status == StatusCode::SERVICE_UNAVAILABLE
            && let Ok(report) = serde_json::from_slice::<serde_json::Value>(&received.body)
            && report["status"].is_string()
            && report["checks"].is_object()
            && let Ok(health) = serde_json::from_value::<Health>(report)
        {
            return Ok(answer(health, received));
        }
        self.decode(&request, received)
    }

    /// Polls [`health`](Client::health) until the host is ready or
    /// `timeout` has passed; returns the last report, or the last error
    /// when the host never answered.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Answer<Health>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.health().await;
            if matches!(&last, Ok(a) if a.value.is_ok()) || Instant::now() >= deadline {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // --------------------------------------------------------- workflows

    /// `POST /workflows`: submits a [`Workflow`], or any value that
    /// serializes to one. [`Submitted::created`] is `false` when an
    /// earlier run had the same idempotency key.
    pub async fn submit<W: Serialize + ?Sized>(
        &self,
        workflow: &W,
    ) -> Result<Answer<Submitted>, Error> {
        let body = serde_json::to_value(workflow).map_err(|e| Error::Encode(e.to_string()))?;
        // With a key, a second delivery returns the first run.
        let keyed = body.get("idempotency_key").is_some_and(|k| k.is_string());
        let request = Request::new(Method::POST, "/workflows".into())
            .idempotent(keyed)
            .json(&body)?;
        let received = self.send(&request).await?;
        let created = received.status == StatusCode::ACCEPTED;
        let mut submitted: Answer<Submitted> = self.decode(&request, received)?;
        submitted.value.created = created;
        self.require(&request, !submitted.value.id.is_empty(), "no run id")?;
        Ok(submitted)
    }

    /// `GET /workflows/{id}`: the run as it is now.
    pub async fn run(&self, id: &str) -> Result<Answer<Run>, Error> {
        self.run_held(id, None).await
    }

    /// Waits up to `timeout` for a run to finish, with `?wait=` requests
    /// of at most [`MAX_HOLD`] each, and returns its last state: check
    /// [`RunStatus::is_finished`] to tell a finished run from a timeout.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<Answer<Run>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let asked = Instant::now();
            let hold = deadline.saturating_duration_since(asked).min(MAX_HOLD);
            let run = self.run_held(id, Some(hold)).await?;
            if run.value.status.is_terminal() || Instant::now() >= deadline {
                return Ok(run);
            }
            // A host (or proxy) that answers before the hold is over
            // without a finished run must not make this loop spin.
            if asked.elapsed() < Duration::from_millis(200) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn run_held(&self, id: &str, hold: Option<Duration>) -> Result<Answer<Run>, Error> {
        let mut request = Request::new(Method::GET, format!("/workflows/{}", segment(id)?));
        if let Some(hold) = hold {
            request
                .query
                .push(("wait", format!("{:.3}", hold.as_secs_f64())));
            request.hold = hold;
        }
        let received = self.send(&request).await?;
        let run: Answer<Run> = self.decode(&request, received)?;
        self.require(&request, !run.value.id.is_empty(), "no run id")?;
        Ok(run)
    }

    /// `GET /workflows`: a page of runs, newest first.
    pub async fn list(&self, which: &ListRuns) -> Result<Answer<RunPage>, Error> {
        let mut request = Request::new(Method::GET, "/workflows".into());
        if let Some(status) = which.status {
            request.query.push(("status", status.as_str().to_owned()));
        }
        if let Some(definition) = &which.definition {
            request.query.push(("definition", definition.clone()));
        }
        if let Some(limit) = which.limit {
            request.query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = &which.cursor {
            request.query.push(("cursor", cursor.clone()));
        }
        let include: Vec<&str> = [(which.input, "input"), (which.output, "output")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
        if !include.is_empty() {
            request.query.push(("include", include.join(",")));
        }
        let received = self.send(&request).await?;
        let page: Answer<RunPage> = self.decode(&request, received)?;
        self.require(
            &request,
            page.json()["runs"].is_array(),
            "no \"runs\" array",
        )?;
        Ok(page)
    }

    /// `POST /workflows/{id}/cancel`: the run after the request (a running
    /// run stays `running`, with `cancel_requested`, until its worker
    /// stops it).
    pub async fn cancel(&self, id: &str) -> Result<Answer<Run>, Error> {
        // Cancelling twice is cancelling once.
        let request = Request::new(Method::POST, format!("/workflows/{}/cancel", segment(id)?))
            .idempotent(true);
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `PUT /workflows/definitions/{name}`: saves a new version of a
    /// definition.
    pub async fn definition_save(
        &self,
        name: &str,
        definition: &Definition,
    ) -> Result<Answer<DefinitionSaved>, Error> {
        let request = Request::new(Method::PUT, definition_path(name)?).json(definition)?;
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// [`definition_save`](Client::definition_save) with the definition as
    /// the text of a file: YAML when `yaml`, else JSON. The host reads and
    /// checks it, so its messages name the place of a fault.
    pub async fn definition_save_text(
        &self,
        name: &str,
        text: Vec<u8>,
        yaml: bool,
    ) -> Result<Answer<DefinitionSaved>, Error> {
        let mut request = Request::new(Method::PUT, definition_path(name)?);
        request.body = if yaml {
            Body::Yaml(text)
        } else {
            Body::Json(text)
        };
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `GET /workflows/definitions/{name}`: the latest version, or
    /// `version`.
    pub async fn definition(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Answer<DefinitionInfo>, Error> {
        let mut request = Request::new(Method::GET, definition_path(name)?);
        if let Some(version) = version {
            request.query.push(("version", version.to_string()));
        }
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `GET /workflows/definitions`: every definition at its latest version.
    pub async fn definitions(&self) -> Result<Answer<DefinitionList>, Error> {
        let request = Request::new(Method::GET, "/workflows/definitions".into());
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `DELETE /workflows/definitions/{name}`.
    pub async fn definition_delete(&self, name: &str) -> Result<Answer<()>, Error> {
        let request = Request::new(Method::DELETE, definition_path(name)?).idempotent(true);
        let received = self.send(&request).await?;
        self.decode_empty(&request, received)
    }

    /// `POST /workflows/definitions/{name}/runs`: starts a run of a saved
    /// definition. `created` tells a new run from an idempotency key's
    /// earlier one.
    pub async fn run_definition(
        &self,
        name: &str,
        start: &StartRun,
    ) -> Result<Answer<Submitted>, Error> {
        let request = Request::new(Method::POST, format!("{}/runs", definition_path(name)?))
            .idempotent(start.idempotency_key.is_some())
            .json(start)?;
        let received = self.send(&request).await?;
        let created = received.status == StatusCode::ACCEPTED;
        let mut submitted: Answer<Submitted> = self.decode(&request, received)?;
        submitted.value.created = created;
        self.require(&request, !submitted.value.id.is_empty(), "no run id")?;
        Ok(submitted)
    }

    /// `POST /workflows/{id}/retry`: resumes a failed or cancelled run from
    /// its unfinished steps; the run, queued again.
    pub async fn retry(&self, id: &str) -> Result<Answer<Run>, Error> {
        let request = Request::new(Method::POST, format!("/workflows/{}/retry", segment(id)?));
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `POST /workflows/{id}/rerun`: a new run with the same steps,
    /// definition version and input.
    pub async fn rerun(&self, id: &str) -> Result<Answer<Submitted>, Error> {
        let request = Request::new(Method::POST, format!("/workflows/{}/rerun", segment(id)?));
        let received = self.send(&request).await?;
        let created = received.status == StatusCode::ACCEPTED;
        let mut submitted: Answer<Submitted> = self.decode(&request, received)?;
        submitted.value.created = created;
        Ok(submitted)
    }

    // ---------------------------------------------------- knowledge base

    /// `POST /rag/query`: searches the knowledge base.
    pub async fn rag_query(&self, query: &Query) -> Result<Answer<QueryAnswer>, Error> {
        // A search changes nothing.
        let request = Request::new(Method::POST, "/rag/query".into())
            .idempotent(true)
            .json(query)?;
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `GET /rag/stats`.
    pub async fn rag_stats(&self) -> Result<Answer<RagStats>, Error> {
        let request = Request::new(Method::GET, "/rag/stats".into());
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `POST /rag/reload` (admin): starts an ingest; follow it with
    /// [`rag_ingest`](Client::rag_ingest).
    pub async fn rag_reload(&self, reload: &Reload) -> Result<Answer<ReloadStarted>, Error> {
        let request = Request::new(Method::POST, "/rag/reload".into()).json(reload)?;
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `GET /rag/ingests/{id}`: the progress or the report of an ingest.
    pub async fn rag_ingest(&self, id: &str) -> Result<Answer<IngestProgress>, Error> {
        let request = Request::new(Method::GET, format!("/rag/ingests/{}", segment(id)?));
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `PUT /rag/collections/{c}`: creates a collection (`created`), or
    /// answers the one there (whose settings stay).
    pub async fn collection_create(
        &self,
        name: &str,
        settings: &CollectionSettings,
    ) -> Result<Answer<CollectionInfo>, Error> {
        let request = Request::new(Method::PUT, collection_path(name)?)
            .idempotent(true)
            .json(settings)?;
        let received = self.send(&request).await?;
        let created = received.status == StatusCode::CREATED;
        let mut info: Answer<CollectionInfo> = self.decode(&request, received)?;
        info.value.created = created;
        Ok(info)
    }

    /// `GET /rag/collections`: the collections the credential may see.
    pub async fn collections(&self) -> Result<Answer<CollectionList>, Error> {
        let request = Request::new(Method::GET, "/rag/collections".into());
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `GET /rag/collections/{c}`.
    pub async fn collection(&self, name: &str) -> Result<Answer<CollectionInfo>, Error> {
        let request = Request::new(Method::GET, collection_path(name)?);
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `DELETE /rag/collections/{c}`: the collection and every document in
    /// it.
    pub async fn collection_delete(&self, name: &str) -> Result<Answer<()>, Error> {
        let request = Request::new(Method::DELETE, collection_path(name)?);
        let received = self.send(&request).await?;
        self.decode_empty(&request, received)
    }

    /// `PUT /rag/collections/{c}/documents/{id}`: adds or replaces a
    /// document; the loader its media type (or `loader`) picks splits it.
    pub async fn document_put(
        &self,
        collection: &str,
        id: &str,
        document: &Document,
    ) -> Result<Answer<DocumentSaved>, Error> {
        let mut request = Request::new(Method::PUT, document_path(collection, id)?)
            // The same bytes again change nothing.
            .idempotent(true);
        if let Some(loader) = &document.loader {
            request.query.push(("loader", loader.clone()));
        }
        if !document.metadata.is_empty() {
            let metadata = serde_json::to_string(&document.metadata)
                .map_err(|e| Error::Encode(e.to_string()))?;
            request.headers.push(("x-nova-metadata", metadata));
        }
        request.body = Body::Typed(document.media_type.clone(), document.body.clone());
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `GET /rag/collections/{c}/documents`: a page of documents by id,
    /// after `after`, at most `limit` (100 when absent).
    pub async fn documents(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Answer<DocumentPage>, Error> {
        let mut request = Request::new(
            Method::GET,
            format!("{}/documents", collection_path(collection)?),
        );
        if let Some(after) = after {
            request.query.push(("after", after.to_owned()));
        }
        if let Some(limit) = limit {
            request.query.push(("limit", limit.to_string()));
        }
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `GET /rag/collections/{c}/documents/{id}`, with its chunks when
    /// `chunks`.
    pub async fn document(
        &self,
        collection: &str,
        id: &str,
        chunks: bool,
    ) -> Result<Answer<DocumentInfo>, Error> {
        let mut request = Request::new(Method::GET, document_path(collection, id)?);
        if chunks {
            request.query.push(("chunks", "true".to_owned()));
        }
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `DELETE /rag/collections/{c}/documents/{id}`.
    pub async fn document_delete(&self, collection: &str, id: &str) -> Result<Answer<()>, Error> {
        let request = Request::new(Method::DELETE, document_path(collection, id)?);
        let received = self.send(&request).await?;
        self.decode_empty(&request, received)
    }

    // ----------------------------------------------------------- plugins

    /// `GET /admin/plugins` (admin).
    pub async fn plugins_list(&self) -> Result<Answer<PluginList>, Error> {
        let request = Request::new(Method::GET, "/admin/plugins".into());
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `GET /admin/plugins/{name}` (admin).
    pub async fn plugin_show(&self, name: &str) -> Result<Answer<Plugin>, Error> {
        let request = Request::new(Method::GET, format!("/admin/plugins/{}", segment(name)?));
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `POST /admin/plugins/reload` (admin): rescans the plugin directory.
    pub async fn plugins_reload(&self) -> Result<Answer<PluginsReloaded>, Error> {
        // A rescan brings the host in step with its files: repeating it
        // changes nothing more.
        let request = Request::new(Method::POST, "/admin/plugins/reload".into()).idempotent(true);
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `PUT /admin/plugins/{name}` (admin): uploads a component.
    /// [`Uploaded::created`] is `false` when it replaced a serving version.
    pub async fn plugin_upload(
        &self,
        name: &str,
        wasm: Vec<u8>,
    ) -> Result<Answer<Uploaded>, Error> {
        let mut request = Request::new(Method::PUT, format!("/admin/plugins/{}", segment(name)?));
        request.body = Body::Bytes(wasm);
        let received = self.send(&request).await?;
        let created = received.status == StatusCode::CREATED;
        let mut uploaded: Answer<Uploaded> = self.decode(&request, received)?;
        uploaded.value.created = created;
        Ok(uploaded)
    }

    /// `GET /admin/plugins/{name}/logs` (admin): follows the plugin's log
    /// lines as calls happen, calling `on_line` for each, until the host
    /// ends the stream (it is going away) or the connection breaks. Lines
    /// the host could not keep up with arrive as one line at level `lost`.
    pub async fn plugin_logs(
        &self,
        name: &str,
        mut on_line: impl FnMut(LogLine),
    ) -> Result<(), Error> {
        let request = Request::new(
            Method::GET,
            format!("/admin/plugins/{}/logs", segment(name)?),
        );
        let url = format!("{}{}", self.base, request.path);
        let unreachable = |e: reqwest::Error| Error::Unreachable {
            url: self.base.clone(),
            reason: error_chain(&e),
            attempts: 1,
        };
        // No overall timeout: the stream lasts as long as the host serves.
        let mut builder = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(u64::from(u32::MAX)));
        if let Some(token) = &self.token {
            builder = builder.header(AUTHORIZATION, token.clone());
        }
        let mut response = builder.send().await.map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await.map_err(unreachable)?.to_vec();
            return self
                .decode::<()>(
                    &request,
                    Received {
                        status,
                        body,
                        retry_after: None,
                        attempts: 1,
                    },
                )
                .map(|_| ());
        }
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                // Blank lines keep the connection alive.
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<LogLine>(&line) {
                    Ok(line) => on_line(line),
                    Err(e) => {
                        return Err(self
                            .bad_answer(&request, format!("a line that is not a log line ({e})")));
                    }
                }
            }
            if pending.len() > 1 << 20 {
                return Err(self.bad_answer(&request, "a log line of over 1 MiB".into()));
            }
        }
        Ok(())
    }

    /// `DELETE /admin/plugins/{name}` (admin).
    pub async fn plugin_remove(&self, name: &str) -> Result<Answer<Removed>, Error> {
        let request = Request::new(Method::DELETE, format!("/admin/plugins/{}", segment(name)?));
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `POST /admin/plugins/{name}/invoke` (admin): runs a plugin once.
    /// For a step, `body` is its JSON input (empty means `null`); for a
    /// loader, the document's bytes.
    pub async fn plugin_invoke(
        &self,
        name: &str,
        body: Vec<u8>,
        params: &Invoke,
    ) -> Result<Answer<Invocation>, Error> {
        let mut request = Request::new(
            Method::POST,
            format!("/admin/plugins/{}/invoke", segment(name)?),
        );
        if let Some(config) = &params.config {
            request.query.push(("config", config.to_string()));
        }
        if let Some(source) = &params.source {
            request.query.push(("source", source.clone()));
        }
        request.body = Body::Bytes(body);
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    // ----------------------------------------------------------- sandbox

    /// `POST /sandbox/run` (`sandbox:run`): runs a Python or JavaScript
    /// snippet once in the sandbox. A snippet's exception or a limit it hit
    /// is an `Ok` whose [`SandboxResult::error`] says so.
    pub async fn sandbox_run(&self, run: &SandboxRun) -> Result<Answer<SandboxResult>, Error> {
        let mut request = Request::new(Method::POST, "/sandbox/run".into()).json(run)?;
        // The run may take its whole time limit: wait for it on top of
        // the client's own timeout.
        request.hold = Duration::from_millis(run.timeout_ms.unwrap_or(0));
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    // -------------------------------------------------------------- keys

    /// `POST /admin/keys` (admin): makes an API key with `scopes`. The
    /// answer's [`CreatedKey::key`] is the only time the key is shown.
    pub async fn key_create(
        &self,
        name: &str,
        scopes: &[&str],
    ) -> Result<Answer<CreatedKey>, Error> {
        self.key_create_with(&NewKey {
            name: name.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            collections: None,
        })
        .await
    }

    /// `POST /admin/keys` (admin) with every setting of [`NewKey`] (a key
    /// held to some collections, say).
    pub async fn key_create_with(&self, key: &NewKey) -> Result<Answer<CreatedKey>, Error> {
        let request = Request::new(Method::POST, "/admin/keys".into()).json(key)?;
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `GET /admin/keys` (admin): the keys, never the keys themselves.
    pub async fn keys_list(&self) -> Result<Answer<KeyList>, Error> {
        let request = Request::new(Method::GET, "/admin/keys".into());
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `DELETE /admin/keys/{id}` (admin): revokes a key on every host.
    pub async fn key_revoke(&self, id: &str) -> Result<Answer<RevokedKey>, Error> {
        // Revoking twice leaves the key revoked; the second answer is 404.
        let request = Request::new(Method::DELETE, format!("/admin/keys/{}", segment(id)?));
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    // ----------------------------------------------------------- secrets

    /// `PUT /admin/secrets/{name}` (admin): creates or replaces a secret;
    /// plugins that list it read the new value from their next call.
    pub async fn secret_set(&self, name: &str, value: &str) -> Result<Answer<()>, Error> {
        let body = SecretValue {
            value: value.to_owned(),
        };
        let request =
            Request::new(Method::PUT, format!("/admin/secrets/{}", segment(name)?)).json(&body)?;
        let received = self.send(&request).await?;
        self.decode_empty(&request, received)
    }

    /// `GET /admin/secrets` (admin): names, when each was set, and which
    /// plugins may read it; never values.
    pub async fn secrets_list(&self) -> Result<Answer<SecretList>, Error> {
        let request = Request::new(Method::GET, "/admin/secrets".into());
        let received = self.send(&request).await?;
        self.decode(&request, received)
    }

    /// `DELETE /admin/secrets/{name}` (admin).
    pub async fn secret_remove(&self, name: &str) -> Result<Answer<()>, Error> {
        let request = Request::new(Method::DELETE, format!("/admin/secrets/{}", segment(name)?));
        let received = self.send(&request).await?;
        self.decode_empty(&request, received)
    }

    // ------------------------------------------------------------ engine

    /// Sends `request` until it gets an answer that is not retried, or the
    /// policy gives up.
    async fn send(&self, request: &Request) -> Result<Received, Error> {
        let url = format!("{}{}", self.base, request.path);
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= max_attempts;
            let wait = match self.send_once(&url, request).await {
                Err(e) => {
                    // A connect error means the host never saw the
                    // request; after anything else it may have acted on it.
                    let safe = request.idempotent || e.is_connect();
                    if last || !safe {
                        return Err(Error::Unreachable {
                            url: self.base.clone(),
                            reason: error_chain(&e),
                            attempts: attempt,
                        });
                    }
                    self.retry.delay(attempt, None, &self.jitter)
                }
                Ok((status, body, retry_after)) => {
                    if last || !self.refused(request, status, &body) {
                        return Ok(Received {
                            status,
                            body,
                            retry_after,
                            attempts: attempt,
                        });
                    }
                    self.retry.delay(attempt, retry_after, &self.jitter)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The host refused the request for now (`429`, or `503` other than
    /// a disabled knowledge base): it did nothing, so any request may be
    /// sent again.
    fn refused(&self, request: &Request, status: StatusCode, body: &[u8]) -> bool {
        match status {
            StatusCode::TOO_MANY_REQUESTS => true,
            StatusCode::SERVICE_UNAVAILABLE => {
                request.retry_unavailable && error_of(status, body).0 != "knowledge_disabled"
            }
            _ => false,
        }
    }

    async fn send_once(
        &self,
        url: &str,
        request: &Request,
    ) -> Result<(StatusCode, Vec<u8>, Option<Duration>), reqwest::Error> {
        let mut builder = self
            .http
            .request(request.method.clone(), url)
            .timeout(self.timeout + request.hold);
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(token) = &self.token {
            builder = builder.header(AUTHORIZATION, token.clone());
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        builder = match &request.body {
            Body::None => builder,
            Body::Json(bytes) => builder
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Yaml(bytes) => builder
                .header(CONTENT_TYPE, "application/yaml")
                .body(bytes.clone()),
            Body::Bytes(bytes) => builder
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(bytes.clone()),
            Body::Typed(media_type, bytes) => builder
                .header(CONTENT_TYPE, media_type.as_str())
                .body(bytes.clone()),
        };
        let response = builder.send().await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await?.to_vec();
        Ok((status, body, retry_after))
    }

    /// A success answer decoded as `T`; an error answer as [`Error::Api`].
    fn decode<T: DeserializeOwned>(
        &self,
        request: &Request,
        received: Received,
    ) -> Result<Answer<T>, Error> {
        if !received.status.is_success() {
            let (code, message) = error_of(received.status, &received.body);
            return Err(Error::Api {
                status: received.status.as_u16(),
                code,
                message,
                retry_after: received.retry_after,
                attempts: received.attempts,
            });
        }
        match serde_json::from_slice::<T>(&received.body) {
            Ok(value) => Ok(answer(value, received)),
            Err(e) => Err(self.bad_answer(request, format!("not the expected JSON ({e})"))),
        }
    }

    /// An answer without a body (`204 No Content`).
    fn decode_empty(&self, request: &Request, received: Received) -> Result<Answer<()>, Error> {
        if received.status.is_success() {
            return Ok(answer((), received));
        }
        self.decode::<()>(request, received)
    }

    fn require(&self, request: &Request, ok: bool, reason: &str) -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(self.bad_answer(request, reason.to_owned()))
        }
    }

    fn bad_answer(&self, request: &Request, reason: String) -> Error {
        Error::BadAnswer {
            url: format!("{}{}", self.base, request.path),
            reason,
        }
    }
}

fn answer<T>(value: T, received: Received) -> Answer<T> {
    Answer {
        value,
        raw: String::from_utf8_lossy(&received.body)
            .trim_end()
            .to_owned(),
        status: received.status.as_u16(),
        attempts: received.attempts,
    }
}

/// The code and message of an error answer: the host's
/// `{"error": {"code", "message"}}`, or `http_STATUS` and the start of the
/// body when something else answered (a proxy, say).
fn error_of(status: StatusCode, body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => (e.error.code, e.error.message),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(300).collect();
            (format!("http_{}", status.as_u16()), text)
        }
    }
}

fn definition_path(name: &str) -> Result<String, Error> {
    Ok(format!("/workflows/definitions/{}", segment(name)?))
}

/// One path segment: anything but unreserved characters is
/// percent-encoded, so a stray `/` or `?` in an id cannot change the route.
/// `.` and `..` (encoded or not, URLs resolve them) and the empty string
/// would name another route, so they are refused.
fn collection_path(name: &str) -> Result<String, Error> {
    Ok(format!("/rag/collections/{}", segment(name)?))
}

fn document_path(collection: &str, id: &str) -> Result<String, Error> {
    Ok(format!(
        "{}/documents/{}",
        collection_path(collection)?,
        segment(id)?
    ))
}

fn segment(text: &str) -> Result<String, Error> {
    if matches!(text, "" | "." | "..") {
        return Err(Error::Encode(format!(
            "{text:?} cannot be a plugin name or an id"
        )));
    }
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

/// An error with its causes on one line: reqwest's own message alone
/// ("error sending request") does not say what went wrong.
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
        assert_eq!(segment("0193-ab_c").ok().as_deref(), Some("0193-ab_c"));
        assert_eq!(segment("a/b?c").ok().as_deref(), Some("a%2Fb%3Fc"));
        assert_eq!(segment("a..b").ok().as_deref(), Some("a..b"));
        for bad in ["", ".", ".."] {
            assert!(matches!(segment(bad), Err(Error::Encode(_))), "{bad:?}");
        }
    }

    #[test]
    fn urls_are_checked() {
        let client = Client::new("http://127.0.0.1:8080/").expect("valid");
        assert_eq!(client.base_url(), "http://127.0.0.1:8080");
        for bad in ["ftp://x", "not a url", "http://h/?q=1"] {
            let e = Client::new(bad).expect_err(bad);
            assert!(matches!(e, Error::BadUrl { .. }), "{bad}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    #[test]
    fn error_answers_keep_the_code_and_message() {
        let body = br#"{"error": {"code": "run_not_found", "message": "no run 42"}}"#;
        assert_eq!(
            error_of(StatusCode::NOT_FOUND, body),
            ("run_not_found".to_owned(), "no run 42".to_owned())
        );
        assert_eq!(
            error_of(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>\n"),
            ("http_502".to_owned(), "<html>bad gateway</html>".to_owned())
        );
    }
}
