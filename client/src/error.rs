//! What can go wrong with a call, and how a command line maps it to an
//! exit status.

use std::time::Duration;

/// Why a call did not return an answer.
///
/// The four kinds tell apart a problem on the caller's side ([`BadUrl`],
/// [`Encode`]), a host that could not be talked to ([`Unreachable`]), a
/// host that refused or failed the request ([`Api`]), and a host whose
/// success answer is not what the route documents ([`BadAnswer`]).
///
/// [`BadUrl`]: Error::BadUrl
/// [`Encode`]: Error::Encode
/// [`Unreachable`]: Error::Unreachable
/// [`Api`]: Error::Api
/// [`BadAnswer`]: Error::BadAnswer
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL cannot be used (not a URL, or not `http`/`https`).
    #[error("invalid URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// No answer: connection refused or reset, timed out, name not
    /// resolved. `attempts` counts the tries made, retries included.
    #[error("cannot reach nova at {url}: {reason}")]
    Unreachable {
        url: String,
        reason: String,
        attempts: u32,
    },
    /// The host answered with an error status and, normally, its
    /// `{"error": {"code", "message"}}` body. An answer without that body
    /// (a proxy's error page, say) gets the code `http_STATUS` and its text
    /// as the message.
    #[error("{code}: {message} (HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
        /// The `Retry-After` the host sent, in whole seconds.
        retry_after: Option<Duration>,
        attempts: u32,
    },
    /// A success status whose body is not the JSON the route answers.
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer { url: String, reason: String },
    /// The request body could not be encoded as JSON.
    #[error("cannot encode the request: {0}")]
    Encode(String),
}

impl Error {
    /// The exit status a command line should end with: 1 when the host
    /// reported a failure (or answered nonsense), 2 when it could not be
    /// asked at all (bad URL, unreachable, a request that cannot be built).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Api { .. } | Error::BadAnswer { .. } => 1,
            Error::BadUrl { .. } | Error::Unreachable { .. } | Error::Encode(_) => 2,
        }
    }

    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The host's error code (`run_not_found`, `rate_limited`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Requests sent before giving up, retries included, for the errors
    /// that come out of the retry loop.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Error::Unreachable { attempts, .. } | Error::Api { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }
}
