//! Connections to Redis, set up once for the work queue and the kv store.
//!
//! Every client reconnects by itself, forever, with a short exponential
//! backoff: Redis restarting or failing over must cost a few failed calls,
//! never the process. A command sent while Redis is away waits for the
//! reconnection up to a timeout and then fails with an error the caller
//! returns.

use std::time::Duration;

use fred::prelude::{Builder, ClientLike, Config, ReconnectPolicy};
use fred::types::RespVersion;

pub use fred::error::Error;
pub use fred::prelude::Client;

/// How long a command may wait, reconnection included, unless the caller
/// says otherwise (blocking reads do).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection delays, in milliseconds: quick at first so a restarted
/// Redis is picked up within tens of milliseconds, capped so a long outage
/// costs little.
const RECONNECT_MIN_MS: u32 = 20;
const RECONNECT_MAX_MS: u32 = 1_000;

/// One client with its own connection, closed when dropped.
pub struct Connection {
    client: Client,
}

impl Connection {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`). Fails if
    /// the first connection cannot be made; later losses are reconnected.
    pub async fn open(url: &str) -> Result<Connection, Error> {
        let mut config = Config::from_url(url)?;
        // Replies are parsed in their RESP2 shapes.
        config.version = RespVersion::RESP2;
        let servers: Vec<String> = config
            .server
            .hosts()
            .iter()
            .map(ToString::to_string)
            .collect();
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = CONNECT_TIMEOUT;
                c.internal_command_timeout = CONNECT_TIMEOUT;
                c.tcp.nodelay = Some(true);
            })
            .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
            .set_policy(ReconnectPolicy::new_exponential(
                0,
                RECONNECT_MIN_MS,
                RECONNECT_MAX_MS,
                2,
            ))
            .build()?;
        client.init().await?;
        tracing::debug!(servers = ?servers, "connected to redis");
        Ok(Connection { client })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The client's connection task holds the client alive and reconnects
        // forever: without QUIT it would outlive every handle.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

/// Whether Redis answered that a stream or consumer group does not exist,
/// as it does after a restart without persistence.
pub fn is_nogroup(error: &Error) -> bool {
    error.details().contains("NOGROUP")
}
