//! For nova's shipped plugins that reach the world: secrets through
//! `wasi:config/store` ([`secret`], [`expand`], [`redact`]) and the
//! two-kind [`Error`] those steps report. The request itself, and its
//! URL handling, are the SDK's ([`nova_plugin::http`], re-exported here).
//!
//! The host answers `secret` only for names in `grants.secrets`; the
//! errors here say so in words.

pub use nova_plugin::http::{Request, Response, Url, body_error};

/// What went wrong, in the terms the step reports.
#[derive(Debug, PartialEq)]
pub enum Error {
    /// The config or input is wrong: fix the workflow.
    InvalidInput(String),
    /// The request was made and failed, or the server said no.
    Failed(String),
}

impl From<nova_plugin::Error> for Error {
    fn from(e: nova_plugin::Error) -> Self {
        match e {
            nova_plugin::Error::Failed(m) => Error::Failed(m),
            nova_plugin::Error::InvalidInput(m) | nova_plugin::Error::Unsupported(m) => {
                Error::InvalidInput(m)
            }
        }
    }
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

/// Sends `request` and reads the whole response ([`nova_plugin::http::send`]).
pub fn send(request: &Request<'_>) -> Result<Response, Error> {
    nova_plugin::http::send(request).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

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
