//! The HTTP surface: routes, shared state, authentication and errors.

mod admin;
pub mod auth;
mod body;
mod definitions;
pub mod error;
mod health;
mod hooks;
mod keys;
mod metrics;
mod rag;
mod sandbox;
mod secrets;
mod workflows;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::plugins::Registry;
pub use auth::Auth;
pub use body::{JsonBody, MaybeJsonBody, MemoryBudget};
use error::{ApiError, code_for};

/// Largest JSON body accepted by default.
pub const MAX_JSON_BODY: usize = 2 << 20;
/// Largest document a loader can be invoked on.
pub const MAX_DOCUMENT_BODY: usize = 32 << 20;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub auth: Auth,
    /// Request bodies being handled, in bytes: capped.
    pub budget: MemoryBudget,
    pub started: Instant,
    /// Set once the plugin directory has been scanned at start.
    pub plugins_ready: Arc<AtomicBool>,
    pub max_plugin_bytes: usize,
    /// Absent on a host that only runs workers.
    pub workflows: Option<crate::workflow::Workflows>,
    pub health: Health,
    pub knowledge: crate::knowledge::Knowledge,
    /// Absent when the knowledge base is disabled.
    pub ingestor: Option<Arc<crate::knowledge::ingest::Ingestor>>,
    pub limiter: crate::ratelimit::RateLimiter,
    /// Plugins' secrets, encrypted in the store.
    pub secrets: Arc<crate::secrets::Vault>,
}

/// The dependencies `/health` checks, and what it last found.
#[derive(Clone)]
pub struct Health {
    pub store: crate::store::Store,
    pub queue: crate::queue::Queue,
    /// Plugins' kv: only its backend is shown.
    pub kv: crate::kv::Kv,
    /// The last pings, reused for a second: `/health` is open to anyone,
    /// and must not let them ping the backends at their own rate.
    pings: Arc<tokio::sync::Mutex<Option<(std::time::Instant, health::Pings)>>>,
}

impl Health {
    pub fn new(store: crate::store::Store, queue: crate::queue::Queue, kv: crate::kv::Kv) -> Self {
        Health {
            store,
            queue,
            kv,
            pings: Arc::default(),
        }
    }
}

pub fn router(state: AppState) -> Router {
    api(state).0
}

/// The security scheme every operation but `/health` names, with the
/// scopes it needs.
const BEARER: &str = "bearer";

/// The router and its OpenAPI document, built from the same route lists:
/// every route is registered through `routes!`, which takes its path and
/// methods from the handler's `#[utoipa::path]`, so a route cannot be served
/// without being documented (the tests below hold the code to that).
///
/// Every route but `/health` is behind [`auth::authenticate`]; each
/// handler names the scope it needs with an [`auth::Need`] argument. Routes
/// that take a body reserve it in the [`MemoryBudget`] first.
pub fn api(state: AppState) -> (Router, OpenApi) {
    // A route that takes a body of at most `limit` bytes.
    let with_body =
        |routes: UtoipaMethodRouter<AppState>, limit: usize| -> UtoipaMethodRouter<AppState> {
            let budget = state.budget.clone();
            routes.map(|r| {
                r.layer::<_, std::convert::Infallible>(middleware::from_fn_with_state(
                    (budget, limit),
                    body::reserve,
                ))
                .layer(DefaultBodyLimit::max(limit))
            })
        };

    let rag = OpenApiRouter::new()
        .routes(with_body(routes!(rag::query), MAX_JSON_BODY))
        .routes(routes!(rag::stats))
        .routes(routes!(rag::ingest_report))
        .routes(with_body(routes!(rag::reload), MAX_JSON_BODY))
        .routes(routes!(rag::list_collections))
        .routes(with_body(routes!(rag::create_collection), MAX_JSON_BODY))
        .routes(routes!(rag::get_collection, rag::delete_collection))
        .routes(routes!(rag::list_documents))
        .routes(with_body(routes!(rag::put_document), MAX_DOCUMENT_BODY))
        .routes(routes!(rag::get_document, rag::delete_document))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rag::rate_limit,
        ));

    let authenticated = OpenApiRouter::new()
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_json))
        // One path, two routes: a body only for the submission.
        .routes(with_body(routes!(workflows::submit), MAX_JSON_BODY))
        .routes(routes!(workflows::list))
        .routes(routes!(workflows::get))
        .routes(routes!(workflows::cancel))
        .routes(routes!(workflows::retry))
        .routes(routes!(workflows::rerun))
        .routes(routes!(definitions::list))
        .routes(with_body(routes!(definitions::save), MAX_JSON_BODY))
        .routes(routes!(definitions::get, definitions::remove))
        .routes(with_body(routes!(definitions::run), MAX_JSON_BODY))
        .routes(routes!(admin::list))
        .routes(routes!(admin::reload))
        .routes(routes!(admin::show, admin::remove))
        .routes(with_body(routes!(admin::upload), state.max_plugin_bytes))
        .routes(with_body(routes!(admin::invoke), MAX_DOCUMENT_BODY))
        .routes(routes!(admin::logs))
        .routes(with_body(routes!(sandbox::run), MAX_JSON_BODY))
        .routes(with_body(routes!(keys::create), MAX_JSON_BODY))
        .routes(routes!(keys::list))
        .routes(routes!(keys::revoke))
        .routes(with_body(routes!(secrets::set), MAX_JSON_BODY))
        .routes(routes!(secrets::list))
        .routes(routes!(secrets::remove))
        .merge(rag)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));

    let (router, mut openapi) = OpenApiRouter::with_openapi(document())
        .routes(routes!(health::health))
        // The signature is the credential: no API key.
        .routes(with_body(routes!(hooks::deliver), MAX_JSON_BODY))
        .merge(authenticated)
        .split_for_parts();
    openapi
        .components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`POST /admin/keys`) or the host's NOVA_ADMIN_TOKEN. \
                         Each operation lists the scope it needs; `admin` holds them all.",
                    ))
                    .build(),
            ),
        );
    // Serialised once: the document does not change while the host runs.
    // It holds only strings, maps and finite numbers, so this cannot fail.
    let spec = OpenApiJson(Bytes::from(
        openapi
            .to_json()
            .expect("the OpenAPI document serialises to JSON"),
    ));

    let router = router
        .layer(Extension(spec))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(middleware::from_fn(json_errors))
        // Outside the JSON safety net, so it counts the statuses clients
        // see; a layer (not a route_layer) on the router runs after
        // routing, so it sees the matched route's path.
        .layer(middleware::from_fn(crate::metrics::http::http_metrics))
        // A bug in a handler answers 500 (made JSON by the layer above)
        // instead of dropping the connection.
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; see the host's log",
                )
                .into_response()
            },
        ))
        // Outermost: every layer and handler above logs inside the
        // request's span, and even a panic's 500 carries X-Request-Id.
        .layer(middleware::from_fn(crate::request_id::request_id))
        .with_state(state);
    (router, openapi)
}

/// The router of the metrics address (`--metrics-bind`): `GET /metrics`
/// without credentials, and nothing else (every other path is 404).
pub fn metrics_router() -> Router {
    let (router, _) = OpenApiRouter::new()
        .routes(routes!(metrics::scrape))
        .split_for_parts();
    router
        .fallback(not_found)
        .layer(middleware::from_fn(json_errors))
}

/// The document's parts that no route declares: info and tags.
fn document() -> OpenApi {
    let tag = |name: &str, description: &str| {
        TagBuilder::new()
            .name(name)
            .description(Some(description))
            .build()
    };
    let mut doc = OpenApi::new(
        InfoBuilder::new()
            .title("nova")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some(
                "An automation host: sandboxed WebAssembly plugins, a knowledge base and \
                 workflows. Every error is answered as \
                 `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}`.",
            ))
            .build(),
        utoipa::openapi::Paths::new(),
    );
    doc.tags = Some(vec![
        tag("workflows", "Submit, follow, list and cancel workflow runs"),
        tag(
            "knowledge",
            "Search the knowledge base; manage its collections and documents",
        ),
        tag("plugins", "Manage and try plugins (admin)"),
        tag(
            "sandbox",
            "Run Python and JavaScript snippets in the plugin sandbox",
        ),
        tag("keys", "Make, list and revoke API keys (admin)"),
        tag(
            "secrets",
            "Set, list and delete the secrets plugins read through wasi:config (admin); values are never shown",
        ),
        tag("health", "Liveness, readiness, metrics and this document"),
    ]);
    doc
}

/// The serialised OpenAPI document, for `GET /openapi.json`.
#[derive(Clone)]
struct OpenApiJson(Bytes);

/// This document: OpenAPI 3.1, generated from the routes and their types.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "health",
    security(("bearer" = [])),
    responses(
        (status = OK, description = "The OpenAPI document", body = serde_json::Value),
        (status = UNAUTHORIZED, description = "Missing or unknown credentials", body = error::ErrorBody),
    ),
)]
async fn openapi_json(_: auth::Authenticated, Extension(spec): Extension<OpenApiJson>) -> Response {
    let mut response = Response::new(Body::from(spec.0));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(
        "not_found",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

/// Safety net: an error raised outside our handlers (a method the route
/// does not take, a query string that does not parse) arrives as plain
/// text; rewrap it so that every error a client sees is JSON.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut rewrapped = ApiError::new(status, code_for(status), message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewrapped.headers_mut().insert(name, value.clone());
        }
    }
    rewrapped
}

/// Parses a JSON request body, answering 400 with serde's reason.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let code = if e.is_data() {
            "invalid_request"
        } else {
            "invalid_json"
        };
        ApiError::bad_request(code, format!("request body: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;

    const TOKEN: &str = "test-token";

    #[test]
    fn whole_numbers_take_a_zero_fraction() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "nova_client::types::whole")]
            n: Option<u32>,
        }
        let n = |text: &str| serde_json::from_str::<Body>(text).map(|b| b.n);
        // JSON Schema's `integer` (schemathesis sent `"top_k": 65.0`).
        assert_eq!(n(r#"{"n": 65.0}"#).unwrap(), Some(65));
        assert_eq!(n(r#"{"n": 65}"#).unwrap(), Some(65));
        assert_eq!(n("{}").unwrap(), None);
        assert_eq!(n(r#"{"n": null}"#).unwrap(), None);
        for bad in [
            r#"{"n": 6.5}"#,
            r#"{"n": -1}"#,
            r#"{"n": 5000000000}"#,
            r#"{"n": "5"}"#,
        ] {
            assert!(n(bad).is_err(), "{bad}");
        }
    }

    /// A host's state on an empty plugin directory, the embedded store, the
    /// in-process queue and the knowledge base off.
    async fn state(dir: &std::path::Path) -> AppState {
        use crate::plugins::{Limits, Runtime};
        let store = crate::store::Store::open_default(&dir.join("data"))
            .await
            .expect("store");
        let queue = crate::queue::Queue::memory();
        let knowledge = crate::knowledge::Knowledge::disabled("off in this test");
        let kv = crate::kv::Kv::in_process();
        let services = crate::capabilities::lend(kv.clone(), store.clone(), knowledge.clone());
        let limits = Limits {
            timeout: Duration::from_secs(1),
            memory_bytes: 16 << 20,
            max_output_bytes: 1 << 20,
            ..Limits::default()
        };
        let config = crate::plugins::RuntimeConfig {
            defaults: limits,
            max_memory_bytes: 16 << 20,
            concurrency: 1,
            ..Default::default()
        };
        let runtime = Runtime::new(&dir.join("cache"), config, services).expect("plugin runtime");
        let plugins = dir.join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        let registry = Arc::new(Registry::new(Arc::new(runtime), plugins));
        let store_for_keys = store.clone();
        let secrets_store = store.clone();
        AppState {
            workflows: Some(crate::workflow::Workflows {
                store: store.clone(),
                queue: queue.clone(),
                registry: registry.clone(),
                config: Default::default(),
                waiters: crate::workflow::Waiters::new(store.clone()),
            }),
            health: Health::new(store, queue, kv),
            auth: Auth {
                admin_token: TOKEN.into(),
                keys: crate::auth::ApiKeys::new(store_for_keys),
                enabled: true,
                trusted_proxies: Arc::new([]),
            },
            budget: MemoryBudget::new(8 << 20, Duration::from_secs(1)),
            registry,
            started: Instant::now(),
            plugins_ready: Arc::new(AtomicBool::new(true)),
            max_plugin_bytes: 1 << 20,
            knowledge,
            ingestor: None,
            limiter: crate::ratelimit::RateLimiter::memory(crate::ratelimit::RateConfig {
                rate: 1000.0,
                burst: 1000.0,
            }),
            secrets: Arc::new(
                crate::secrets::Vault::open(secrets_store, None, &dir.join("data")).expect("vault"),
            ),
        }
    }

    /// (method, path) of every operation in the document.
    fn operations(openapi: &OpenApi) -> BTreeSet<(String, String)> {
        let doc = serde_json::to_value(openapi).expect("document");
        let mut ops = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if METHODS.contains(&method.as_str()) {
                    ops.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        ops
    }

    const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

    /// A path with its parameters filled in.
    fn fill(path: &str) -> String {
        path.replace("{id}", "00000000-0000-7000-8000-000000000000")
            .replace("{name}", "no-such-plugin")
    }

    #[tokio::test]
    async fn router_serves_exactly_the_documented_operations() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (router, openapi) = api(state(dir.path()).await);
        let ops = operations(&openapi);

        let expected: BTreeSet<(String, String)> = [
            ("GET", "/health"),
            ("GET", "/metrics"),
            ("GET", "/openapi.json"),
            ("POST", "/workflows"),
            ("GET", "/workflows"),
            ("GET", "/workflows/{id}"),
            ("POST", "/workflows/{id}/cancel"),
            ("POST", "/workflows/{id}/retry"),
            ("POST", "/workflows/{id}/rerun"),
            ("GET", "/workflows/definitions"),
            ("GET", "/workflows/definitions/{name}"),
            ("PUT", "/workflows/definitions/{name}"),
            ("DELETE", "/workflows/definitions/{name}"),
            ("POST", "/workflows/definitions/{name}/runs"),
            ("POST", "/hooks/{name}"),
            ("GET", "/admin/plugins"),
            ("POST", "/admin/plugins/reload"),
            ("GET", "/admin/plugins/{name}"),
            ("PUT", "/admin/plugins/{name}"),
            ("DELETE", "/admin/plugins/{name}"),
            ("POST", "/admin/plugins/{name}/invoke"),
            ("GET", "/admin/plugins/{name}/logs"),
            ("POST", "/sandbox/run"),
            ("POST", "/rag/query"),
            ("GET", "/rag/stats"),
            ("POST", "/rag/reload"),
            ("GET", "/rag/ingests/{id}"),
            ("GET", "/rag/collections"),
            ("PUT", "/rag/collections/{collection}"),
            ("GET", "/rag/collections/{collection}"),
            ("DELETE", "/rag/collections/{collection}"),
            ("GET", "/rag/collections/{collection}/documents"),
            ("PUT", "/rag/collections/{collection}/documents/{id}"),
            ("GET", "/rag/collections/{collection}/documents/{id}"),
            ("DELETE", "/rag/collections/{collection}/documents/{id}"),
            ("POST", "/admin/keys"),
            ("GET", "/admin/keys"),
            ("DELETE", "/admin/keys/{id}"),
            ("GET", "/admin/secrets"),
            ("PUT", "/admin/secrets/{name}"),
            ("DELETE", "/admin/secrets/{name}"),
        ]
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
        assert_eq!(ops, expected);

        // Client generators name their calls after operation ids.
        let doc = serde_json::to_value(&openapi).expect("document");
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let id = op["operationId"].as_str().expect("an operation id");
                assert!(ids.insert(id.to_owned()), "{method} {path}: {id} again");
                assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()));
            }
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        let http = reqwest::Client::new();
        let send = |method: &str, path: &str| {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            http.request(method, format!("http://{addr}{}", fill(path)))
                .bearer_auth(TOKEN)
                .send()
        };
        let fell_through = |body: &str| body.contains("\"no route for ");

        // The fallback is told apart from a route's 404.
        let response = send("GET", "/no/such/route").await.expect("request");
        assert!(fell_through(&response.text().await.expect("body")));

        let paths: BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
        for path in paths {
            for method in METHODS.map(str::to_uppercase) {
                let response = send(&method, path).await.expect("request");
                let status = response.status();
                let body = response.text().await.expect("body");
                if ops.contains(&(method.clone(), path.clone())) {
                    // Served: answered by its handler, not the fallback.
                    assert_ne!(status, 405, "{method} {path}: {body}");
                    assert!(!fell_through(&body), "{method} {path}: {body}");
                } else {
                    // Not documented: not served either.
                    assert_eq!(status, 405, "{method} {path} is served: {body}");
                }
            }
        }
    }

    /// The scopes each operation documents, from its `security`: None for
    /// an operation anyone may call.
    /// The scopes any of an operation's security requirements names (they
    /// are alternatives: one suffices); none for an open operation.
    fn documented_scopes(op: &serde_json::Value) -> Option<Vec<String>> {
        let security = op["security"].as_array()?;
        let mut scopes = Vec::new();
        for requirement in security {
            let named = requirement.as_object()?.get(BEARER)?.as_array()?;
            scopes.extend(named.iter().filter_map(|s| s.as_str().map(str::to_owned)));
        }
        (!security.is_empty()).then_some(scopes)
    }

    /// Every operation answers 401 without credentials (but /health), 403
    /// to a key without the scope its document names, and lets through a
    /// key with exactly that scope: what the document says is what the
    /// server does.
    #[tokio::test]
    async fn every_operation_enforces_the_scopes_it_documents() {
        use crate::auth::{Scope, Scopes};
        let dir = tempfile::tempdir().expect("temp dir");
        let state = state(dir.path()).await;
        let keys = state.auth.keys.clone();
        let (router, openapi) = api(state);
        let mut key_of = std::collections::BTreeMap::new();
        for scope in Scope::ALL {
            let issued = keys
                .issue(
                    scope.as_str(),
                    [scope].into_iter().collect::<Scopes>(),
                    None,
                )
                .await
                .expect("key");
            key_of.insert(scope.as_str().to_owned(), issued.key);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
        });
        let http = reqwest::Client::new();
        let doc = serde_json::to_value(&openapi).expect("document");
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let method =
                    reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
                let url = format!("http://{addr}{}", fill(path));
                let send = |key: Option<&String>| {
                    let mut request = http
                        .request(method.clone(), &url)
                        .header("content-type", "application/json")
                        .body("{}");
                    if let Some(key) = key {
                        request = request.bearer_auth(key);
                    }
                    request.send()
                };
                let anonymous = send(None).await.expect("request").status();
                let Some(needed) = documented_scopes(op) else {
                    assert_ne!(anonymous, 401, "{method} {path} is documented as open");
                    continue;
                };
                assert_eq!(anonymous, 401, "{method} {path} without credentials");
                let garbage = "nova_".to_owned() + &"0".repeat(64);
                let status = send(Some(&garbage)).await.expect("request").status();
                assert_eq!(status, 401, "{method} {path} with an unknown key");
                for (scope, key) in &key_of {
                    let status = send(Some(key)).await.expect("request").status();
                    let allowed = needed.is_empty() || needed.contains(scope) || scope == "admin";
                    if allowed {
                        assert!(
                            status != 401 && status != 403,
                            "{method} {path} refused a key with {scope}: {status}"
                        );
                    } else {
                        assert_eq!(status, 403, "{method} {path} let {scope} through");
                    }
                }
                checked += 1;
            }
        }
        assert!(checked >= 19, "only {checked} operations checked");
    }

    /// Routes must come from `routes!` (via `OpenApiRouter::routes`), which
    /// documents them: a route added any other way would be served without
    /// being in the document.
    #[test]
    fn routes_are_only_added_through_the_routes_macro() {
        // The router is built here and served by server.rs; other modules'
        // tests build routers of their own.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.join("api"), src.join("server.rs")];
        let mut sources = Vec::new();
        while let Some(path) = files.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).expect("read dir") {
                    files.push(entry.expect("entry").path());
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push((path.clone(), std::fs::read_to_string(&path).expect("read")));
            }
        }
        assert!(sources.iter().any(|(p, _)| p.ends_with("api/admin.rs")));
        assert!(sources.iter().any(|(p, _)| p.ends_with("server.rs")));
        // Built at run time so that this test's own source does not match.
        let calls: Vec<String> = ["route", "route_service", "nest", "nest_service"]
            .iter()
            .map(|name| format!(".{name}("))
            .collect();
        let plain_router = format!("{}::new()", "Router");
        let openapi_router = format!("OpenApi{plain_router}");
        for (path, text) in &sources {
            for call in &calls {
                assert!(
                    !text.contains(call.as_str()),
                    "{} calls {call}: register routes with `.routes(routes!(...))`",
                    path.display()
                );
            }
            assert_eq!(
                text.matches(&plain_router).count(),
                text.matches(&openapi_router).count(),
                "{} builds a plain axum Router: use OpenApiRouter",
                path.display()
            );
        }
    }

    #[test]
    fn document_has_info_security_and_tags() {
        let doc = serde_json::to_value(document()).expect("document");
        assert_eq!(doc["info"]["title"], "nova");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
        let tags: Vec<&str> = doc["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(
            tags,
            [
                "workflows",
                "knowledge",
                "plugins",
                "sandbox",
                "keys",
                "secrets",
                "health"
            ]
        );
    }
}
