//! Outbound HTTP through `wasi:http/outgoing-handler` (feature `http`):
//! one request, its response read whole, and the URL handling it needs.
//!
//! The host sends a request only to what the plugin's manifest allows
//! (`grants.allowed_outbound_hosts`), within its `limits.http_*`; the
//! errors here say so in words. Natively, with the `testing` feature,
//! [`send`] asks the handler a test set with [`crate::testing::set_http`].
//!
//! ```no_run
//! use nova_plugin::http::{Request, Url, send};
//!
//! # fn main() -> Result<(), nova_plugin::Error> {
//! let url = Url::parse("https://api.example.com/v1/items")?
//!     .with_query(&[("q".into(), "rust wasm".into())]);
//! let response = send(&Request {
//!     method: "GET",
//!     url: &url,
//!     headers: &[("accept".into(), b"application/json".to_vec())],
//!     body: None,
//!     timeout_ms: Some(5_000),
//! })?;
//! let items: nova_plugin::Value = nova_plugin::serde_json::from_slice(&response.body)
//!     .map_err(|e| nova_plugin::Error::failed(format!("not JSON: {e}")))?;
//! # let _ = items; Ok(()) }
//! ```

use crate::Error;

/// An absolute http(s) URL, split the way `wasi:http` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path_with_query: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, Error> {
        let bad = |why: &str| Error::InvalidInput(format!("URL {url:?}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("not an absolute URL"))?;
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("needs a host (and no user)"));
        }
        if url.chars().any(|c| c.is_control() || c == ' ') {
            return Err(bad("contains spaces or control characters"));
        }
        let tail = tail.split('#').next().unwrap_or("");
        let path_with_query = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Ok(Url {
            https,
            authority: authority.to_owned(),
            path_with_query,
        })
    }

    /// The URL with `query` appended, percent-encoded.
    pub fn with_query(mut self, query: &[(String, String)]) -> Url {
        for (key, value) in query {
            let sep = if self.path_with_query.contains('?') {
                '&'
            } else {
                '?'
            };
            self.path_with_query
                .push_str(&format!("{sep}{}={}", encode(key), encode(value)));
        }
        self
    }

    /// Where a redirect's `Location` points, from this URL.
    pub fn join(&self, location: &str) -> Result<Url, Error> {
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            let scheme = if self.https { "https" } else { "http" };
            return Url::parse(&format!("{scheme}://{rest}"));
        }
        let path = if location.starts_with('/') {
            location.to_owned()
        } else {
            let base = self.path_with_query.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Ok(Url {
            path_with_query: if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            },
            ..self.clone()
        })
    }

    pub fn display(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.authority, self.path_with_query)
    }
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One request.
pub struct Request<'a> {
    /// GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS.
    pub method: &'a str,
    pub url: &'a Url,
    /// Names (any case) and values.
    pub headers: &'a [(String, Vec<u8>)],
    pub body: Option<&'a [u8]>,
    /// Shortens the connect, first-byte and between-bytes timeouts (the
    /// host holds each to the manifest's limit).
    pub timeout_ms: Option<u64>,
}

/// A response, its body read to the end.
pub struct Response {
    pub status: u16,
    /// As received: names as the server wrote them.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// Sends `request` and reads the whole response: the host sends it only
/// where the plugin's manifest allows, within its limits.
#[cfg(target_arch = "wasm32")]
pub fn send(request: &Request<'_>) -> Result<Response, Error> {
    use wasi::http::outgoing_handler;
    use wasi::http::types::{
        ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
    };
    use wasi::io::streams::StreamError;

    let url = request.url;
    let failed = |what: &str, e: ErrorCode| Error::Failed(describe(url, what, &e));
    let fields = Fields::from_list(request.headers)
        .map_err(|e| Error::InvalidInput(format!("headers: {e:?}")))?;
    let outgoing_request = OutgoingRequest::new(fields);
    let method = match request.method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        _ => Method::Options,
    };
    let set = outgoing_request.set_method(&method).is_ok()
        && outgoing_request
            .set_scheme(Some(if url.https {
                &Scheme::Https
            } else {
                &Scheme::Http
            }))
            .is_ok()
        && outgoing_request.set_authority(Some(&url.authority)).is_ok()
        && outgoing_request
            .set_path_with_query(Some(&url.path_with_query))
            .is_ok();
    if !set {
        return Err(Error::InvalidInput(format!(
            "{} is not a URL the host accepts",
            url.display()
        )));
    }
    let options = RequestOptions::new();
    if let Some(ms) = request.timeout_ms {
        let ns = ms.saturating_mul(1_000_000);
        let _ = options.set_connect_timeout(Some(ns));
        let _ = options.set_first_byte_timeout(Some(ns));
        let _ = options.set_between_bytes_timeout(Some(ns));
    }
    let outgoing = outgoing_request
        .body()
        .map_err(|()| Error::Failed("cannot open the request body".into()))?;
    let pending = outgoing_handler::handle(outgoing_request, Some(options))
        .map_err(|e| failed("cannot send", e))?;
    if let Some(bytes) = request.body {
        let stream = outgoing
            .write()
            .map_err(|()| Error::Failed("cannot write the request body".into()))?;
        for chunk in bytes.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| {
                Error::Failed(format!("sending the body to {}: {e:?}", url.display()))
            })?;
        }
        drop(stream);
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| failed("cannot finish the body", e))?;
    let response = loop {
        match pending.get() {
            Some(result) => break result,
            None => pending.subscribe().block(),
        }
    };
    let response = response
        .map_err(|()| Error::Failed("the response was already taken".into()))?
        .map_err(|e| failed("no response", e))?;
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response
        .consume()
        .map_err(|()| Error::Failed("cannot read the response body".into()))?;
    let stream = incoming
        .stream()
        .map_err(|()| Error::Failed("cannot read the response body".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(64 << 10) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                let why = match wasi::http::types::http_error_code(&e) {
                    Some(code) => describe(url, "reading the body", &code),
                    // The host's body errors reach the guest as text only:
                    // its first line, in words.
                    None => body_error(url, &e.to_debug_string()),
                };
                return Err(Error::Failed(why));
            }
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// What answers [`send`] in a native test: the handler a test sets with
/// [`crate::testing::set_http`], kept here so that this module needs
/// nothing of the test host (which names this module's types).
#[cfg(feature = "testing")]
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) mod test_handler {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::{Request, Response};
    use crate::Error;

    /// A test's stand-in for the network.
    pub type Handler = dyn Fn(&Request<'_>) -> Result<Response, Error>;

    thread_local! {
        static HANDLER: RefCell<Option<Rc<Handler>>> = const { RefCell::new(None) };
    }

    /// Sets (or, with `None`, clears) this thread's handler.
    pub fn set(handler: Option<Rc<Handler>>) {
        HANDLER.with(|h| *h.borrow_mut() = handler);
    }

    /// This thread's handler, out of the borrow (it may call the host).
    pub fn get() -> Option<Rc<Handler>> {
        HANDLER.with(|h| h.borrow().clone())
    }
}

/// Natively, with the `testing` feature: the handler a test set with
/// [`crate::testing::set_http`].
#[cfg(all(not(target_arch = "wasm32"), feature = "testing"))]
pub fn send(request: &Request<'_>) -> Result<Response, Error> {
    match test_handler::get() {
        Some(handler) => handler(request),
        None => Err(Error::Failed(format!(
            "{}: no HTTP handler in this test (nova_plugin::testing::set_http)",
            request.url.display()
        ))),
    }
}

/// Natively, without the `testing` feature: there is no network.
#[cfg(all(not(target_arch = "wasm32"), not(feature = "testing")))]
pub fn send(request: &Request<'_>) -> Result<Response, Error> {
    Err(Error::Failed(format!(
        "{}: outbound HTTP exists only in the WebAssembly build (natively, enable the \
         `testing` feature and answer with nova_plugin::testing::set_http)",
        request.url.display()
    )))
}

/// A body error that came as text: the first line (no backtrace), in the
/// words [`describe`] uses for the same codes.
pub fn body_error(url: &Url, text: &str) -> String {
    let first = text.lines().next().unwrap_or("").trim();
    let why = if first.contains("read timeout") || first.contains("response timeout") {
        "timed out waiting for the response".to_owned()
    } else if first.contains("body size exceeds limit") {
        "the response body is over the plugin's limits.http_response_bytes".to_owned()
    } else {
        first.to_owned()
    };
    format!("reading the body {}: {why}", url.display())
}

/// A `wasi:http` error code in words, naming the URL.
#[cfg(target_arch = "wasm32")]
fn describe(url: &Url, what: &str, e: &wasi::http::types::ErrorCode) -> String {
    use wasi::http::types::ErrorCode;
    let why = match e {
        ErrorCode::HttpRequestDenied => {
            "the host refused it: not in this plugin's grants.allowed_outbound_hosts, or it \
             resolves to a loopback, private or metadata address that only an entry naming \
             the host literally may reach"
                .to_string()
        }
        ErrorCode::HttpResponseBodySize(_) => {
            "the response body is over the plugin's limits.http_response_bytes".to_string()
        }
        ErrorCode::ConnectionTimeout | ErrorCode::DnsTimeout => "timed out connecting".to_string(),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            "timed out waiting for the response".to_string()
        }
        ErrorCode::ConnectionLimitReached => {
            "the plugin has its limit of requests in flight (limits.http_concurrency)".to_string()
        }
        ErrorCode::TlsCertificateError => {
            "the server's TLS certificate is not trusted (NOVA_EXTRA_CA_FILE adds a CA)".to_string()
        }
        other => format!("{other:?}"),
    };
    format!("{what} {}: {why}", url.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_join_and_take_a_query() {
        let u = Url::parse("https://api.example.com:8443/v1/items?a=1#frag").unwrap();
        assert_eq!(u.authority, "api.example.com:8443");
        assert_eq!(u.path_with_query, "/v1/items?a=1");
        let q = [
            ("n".to_string(), "3".to_string()),
            ("q".to_string(), "a b&c".to_string()),
        ];
        assert_eq!(
            u.clone().with_query(&q).path_with_query,
            "/v1/items?a=1&n=3&q=a%20b%26c"
        );
        assert_eq!(Url::parse("http://h").unwrap().path_with_query, "/");
        assert_eq!(
            u.join("/other").unwrap().display(),
            "https://api.example.com:8443/other"
        );
        assert_eq!(
            u.join("next").unwrap().display(),
            "https://api.example.com:8443/v1/next"
        );
        assert_eq!(
            u.join("//elsewhere.org/x").unwrap().display(),
            "https://elsewhere.org/x"
        );
        assert_eq!(u.join("http://b.org/").unwrap().display(), "http://b.org/");
    }

    #[test]
    fn body_errors_lose_their_backtrace() {
        let url = Url::parse("http://h/x").unwrap();
        let text = "connection read timeout\nStack backtrace:\n   0: wasmtime::...";
        assert_eq!(
            body_error(&url, text),
            "reading the body http://h/x: timed out waiting for the response"
        );
        assert!(
            body_error(&url, "HTTP response body size exceeds limit: 9 bytes")
                .contains("http_response_bytes")
        );
        assert_eq!(
            body_error(&url, "odd\nmore"),
            "reading the body http://h/x: odd"
        );
    }
}
