//! `nova serve`: wires the parts together and serves HTTP until a signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::knowledge::Knowledge;
use crate::kv::Kv;
use crate::plugins::{Registry, Runtime, Services, watcher};

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
}

pub async fn serve(config: Config) -> Result<(), ServeError> {
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

    let services = Services {
        kv: Kv::in_process(),
        knowledge: Knowledge::empty(),
    };
    let runtime = Arc::new(Runtime::new(
        &config.cache_dir.join("components"),
        config.plugin_limits,
        config.plugin_max_memory_bytes,
        config.plugin_concurrency,
        services,
    )?);
    let registry = Arc::new(Registry::new(runtime, config.plugins_dir.clone()));
    // Watch before the first scan, so a file landing during it is not missed.
    let _watch = watcher::spawn(registry.clone()).map_err(|error| ServeError::Watch {
        path: config.plugins_dir.display().to_string(),
        error,
    })?;

    let plugins_ready = Arc::new(AtomicBool::new(false));
    let state = AppState {
        registry: registry.clone(),
        admin_token: admin_token.into(),
        started: Instant::now(),
        plugins_ready: plugins_ready.clone(),
        max_plugin_bytes: config.max_plugin_bytes,
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

    tokio::spawn(async move {
        let start = Instant::now();
        let outcomes = registry.rescan().await;
        plugins_ready.store(true, Ordering::Release);
        tracing::info!(
            plugins = outcomes.len(),
            ms = start.elapsed().as_secs_f64() * 1e3,
            "plugin directory scanned"
        );
    });

    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(ServeError::Serve)
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
