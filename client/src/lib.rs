//! A typed client for the HTTP API of a nova host: workflows, the
//! knowledge base, the plugin admin routes and the health check.
//!
//! Every route has a method that sends the request, retries it when that
//! is safe and useful, and decodes the answer into the types of
//! [`types`]. Each answer is an [`Answer`]: the decoded value, the body as
//! the host sent it (for tools that print it as is), the HTTP status and
//! how many requests it took.
//!
//! ```no_run
//! use std::time::Duration;
//! use nova_client::{Client, RetryPolicy, Step, Workflow};
//! use serde_json::json;
//!
//! # async fn demo() -> Result<(), nova_client::Error> {
//! let client = Client::builder("http://127.0.0.1:8080")
//!     .token("nova_3f0c…") // an API key, or the host's admin token
//!     .timeout(Duration::from_secs(10))
//!     .retry(RetryPolicy { max_attempts: 5, ..RetryPolicy::default() })
//!     .build()?;
//!
//! let workflow = Workflow {
//!     steps: vec![Step::new("template", json!({"template": "Hello {{ name }}!"}))],
//!     input: Some(json!({"name": "Ada"}).into()),
//!     // A key makes the submission safe to retry after a lost answer.
//!     idempotency_key: Some("greet-ada-1".into()),
//!     ..Workflow::default()
//! };
//! let submitted = client.submit(&workflow).await?;
//! let run = client.wait(&submitted.value.id, Duration::from_secs(120)).await?;
//! println!("{}: {}", run.value.status, run.value.output);
//!
//! match client.plugin_show("no-such-plugin").await {
//!     Err(e) if e.code() == Some("plugin_not_found") => println!("not there"),
//!     other => println!("{other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Retries
//!
//! A request is tried again, following the [`RetryPolicy`], when
//!
//! - it could not be sent: the connection was refused or reset, or the
//!   host did not answer in time;
//! - the host answered `429 Too Many Requests` or `503 Service
//!   Unavailable` (its `Retry-After` is honoured, up to the policy's
//!   `max_delay`), except `503 knowledge_disabled`, which says retrying
//!   cannot help.
//!
//! Any other error answer, every `4xx` included, ends the call at once.
//!
//! Requests that are not idempotent (a submission without an idempotency
//! key, `POST /rag/reload`, plugin upload, removal and invocation) are
//! retried after a transport error only when the connection could not be
//! opened, so the host surely never saw them; a `429` or `503` answer
//! means the host refused them, so they are always retried then.
//!
//! [`Client::health`] is the exception for `503`: it is the answer of a
//! host that is starting or missing a dependency, and comes back as a
//! [`Health`] rather than as an error.
//!
//! # Errors
//!
//! [`Error`] tells apart a bad base URL, a host that cannot be reached, an
//! error answer (with the host's `code` and `message` from its
//! `{"error": {"code", "message"}}` body, and the HTTP status) and an
//! answer that is not what the route documents. [`Error::exit_code`] maps
//! them to the exit status of the `nova` command line (1 for a failure the
//! host reported, 2 for a host that could not be asked).

mod error;
#[cfg(feature = "http")]
mod http;
pub mod json;
#[cfg(feature = "http")]
mod retry;
pub mod types;

pub use error::Error;
#[cfg(feature = "http")]
pub use http::*;
pub use json::RawJson;
#[cfg(feature = "http")]
pub use retry::RetryPolicy;
pub use types::*;
