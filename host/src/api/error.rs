//! API errors: every failure is answered as
//! `{"error": {"code": "...", "message": "..."}}` with a fitting status.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::plugins::{CallError, LoadError, RegistryError};

pub use nova_client::types::{ErrorBody, ErrorDetail};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        });
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // Worth retrying, except for a feature turned off.
        if self.status == StatusCode::SERVICE_UNAVAILABLE && self.code != "knowledge_disabled" {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The code for a status, for errors raised outside our handlers (an
/// unmatched method, a malformed path) that the JSON safety net rewraps.
pub fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::REQUEST_TIMEOUT => "body_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::GATEWAY_TIMEOUT => "timeout",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

impl ApiError {
    /// `503 store_unavailable`: the store could not be reached or failed.
    pub fn store_unavailable(e: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        )
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        // A body that did not arrive in time (see `body::reserve`).
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
        while let Some(error) = cause {
            if let Some(timeout) = error.downcast_ref::<BodyTimeout>() {
                return ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    timeout.to_string(),
                );
            }
            cause = error.source();
        }
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_body"
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

/// A body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s (http.body_timeout_ms)", .0.as_secs_f64())]
pub struct BodyTimeout(pub std::time::Duration);

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        // The plugin answering with an error is a client-visible outcome
        // (422); the sandbox stopping it is the plugin's fault, surfaced as
        // an upstream failure (502, or 504 for a timeout).
        let status = match &e {
            e if e.is_reported_by_plugin() => StatusCode::UNPROCESSABLE_ENTITY,
            CallError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            e if e.is_busy() => StatusCode::SERVICE_UNAVAILABLE,
            CallError::Setup(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<crate::invoke::InvokeError> for ApiError {
    fn from(e: crate::invoke::InvokeError) -> Self {
        match e {
            crate::invoke::InvokeError::BadInput { code, message } => {
                ApiError::bad_request(code, message)
            }
            crate::invoke::InvokeError::Call(e) => e.into(),
        }
    }
}

impl From<crate::code::RunError> for ApiError {
    fn from(e: crate::code::RunError) -> Self {
        use crate::code::RunError;
        match e {
            RunError::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "language_unavailable",
                e.to_string(),
            ),
            RunError::Invalid(message) => ApiError::bad_request("invalid_request", message),
            RunError::Call(e) => e.into(),
        }
    }
}

impl From<LoadError> for ApiError {
    fn from(e: LoadError) -> Self {
        // Validation could not run for lack of a free instance: the upload
        // is not at fault, and may be retried.
        if let LoadError::Describe(call) = &e
            && call.is_busy()
        {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin_busy",
                e.to_string(),
            );
        }
        let code = match &e {
            LoadError::BadName(_) => "invalid_plugin_name",
            LoadError::Manifest(_) => "invalid_manifest",
            LoadError::UnknownWorld { .. } => "unknown_world",
            LoadError::UnsupportedVersion { .. } => "unsupported_contract_version",
            LoadError::Describe(_) => "plugin_describe_failed",
            LoadError::ConfigSchema(_) => "invalid_config_schema",
            _ => "invalid_plugin",
        };
        ApiError::bad_request(code, e.to_string())
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NotFound(name) => {
                ApiError::not_found("plugin_not_found", format!("no plugin named {name:?}"))
            }
            RegistryError::Load(e) => e.into(),
            RegistryError::Io(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "io", m),
            e @ RegistryError::Fleet { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "fleet_unavailable",
                e.to_string(),
            ),
        }
    }
}
