//! nova's `http-request` step: one HTTP request (and the redirects it is
//! told to follow) through `wasi:http/outgoing-handler`.
//!
//! The host sends it only to what the plugin's manifest allows
//! (`grants.allowed_outbound_hosts`), and checks every redirect hop the
//! same way. The config, URL handling and output live in [`request`],
//! unit-tested natively; its module docs give the config.

pub mod request;

use nova_plugin::RawStep;
use request::{Error, Url};
use wasi_outbound::{expand, redact, redacting, secret, send};

// Natively (unit tests) the export is compiled out.
struct HttpRequest;

impl RawStep for HttpRequest {
    const DESCRIPTION: &'static str = "Sends an HTTP request (config.method, url, query, headers, \
                                       body) to a host the manifest allows; returns {\"status\", \
                                       \"headers\", \"body\"}.";

    fn run(input: &str, config: &str) -> Result<String, nova_plugin::Error> {
        let output = run(input, config).map_err(|e| match e {
            Error::InvalidInput(m) => nova_plugin::Error::InvalidInput(m),
            Error::Failed(m) => nova_plugin::Error::Failed(m),
        })?;
        Ok(output)
    }
}

/// Runs the step; every secret it revealed is written back as
/// `${secret:NAME}` in what it returns.
fn run(input: &str, config: &str) -> Result<String, Error> {
    redacting(|revealed| run_revealing(input, config, revealed))
}

/// `value` with `${secret:NAME}` expanded in every string.
fn expand_json(
    value: &serde_json::Value,
    revealed: &mut Vec<(String, String)>,
) -> Result<serde_json::Value, Error> {
    use serde_json::Value;
    Ok(match value {
        Value::String(s) => Value::String(expand(s, &mut secret, revealed)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| expand_json(v, revealed))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), expand_json(v, revealed)?)))
                .collect::<Result<_, Error>>()?,
        ),
        other => other.clone(),
    })
}

fn run_revealing(
    input: &str,
    config: &str,
    revealed: &mut Vec<(String, String)>,
) -> Result<String, Error> {
    let mut config = request::parse_config(config)?;
    let expanded_url = expand(&config.url, &mut secret, revealed)?;
    for value in config.headers.values_mut() {
        *value = expand(value, &mut secret, revealed)?;
    }
    if let Some(body) = &config.body {
        config.body = Some(expand_json(body, revealed)?);
    }
    let query: Vec<(String, String)> = config
        .query
        .iter()
        .map(|(k, v)| (k.clone(), v.text()))
        .collect();
    let mut url = Url::parse(&expanded_url)?.with_query(&query);
    let mut method = config.method.clone();
    let mut body = request::body_of(&config, input)?;
    let mut headers: Vec<(String, Vec<u8>)> = config
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone().into_bytes()))
        .collect();
    if let Some((_, Some(content_type))) = &body
        && !headers.iter().any(|(k, _)| k == "content-type")
    {
        headers.push(("content-type".into(), content_type.as_bytes().to_vec()));
    }
    let mut hops = 0;
    loop {
        let response = send(&wasi_outbound::Request {
            method: &method,
            url: &url,
            headers: &headers,
            body: body.as_ref().map(|(bytes, _)| bytes.as_slice()),
            timeout_ms: config.timeout_ms,
        })?;
        let next = request::redirect_method(response.status, &method);
        let location = response
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("location"))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        match (next, location) {
            (Some(next), Some(location)) if hops < config.follow_redirects => {
                hops += 1;
                let to = url.join(&location)?;
                let line = format!(
                    "{} redirects ({}) to {}",
                    url.display(),
                    response.status,
                    to.display()
                );
                nova_plugin::info!("{}", redact(&line, revealed));
                if next != method {
                    body = None;
                    headers.retain(|(k, _)| k != "content-type");
                }
                method = next;
                url = to;
            }
            _ => {
                return request::output(
                    &config,
                    &url,
                    response.status,
                    response.headers,
                    response.body,
                );
            }
        }
    }
}

nova_plugin::export_raw_step!(HttpRequest);

/// The whole step natively: secrets from the test host's wasi:config, the
/// request answered by a test handler, redirects followed.
#[cfg(test)]
mod tests {
    use super::*;
    use nova_plugin::http::Response;
    use nova_plugin::testing;
    use std::cell::RefCell;
    use std::rc::Rc;

    #[test]
    fn sends_with_secrets_follows_a_redirect_and_redacts() {
        testing::reset();
        testing::set_config("api_key", "k-123456");
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = seen.clone();
        testing::set_http(move |request| {
            let auth = request
                .headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
            log.borrow_mut()
                .push((request.method.to_owned(), request.url.display(), auth));
            Ok(match request.url.path_with_query.as_str() {
                "/old?q=a%20b" => Response {
                    status: 301,
                    headers: vec![("Location".into(), b"/new".to_vec())],
                    body: Vec::new(),
                },
                _ => Response {
                    status: 200,
                    headers: vec![("content-type".into(), b"application/json".to_vec())],
                    body: br#"{"echo": "k-123456"}"#.to_vec(),
                },
            })
        });
        let config = r#"{"url": "https://api.example.com/old", "query": {"q": "a b"},
            "headers": {"Authorization": "Bearer ${secret:api_key}"}}"#;
        let out = testing::run_raw::<HttpRequest>("null", config).expect("runs");
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(out["status"], 200, "{out}");
        // What the server echoed holds the secret; the output does not.
        assert_eq!(out["body"]["echo"], "${secret:api_key}", "{out}");
        let seen = seen.borrow();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].1, "https://api.example.com/old?q=a%20b");
        assert_eq!(seen[0].2.as_deref(), Some("Bearer k-123456"));
        assert_eq!(seen[1].1, "https://api.example.com/new");
        assert!(
            testing::logs().iter().any(|l| l
                .message
                .contains("redirects (301) to https://api.example.com/new")),
            "{:?}",
            testing::logs()
        );
    }

    #[test]
    fn a_refused_host_and_a_missing_secret_are_reported() {
        testing::reset();
        testing::set_http(|_| Err(nova_plugin::Error::failed("the host refused it")));
        let e =
            testing::run_raw::<HttpRequest>("null", r#"{"url": "http://10.0.0.1/"}"#).unwrap_err();
        assert_eq!(e, nova_plugin::Error::failed("the host refused it"));
        let config = r#"{"url": "http://h/", "headers": {"x": "${secret:nope}"}}"#;
        let e = testing::run_raw::<HttpRequest>("null", config).unwrap_err();
        assert!(
            matches!(&e, nova_plugin::Error::InvalidInput(m) if m.contains("\"nope\"")),
            "{e}"
        );
    }
}
