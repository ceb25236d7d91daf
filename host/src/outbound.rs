//! Plugins' outbound HTTP, sent: the plugin host's [`OutboundHttp`]
//! capability over tokio, hyper and rustls.
//!
//! The plugin host has already checked the URL against the manifest; here
//! the name is resolved by the host, every address it resolves to is
//! checked ([`forbidden_address`]) and only a permitted one is connected
//! to, so a name that resolves inside (DNS rebinding, a metadata address)
//! reaches nothing unless the manifest named it literally. TLS uses the
//! platform's roots plus `NOVA_EXTRA_CA_FILE`. Logs name the plugin,
//! method, host and reason, never headers or bodies.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use nova_plugin_host::capability::{OutboundHttp, OutboundRequest, Refusal};
use nova_plugin_host::outbound::{HttpLimits, forbidden_address};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, WasiBody};

/// Why the outbound client cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("cannot read NOVA_EXTRA_CA_FILE {path}: {message}")]
    ExtraCa { path: String, message: String },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// Sends plugins' requests. One per process; cheap to share.
pub struct Outbound {
    tls: tokio_rustls::TlsConnector,
}

impl Outbound {
    /// The platform's trusted roots, and the PEM certificates in
    /// `extra_ca_file` (a private CA, or a test's).
    pub fn new(extra_ca_file: Option<&Path>) -> Result<Self, OutboundError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if let Some(path) = extra_ca_file {
            let ca_error = |message: String| OutboundError::ExtraCa {
                path: path.display().to_string(),
                message,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_error(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ca_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_error("no PEM certificate in it".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
            }
        }
        if roots.is_empty() {
            tracing::warn!("no trusted TLS roots: plugins' https requests will fail");
        }
        tracing::debug!(platform_roots = added, "outbound TLS roots loaded");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| OutboundError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Outbound {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A request's facts for logs and metrics.
struct Sending {
    plugin: Arc<str>,
    method: http::Method,
    host: String,
    label: Arc<str>,
}

impl Sending {
    fn refuse(&self, reason: &str) -> Error {
        tracing::warn!(
            plugin = %self.plugin, method = %self.method, host = %self.host, reason,
            "outbound request refused"
        );
        crate::metrics::outbound_request(&self.plugin, &self.label, "refused", None);
        Error::HttpRequestDenied
    }

    fn fail(&self, status: &str, error: Error) -> Error {
        tracing::info!(
            plugin = %self.plugin, method = %self.method, host = %self.host, %error,
            "outbound request failed"
        );
        crate::metrics::outbound_request(&self.plugin, &self.label, status, None);
        error
    }
}

#[async_trait]
impl OutboundHttp for Outbound {
    async fn send(&self, request: OutboundRequest) -> Result<http::Response<WasiBody>, Error> {
        let OutboundRequest {
            plugin,
            request: mut req,
            options,
            permit,
        } = request;
        let started = Instant::now();
        let uri = req.uri().clone();
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or(Error::HttpRequestUriInvalid)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let sending = Sending {
            plugin,
            method: req.method().clone(),
            host: host.clone(),
            label: permit.label.clone(),
        };
        // The plugin host sets all three (clamped by the plugin's limits);
        // a lender called otherwise falls back to the plugin defaults.
        let defaults = HttpLimits::default();
        let connect_timeout = options.connect_timeout.unwrap_or(defaults.connect_timeout);
        let first_byte_timeout = options
            .first_byte_timeout
            .unwrap_or(defaults.first_byte_timeout);
        let between_bytes = options
            .between_bytes_timeout
            .unwrap_or(defaults.between_bytes_timeout)
            .max(Duration::from_millis(1));
        let deadline = tokio::time::Instant::now() + connect_timeout;

        // Resolve, and keep only the addresses this request may reach.
        let resolved =
            match tokio::time::timeout_at(deadline, tokio::net::lookup_host((host.as_str(), port)))
                .await
            {
                Err(_) => return Err(sending.fail("timeout", Error::DnsTimeout)),
                Ok(Err(e)) => {
                    let error = Error::DnsError {
                        rcode: Some(e.to_string()),
                        info_code: None,
                    };
                    return Err(sending.fail("error", error));
                }
                Ok(Ok(addrs)) => addrs.collect::<Vec<SocketAddr>>(),
            };
        let mut refused = None;
        let addrs: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|a| match forbidden_address(a.ip()) {
                Some(class) if !permit.private_ok => {
                    refused = Some(class);
                    false
                }
                _ => true,
            })
            .collect();
        if addrs.is_empty() {
            return Err(match refused {
                Some(class) => sending.refuse(&format!(
                    "resolves to {class}, which only an allowed_outbound_hosts entry naming \
                     the host literally may reach"
                )),
                None => sending.fail("error", Error::DestinationNotFound),
            });
        }

        // Connect to the first permitted address that answers.
        let stream = match tokio::time::timeout_at(deadline, connect_any(&addrs)).await {
            Err(_) => return Err(sending.fail("timeout", Error::ConnectionTimeout)),
            Ok(Err(e)) => {
                let error = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
                    _ => Error::Connect(e),
                };
                return Err(sending.fail("error", error));
            }
            Ok(Ok(stream)) => stream,
        };
        let _ = stream.set_nodelay(true);
        let io: Box<dyn Io> = if https {
            let name = ServerName::try_from(host.clone())
                .map_err(|_| sending.fail("error", Error::HttpRequestUriInvalid))?;
            match tokio::time::timeout_at(deadline, self.tls.connect(name, stream)).await {
                Err(_) => return Err(sending.fail("timeout", Error::ConnectionTimeout)),
                Ok(Err(e)) => return Err(sending.fail("error", tls_error(e))),
                Ok(Ok(tls)) => Box::new(tls),
            }
        } else {
            Box::new(stream)
        };
        let handshake = hyper::client::conn::http1::handshake(TokioIo::new(io));
        let (mut sender, conn) = match tokio::time::timeout_at(deadline, handshake).await {
            Err(_) => return Err(sending.fail("timeout", Error::ConnectionTimeout)),
            Ok(Err(e)) => return Err(sending.fail("error", Error::from(e))),
            Ok(Ok(parts)) => parts,
        };
        // The connection runs until the response body ends or is dropped.
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "outbound connection ended");
            }
        });

        // Origin form on the wire: the authority travels in `Host`.
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        *req.uri_mut() = match http::Uri::builder().path_and_query(path).build() {
            Ok(uri) => uri,
            Err(_) => return Err(sending.fail("error", Error::HttpRequestUriInvalid)),
        };
        let response =
            match tokio::time::timeout(first_byte_timeout, sender.send_request(req)).await {
                Err(_) => return Err(sending.fail("timeout", Error::ConnectionReadTimeout)),
                Ok(Err(e)) => return Err(sending.fail("error", Error::from(e))),
                Ok(Ok(response)) => response,
            };
        let took = started.elapsed();
        crate::metrics::outbound_request(
            &sending.plugin,
            &sending.label,
            response.status().as_str(),
            Some(took),
        );
        tracing::debug!(
            plugin = %sending.plugin, method = %sending.method, host = %sending.host,
            status = response.status().as_u16(), took_ms = took.as_millis() as u64,
            "outbound request"
        );
        Ok(response.map(|incoming| {
            Timed {
                body: incoming,
                wait: between_bytes,
                timer: Box::pin(tokio::time::sleep(between_bytes)),
                bytes: 0,
                plugin: sending.plugin,
                label: sending.label,
            }
            .boxed_unsync()
        }))
    }

    fn refused(&self, plugin: &str, _host: &str, refusal: Refusal) {
        // The host a plugin was refused is its own choice: not a label.
        let status = match refusal {
            Refusal::NotAllowed => "refused",
            Refusal::Busy => "busy",
        };
        crate::metrics::outbound_request(plugin, "(not allowed)", status, None);
    }
}

async fn connect_any(addrs: &[SocketAddr]) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no address to connect to")))
}

fn tls_error(e: std::io::Error) -> Error {
    let certificate = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
    if certificate {
        Error::TlsCertificateError
    } else {
        Error::Tls(e)
    }
}

/// A response body that fails when the server stalls longer than `wait`
/// between two pieces, and counts the bytes it delivered.
struct Timed {
    body: hyper::body::Incoming,
    wait: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    bytes: u64,
    plugin: Arc<str>,
    label: Arc<str>,
}

impl Body for Timed {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
                let next = tokio::time::Instant::now() + self.wait;
                self.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        if self.bytes > 0 {
            crate::metrics::outbound_bytes(&self.plugin, &self.label, self.bytes);
        }
    }
}
