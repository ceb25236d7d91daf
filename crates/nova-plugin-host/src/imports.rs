//! What a component imports, checked before it is compiled: a component
//! that needs an interface this host does not serve is refused at once,
//! naming what is missing and what the host serves, rather than after a
//! compile that can take tens of seconds for an interpreter's component.
//!
//! Only what is surely not served is refused here; anything else is left
//! to the linker, which has the last word.

use wasmparser::{Parser, Payload};

/// What this host serves, by package: the interfaces (none: any of the
/// package) and the version rule.
const SERVED: &[(&str, Option<&[&str]>, Version)] = &[
    (
        "nova:plugin",
        Some(&["types", "log", "kv", "store", "knowledge"]),
        Version::Minor("0.1."),
    ),
    ("wasi:cli", None, Version::Minor("0.2.")),
    ("wasi:io", None, Version::Minor("0.2.")),
    ("wasi:clocks", None, Version::Minor("0.2.")),
    ("wasi:random", None, Version::Minor("0.2.")),
    ("wasi:filesystem", None, Version::Minor("0.2.")),
    ("wasi:sockets", None, Version::Minor("0.2.")),
    (
        "wasi:http",
        Some(&["types", "outgoing-handler"]),
        Version::Minor("0.2."),
    ),
    (
        "wasi:config",
        Some(&["store"]),
        Version::Exact("0.2.0-rc.1"),
    ),
    (
        "wasi:keyvalue",
        Some(&["store", "atomics", "batch"]),
        Version::Exact("0.2.0-draft"),
    ),
];

#[derive(Clone, Copy)]
enum Version {
    /// Any version starting so (a semver-compatible patch).
    Minor(&'static str),
    Exact(&'static str),
}

/// The served interfaces in words, for an error message.
pub fn served() -> String {
    SERVED
        .iter()
        .map(|(package, interfaces, version)| {
            let version = match version {
                Version::Minor(v) => format!("{v}x"),
                Version::Exact(v) => (*v).to_owned(),
            };
            match interfaces {
                Some(list) => format!("{package}/{{{}}}@{version}", list.join(",")),
                None => format!("{package}@{version}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the host serves the import `name` (`ns:pkg/iface@version`).
fn is_served(name: &str) -> bool {
    let Some((path, version)) = name.split_once('@') else {
        return false;
    };
    let Some((package, interface)) = path.split_once('/') else {
        return false;
    };
    SERVED.iter().any(|(p, interfaces, rule)| {
        *p == package
            && interfaces.is_none_or(|list| list.contains(&interface))
            && match rule {
                Version::Minor(prefix) => version.starts_with(prefix),
                Version::Exact(v) => version == *v,
            }
    })
}

/// The top-level imports of `bytes` that this host surely does not serve.
/// A component the parser cannot read yields none: the compiler then says
/// what is wrong with it.
pub fn unserved(bytes: &[u8]) -> Vec<String> {
    let mut missing = Vec::new();
    // Nested modules and components import from their parent, not the host.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else {
            return Vec::new();
        };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let Ok(import) = import else {
                        return Vec::new();
                    };
                    // An import that names the interface it implements is
                    // checked by that interface.
                    let name = import
                        .name
                        .full_implements()
                        .unwrap_or_else(|| import.name.full_name())
                        .into_owned();
                    if !is_served(&name) && !missing.contains(&name) {
                        missing.push(name);
                    }
                }
            }
            _ => {}
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_imports_pass_and_others_are_named() {
        for ok in [
            "nova:plugin/log@0.1.1",
            "wasi:io/streams@0.2.12",
            "wasi:http/types@0.2.10",
            "wasi:cli/environment@0.2.0",
            "wasi:config/store@0.2.0-rc.1",
            "wasi:keyvalue/atomics@0.2.0-draft",
        ] {
            assert!(is_served(ok), "{ok}");
        }
        for no in [
            "nova:plugin/log@0.2.0",
            "nova:plugin/secrets@0.1.0",
            "wasi:http/incoming-handler@0.2.0",
            "wasi:io/streams@0.3.0",
            "wasi:config/store@0.2.0-draft-2024-09-27",
            "fermyon:spin/variables@2.0.0",
            "unversioned",
        ] {
            assert!(!is_served(no), "{no}");
        }
        assert!(served().contains("wasi:keyvalue/{store,atomics,batch}@0.2.0-draft"));
    }
}
