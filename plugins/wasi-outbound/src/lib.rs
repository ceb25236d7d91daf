//! For nova's plugins that reach the world: one HTTP request through
//! `wasi:http/outgoing-handler` ([`send`]), secrets through
//! `wasi:config/store` ([`secret`], [`expand`], [`redact`]), and the
//! URL handling both need ([`Url`]).
//!
//! The host sends a request only to what the plugin's manifest allows
//! (`grants.allowed_outbound_hosts`) and answers `secret` only for names in
//! `grants.secrets`; the errors here say so in words.

/// What went wrong, in the terms the step reports.
#[derive(Debug, PartialEq)]
pub enum Error {
    /// The config or input is wrong: fix the workflow.
    InvalidInput(String),
    /// The request was made and failed, or the server said no.
    Failed(String),
}

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

/// Replaces each `${secret:NAME}` in `text` with `lookup(NAME)`,
/// remembering what it revealed so it can be redacted later.
pub fn expand(
    text: &str,
    lookup: &mut dyn FnMut(&str) -> Result<String, Error>,
    revealed: &mut Vec<(String, String)>,
) -> Result<String, Error> {
    const OPEN: &str = "${secret:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let end = after.find('}').ok_or_else(|| {
            Error::InvalidInput("an unclosed ${secret:…} in config (write ${secret:NAME})".into())
        })?;
        let name = &after[..end];
        let value = lookup(name)?;
        if !revealed.iter().any(|(n, _)| n == name) {
            revealed.push((name.to_owned(), value.clone()));
        }
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `text` with every revealed secret's value written back as
/// `${secret:NAME}` (values shorter than 4 bytes are left: they would
/// mangle ordinary text and hide nothing).
pub fn redact(text: &str, revealed: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in revealed {
        if value.len() >= 4 {
            out = out.replace(value.as_str(), &format!("${{secret:{name}}}"));
        }
    }
    out
}

/// Runs `step` with a list for the secrets it reveals, then writes each one
/// back as `${secret:NAME}` in its output and errors: what a step returns
/// never holds a secret's value.
pub fn redacting(
    step: impl FnOnce(&mut Vec<(String, String)>) -> Result<String, Error>,
) -> Result<String, Error> {
    let mut revealed = Vec::new();
    match step(&mut revealed) {
        Ok(out) => Ok(redact(&out, &revealed)),
        Err(Error::InvalidInput(m)) => Err(Error::InvalidInput(redact(&m, &revealed))),
        Err(Error::Failed(m)) => Err(Error::Failed(redact(&m, &revealed))),
    }
}

/// The value of secret `name`, from `wasi:config`.
pub fn secret(name: &str) -> Result<String, Error> {
    match nova_plugin::config::get(name) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(Error::InvalidInput(format!(
            "secret {name:?} is not set, or this plugin's manifest does not list it in \
             grants.secrets"
        ))),
        Err(e) => Err(Error::Failed(format!("cannot read secret {name:?}: {e}"))),
    }
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

/// Sends `request` and reads the whole response.
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

/// Outbound HTTP exists only in the WebAssembly build.
#[cfg(not(target_arch = "wasm32"))]
pub fn send(request: &Request<'_>) -> Result<Response, Error> {
    Err(Error::Failed(format!(
        "{}: outbound HTTP exists only in the WebAssembly build",
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

    #[test]
    fn redacting_writes_revealed_secrets_back_as_names() {
        let out = redacting(|revealed| {
            revealed.push(("k".to_string(), "s3cr3t".to_string()));
            Ok("echo s3cr3t".to_string())
        });
        assert_eq!(out, Ok("echo ${secret:k}".to_string()));
        let err = redacting(|revealed| {
            revealed.push(("k".to_string(), "s3cr3t".to_string()));
            Err(Error::Failed("server said s3cr3t".to_string()))
        });
        assert_eq!(
            err,
            Err(Error::Failed("server said ${secret:k}".to_string()))
        );
    }

    #[test]
    fn secrets_expand_and_are_redacted() {
        let mut revealed = Vec::new();
        let mut lookup = |name: &str| match name {
            "k" => Ok("s3cr3t".to_string()),
            other => Err(Error::InvalidInput(format!("no secret {other}"))),
        };
        let text = expand(
            "Bearer ${secret:k} and ${secret:k}",
            &mut lookup,
            &mut revealed,
        )
        .unwrap();
        assert_eq!(text, "Bearer s3cr3t and s3cr3t");
        assert_eq!(revealed, vec![("k".to_string(), "s3cr3t".to_string())]);
        assert_eq!(redact("echo: s3cr3t!", &revealed), "echo: ${secret:k}!");
        assert!(matches!(
            expand("${secret:other}", &mut lookup, &mut revealed),
            Err(Error::InvalidInput(m)) if m.contains("other")
        ));
        assert!(expand("${secret:k", &mut lookup, &mut revealed).is_err());
        assert_eq!(
            expand("no secrets", &mut lookup, &mut revealed).unwrap(),
            "no secrets"
        );
    }
}
