//! Authentication and scopes on the HTTP API.
//!
//! [`authenticate`] runs before every route but `GET /health`: it turns
//! the `Authorization: Bearer …` header into a [`Principal`] (the admin
//! token, or an API key) or answers 401. Each handler then names the scope
//! it needs with a [`Need`] extractor, which answers 403 when the caller
//! lacks it; the handler's OpenAPI `security` names the same scope, and a
//! test holds the two together.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::auth::{ApiKeys, IpNet, Principal, Scope, constant_time_eq};

/// How the API authenticates callers.
#[derive(Clone)]
pub struct Auth {
    pub admin_token: Arc<str>,
    pub keys: ApiKeys,
    /// False only with `NOVA_AUTH=off` on a host bound to loopback: every
    /// caller then holds every scope.
    pub enabled: bool,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[IpNet]>,
}

/// The caller's address: the peer's, or where a trusted proxy says the
/// request came from. Set on every request by [`authenticate`] (and for
/// `/health`, by nobody: it needs none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The middleware: layer it over every route that needs a credential.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let auth = &state.auth;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let ip = client_ip(peer, request.headers(), &auth.trusted_proxies);
        request.extensions_mut().insert(ClientIp(ip));
    }
    let principal = if auth.enabled {
        let Some(token) = bearer(request.headers()) else {
            return Err(ApiError::unauthorized(
                "missing credentials: send Authorization: Bearer <API key or admin token>",
            ));
        };
        if constant_time_eq(token.as_bytes(), auth.admin_token.as_bytes()) {
            Principal::admin()
        } else {
            match auth.keys.authenticate(token).await {
                Ok(Some(principal)) => principal,
                Ok(None) => return Err(ApiError::unauthorized("invalid API key or admin token")),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look up an API key");
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "auth_unavailable",
                        "the store that holds the API keys is unreachable; retry",
                    ));
                }
            }
        }
    } else {
        // No credential stands between a browser and the host now: only
        // requests that are plainly local and not from a web page's
        // cross-site request or a rebound DNS name get through.
        local_request(request.headers())?;
        Principal::anonymous()
    };
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// With authentication off: refuses a request whose `Host` is not a
/// loopback name or address (a DNS name rebound to 127.0.0.1), and one a
/// browser sent from another origin (`Origin` other than the host itself,
/// or `Sec-Fetch-Site: cross-site`).
fn local_request(headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_local",
            format!("authentication is off, so only local requests are served: {why}"),
        ))
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !is_loopback_authority(host) {
        return refuse(&format!("Host {host:?} is not a loopback name or address"));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or_default();
        if !authority.eq_ignore_ascii_case(host) {
            return refuse(&format!("a page of origin {origin:?} sent it"));
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return refuse("a page of another site sent it");
    }
    Ok(())
}

/// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
fn is_loopback_authority(authority: &str) -> bool {
    let name = match authority.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or("", |(ip, _)| ip),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The bearer token of `Authorization`, if any. The scheme is
/// case-insensitive (RFC 9110, section 11.1).
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// A scope, as a type, for [`Need`].
pub trait ScopeName: Send + Sync + 'static {
    const SCOPE: Scope;
}

/// The scopes as types: `Need<scope::RunsWrite>`.
pub mod scope {
    use super::{Scope, ScopeName};

    macro_rules! scopes {
        ($($name:ident),*) => {$(
            pub struct $name;
            impl ScopeName for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }
    scopes!(
        RunsWrite,
        RunsRead,
        RagQuery,
        RagWrite,
        PluginsInvoke,
        MetricsRead,
        SandboxRun,
        Admin
    );
}

/// An authenticated caller that holds scope `S`; 403 otherwise. Put it
/// first among a handler's arguments, so it is checked before anything
/// else is read.
pub struct Need<S>(pub Principal, PhantomData<S>);

impl<S: ScopeName, St: Send + Sync> FromRequestParts<St> for Need<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiError> {
        let principal = principal(parts)?;
        if !principal.scopes.allow(S::SCOPE) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this credential ({}) lacks the scope {}",
                    principal.name,
                    S::SCOPE
                ),
            ));
        }
        Ok(Need(principal, PhantomData))
    }
}

/// Any authenticated caller, whatever its scopes.
pub struct Authenticated(pub Principal);

impl<St: Send + Sync> FromRequestParts<St> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, ApiError> {
        principal(parts).map(Authenticated)
    }
}

/// Fails closed: a route served without [`authenticate`] in front of it
/// has no principal, and answers 401.
fn principal(parts: &Parts) -> Result<Principal, ApiError> {
    parts
        .extensions
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("missing credentials"))
}

/// The client's address: the peer's, unless the peer is a trusted proxy;
/// then the `X-Forwarded-For` entries are read from the right (the
/// nearest hop), skipping trusted proxies, and the first other address is
/// the client. Entries a client wrote itself sit to the left of those its
/// proxies appended, so it cannot choose what is read.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let trusts = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !trusts(peer) {
        return peer;
    }
    let mut client = peer;
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else {
            return client;
        };
        for hop in value.rsplit(',') {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                return client;
            };
            client = ip;
            if !trusts(ip) {
                return client;
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_authorities() {
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:9",
            "127.1.2.3",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(super::is_loopback_authority(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:80",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            assert!(!super::is_loopback_authority(bad), "{bad}");
        }
    }

    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.2".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "5.5.5.5".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        // From a stranger, the header is the stranger's word: ignored.
        assert_eq!(client_ip(stranger, &headers, &trusted), stranger);
        // From the proxy: the nearest untrusted hop, not what the client
        // wrote at the left.
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        // No proxies trusted: the peer.
        assert_eq!(client_ip(proxy, &headers, &[]), proxy);
        // Garbage stops the walk at the last good address.
        headers.insert("x-forwarded-for", "junk, 10.0.0.3".parse().unwrap());
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "10.0.0.3".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
