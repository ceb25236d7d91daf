//! `nova serve`: wires the parts together and serves HTTP until a signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::api::{self, AppState, Auth, Health, MemoryBudget};
use crate::auth::ApiKeys;
use crate::config::KnowledgeConfig;
use crate::config::{AuthMode, Config};
use crate::embed::{BatchConfig, Embedder};
use crate::http;
use crate::knowledge::ingest::Ingestor;
use crate::knowledge::{Knowledge, QueryCache};
use crate::kv::Kv;
use crate::plugins::capability::FleetSync;
use crate::plugins::{Protected, Registry, Runtime, watcher};
use crate::queue::Queue;
use crate::ratelimit::RateLimiter;
use crate::redis::Connection;
use crate::store::Store;
use crate::vector::VectorIndex;
use crate::vector::edge::EdgeIndex;
use crate::vector::server::ServerIndex;
use crate::workflow::{self, WorkflowConfig, Workflows};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot create {path}: {error}")]
    CreateDir { path: String, error: std::io::Error },
    #[error(transparent)]
    Runtime(#[from] crate::plugins::RuntimeError),
    #[error("cannot watch the plugin directory {path}: {error}")]
    Watch { path: String, error: notify::Error },
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(std::io::Error),
    #[error("cannot generate an admin token: {0}")]
    Token(String),
    #[error("cannot open the store: {0}")]
    Store(crate::store::StoreError),
    #[error("cannot connect the queue: {0}")]
    Queue(crate::queue::QueueError),
    #[error("cannot connect the kv store: {0}")]
    Kv(crate::kv::KvError),
    #[error("cannot connect to redis: {0}")]
    Redis(crate::redis::Error),
    #[error("cannot start the knowledge base: {0} (set NOVA_KNOWLEDGE=false to run without it)")]
    Knowledge(String),
    #[error(transparent)]
    Outbound(#[from] crate::outbound::OutboundError),
    #[error(transparent)]
    SecretsKey(#[from] crate::secrets::KeyError),
}

/// How long a stopping process waits for its steps in flight to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// One embedding replica per core: each runs the encoder on one thread,
/// which on MiniLM's small matrices embeds more texts per second than
/// threads sharing one forward pass, and a lone query is as fast.
fn embedding_replicas() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The knowledge base's parts: model, index, cache and rate limiter.
async fn knowledge(
    config: &KnowledgeConfig,
    data_dir: &std::path::Path,
    redis: Option<&Arc<Connection>>,
    redis_prefix: &str,
) -> Result<(Knowledge, RateLimiter), ServeError> {
    let limiter = match redis {
        Some(connection) => RateLimiter::redis(config.rate, connection.clone(), redis_prefix),
        None => RateLimiter::memory(config.rate),
    };
    if !config.enabled {
        return Ok((Knowledge::disabled("turned off by configuration"), limiter));
    }
    let start = Instant::now();
    let model_dir = config.model_dir.clone();
    let batch = BatchConfig {
        replicas: embedding_replicas(),
        ..BatchConfig::default()
    };
    let embedder = tokio::task::spawn_blocking(move || Embedder::load(&model_dir, batch))
        .await
        .map_err(|e| ServeError::Knowledge(e.to_string()))?
        .map_err(|e| ServeError::Knowledge(e.to_string()))?;
    let index: Arc<dyn VectorIndex> = match &config.qdrant_url {
        Some(url) => Arc::new(
            ServerIndex::connect(url, config.qdrant_api_key.clone(), &config.qdrant_prefix)
                .await
                .map_err(|e| ServeError::Knowledge(e.to_string()))?,
        ),
        None => {
            let dir = data_dir.join("index");
            Arc::new(
                tokio::task::spawn_blocking(move || EdgeIndex::open(&dir))
                    .await
                    .map_err(|e| ServeError::Knowledge(e.to_string()))?
                    .map_err(|e| ServeError::Knowledge(e.to_string()))?,
            )
        }
    };
    // Configured collections exist from the start: a query before the
    // first ingest finds nothing rather than an unknown collection.
    for source in &config.sources {
        index
            .ensure_collection(&source.collection, embedder.info().dimensions)
            .await
            .map_err(|e| ServeError::Knowledge(e.to_string()))?;
    }
    let cache = match redis {
        Some(connection) => QueryCache::redis(connection.clone(), redis_prefix, config.cache_ttl),
        None => QueryCache::memory(config.cache_ttl),
    };
    tracing::info!(
        model = %embedder.info().name,
        dimensions = embedder.info().dimensions,
        matrix_kernel = batch.kernel.runs(),
        index = index.backend(),
        ms = start.elapsed().as_millis() as u64,
        "knowledge base opened"
    );
    let keywords =
        crate::vector::Keywords::new().map_err(|e| ServeError::Knowledge(e.to_string()))?;
    Ok((
        Knowledge::new(embedder, keywords, index, cache, config.chunk),
        limiter,
    ))
}

/// This machine's name, for worker ids; falls back to "nova".
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "nova".to_owned())
}

pub async fn serve(config: Config) -> Result<(), ServeError> {
    // The crates below report to the process's metrics through these.
    crate::embed::observe_batches(crate::metrics::embed_batch);
    crate::plugins::observe_calls(crate::metrics::plugin_call);
    for dir in [&config.data_dir, &config.plugins_dir] {
        std::fs::create_dir_all(dir).map_err(|error| ServeError::CreateDir {
            path: dir.display().to_string(),
            error,
        })?;
    }
    let admin_token = match &config.admin_token {
        Some(token) => token.clone(),
        None => {
            let token = generate_token()?;
            // Printed once, on stdout, so it can be copied; never logged.
            println!("admin token (generated; set NOVA_ADMIN_TOKEN to choose one): {token}");
            token
        }
    };

    let store = match &config.database_url {
        Some(url) => Store::connect(url).await,
        None => Store::open_default(&config.data_dir).await,
    }
    .map_err(ServeError::Store)?;
    // Each process is its own consumer in the group, so a dead process's
    // entries can be told apart and reclaimed.
    let worker_id = format!("{}-{}", hostname(), std::process::id());
    // Redis is connected here once, for kv, the query cache and the rate
    // limit; the queue keeps connections of its own, since its blocking
    // reads would hold a shared one.
    let redis = match &config.redis_url {
        Some(url) => Some(Arc::new(
            Connection::open(url).await.map_err(ServeError::Redis)?,
        )),
        None => None,
    };
    let (queue, kv) = match (&config.redis_url, &redis) {
        (Some(url), Some(redis)) => (
            Queue::redis(url, &config.redis_prefix, &worker_id, config.lease)
                .await
                .map_err(ServeError::Queue)?,
            Kv::on(redis.clone(), &config.redis_prefix).map_err(ServeError::Kv)?,
        ),
        _ => (Queue::memory(), Kv::in_process()),
    };
    tracing::info!(
        role = ?config.role,
        store = store.backend(),
        queue = queue.backend(),
        "backends ready"
    );
    let (knowledge, limiter) = knowledge(
        &config.knowledge,
        &config.data_dir,
        redis.as_ref(),
        &config.redis_prefix,
    )
    .await?;
    let outbound = crate::outbound::Outbound::new(config.extra_ca_file.as_deref())?;
    let vault = Arc::new(crate::secrets::Vault::open(
        store.clone(),
        config.secrets_key.as_deref(),
        &config.data_dir,
    )?);
    let capabilities = crate::capabilities::lend(kv.clone(), store.clone(), knowledge.clone())
        .with::<dyn nova_plugin_host::capability::OutboundHttp>(Arc::new(outbound))
        .with::<dyn nova_plugin_host::capability::Secrets>(vault.clone());
    let mut runtime = Runtime::new(
        &config.cache_dir.join("components"),
        config.plugins.clone(),
        capabilities,
    )?;
    // This process is `nova serve`: plugins compile in a `nova
    // compile-plugin` child, whose memory is returned when it exits.
    match std::env::current_exe() {
        Ok(exe) => runtime = runtime.compile_in_child(exe),
        Err(e) => {
            tracing::warn!(error = %e, "cannot find the nova binary; plugins compile in this process")
        }
    }
    let runtime = Arc::new(runtime);
    // On Postgres, hosts share what the admin API uploads and removes.
    let fleet = store.fleet(worker_id.clone()).map(Arc::new);
    // What no manifest may grant a plugin: the directories ingest reads,
    // the compiled code the host loads, the index, and (held whole) the
    // plugin and data directories.
    let protected = Protected {
        disjoint: config
            .knowledge
            .sources
            .iter()
            .map(|s| s.dir.clone())
            .chain([config.cache_dir.clone(), config.data_dir.join("index")])
            .collect(),
        enclosed: vec![config.plugins_dir.clone(), config.data_dir.clone()],
    };
    let registry = Arc::new(
        Registry::new(runtime, config.plugins_dir.clone())
            .with_fleet(
                fleet
                    .clone()
                    .map(|f| Arc::new(crate::fleet::Shared(f)) as Arc<dyn FleetSync>),
            )
            .with_protected(protected),
    );
    // Watch before the first scan, so a file landing during it is not missed.
    let _watch = watcher::spawn(registry.clone()).map_err(|error| ServeError::Watch {
        path: config.plugins_dir.display().to_string(),
        error,
    })?;

    let workflows = Workflows {
        waiters: workflow::Waiters::new(store.clone()),
        store,
        queue,
        registry: registry.clone(),
        config: WorkflowConfig {
            concurrency: config.workers,
            lease: config.lease,
            retention: config.run_retention,
            limits: config.runs,
            ..WorkflowConfig::default()
        },
    };
    let workers = config.role.runs_workers().then(|| workflows.clone());
    crate::metrics::gauges::spawn_gauges(workflows.store.clone(), workflows.queue.clone());

    let ingestor = knowledge.inner().is_ok().then(|| {
        Arc::new(Ingestor::new(
            knowledge.clone(),
            registry.clone(),
            config.knowledge.sources.clone(),
        ))
    });

    let auth = Auth {
        admin_token: admin_token.into(),
        keys: ApiKeys::new(workflows.store.clone()),
        enabled: config.auth == AuthMode::On,
        trusted_proxies: config.trusted_proxies.clone().into(),
    };
    if !auth.enabled {
        // Said where an operator looks first, and in the log.
        println!(
            "WARNING: authentication is OFF (NOVA_AUTH=off): anyone who can reach {} holds every scope",
            config.bind
        );
        tracing::warn!("authentication is off: every caller holds every scope");
    }
    let plugins_ready = Arc::new(AtomicBool::new(false));
    let state = AppState {
        workflows: config.role.serves_api().then_some(workflows.clone()),
        health: Health::new(workflows.store.clone(), workflows.queue.clone(), kv),
        registry: registry.clone(),
        auth,
        budget: MemoryBudget::new(config.http.max_in_flight, config.http.memory_wait)
            .with_body_timeout(config.http.body_timeout),
        started: Instant::now(),
        plugins_ready: plugins_ready.clone(),
        max_plugin_bytes: config.max_plugin_bytes,
        knowledge: knowledge.clone(),
        ingestor: ingestor.clone(),
        limiter,
        secrets: vault,
    };
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|error| ServeError::Bind {
            addr: config.bind,
            error,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    println!("nova listening on http://{addr}");
    tracing::info!(%addr, plugins_dir = %config.plugins_dir.display(), "nova serving");

    if let Some(metrics_bind) = config.metrics_bind {
        let listener = tokio::net::TcpListener::bind(metrics_bind)
            .await
            .map_err(|error| ServeError::Bind {
                addr: metrics_bind,
                error,
            })?;
        let addr = listener.local_addr().map_err(ServeError::Serve)?;
        tracing::info!(%addr, "metrics served without credentials");
        let limits = config.http;
        tokio::spawn(async move {
            let never = std::future::pending::<()>();
            if let Err(e) = http::serve(listener, api::metrics_router(), limits, never).await {
                tracing::error!(error = %e, "the metrics address stopped");
            }
        });
    }

    let (drain, drained) = workflow::drain();
    let startup = tokio::spawn(async move {
        let start = Instant::now();
        let outcomes = registry.rescan().await;
        // Then what other hosts uploaded while this one was down.
        if let Some(fleet) = fleet {
            let (ready, caught_up) = tokio::sync::oneshot::channel();
            tokio::spawn(crate::fleet::follow(fleet, registry.clone(), ready));
            let _ = caught_up.await;
        }
        plugins_ready.store(true, Ordering::Release);
        // Only now: a run claimed before its plugins are loaded would fail
        // with "plugin not loaded" on every host start.
        if let Some(workflows) = workers {
            workflow::spawn_workers(workflows.clone(), worker_id, drain);
            workflow::spawn_scheduler(workflows.clone());
            workflow::spawn_sweeper(workflows);
        } else {
            drop(drain);
        }
        tracing::info!(
            plugins = outcomes.len(),
            ms = start.elapsed().as_secs_f64() * 1e3,
            "plugin directory scanned"
        );
        // Loaders are in: the first ingest, then re-ingest on changes. The
        // watcher starts first, so a change made during the first ingest
        // is not missed (its ingest queues behind).
        if let Some(ingestor) = ingestor {
            let _watch =
                crate::knowledge::watch::spawn(ingestor.clone(), registry.loader_changes());
            ingestor.ingest_all().await;
            knowledge.set_ready();
            std::future::pending::<()>().await;
        }
    });

    let app = api::router(state);
    // At the signal the workers stop taking runs while the HTTP server
    // finishes its requests; both drain from then on.
    let stop_workers = drained.stopper();
    let (signalled_tx, signalled) = tokio::sync::watch::channel(None::<Instant>);
    tokio::spawn(async move {
        shutdown_signal().await;
        stop_workers();
        let _ = signalled_tx.send(Some(Instant::now()));
    });
    let mut on_signal = signalled.clone();
    http::serve(listener, app, config.http, async move {
        let _ = on_signal.wait_for(Option::is_some).await;
    })
    .await
    .map_err(ServeError::Serve)?;
    // A start-up cut short still holds the workers' drain: drop it.
    startup.abort();
    let since = signalled.borrow().map_or(Duration::ZERO, |t| t.elapsed());
    if !drained.wait(DRAIN_TIMEOUT.saturating_sub(since)).await {
        tracing::warn!(
            seconds = DRAIN_TIMEOUT.as_secs(),
            "steps still running at exit; their runs resume elsewhere once their lease expires"
        );
    }
    Ok(())
}

fn generate_token() -> Result<String, ServeError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| ServeError::Token(e.to_string()))?;
    Ok(hex::encode(bytes))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
