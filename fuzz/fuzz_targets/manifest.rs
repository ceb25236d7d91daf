//! A plugin's manifest (NAME.toml): parsed and checked against the host's
//! rules, it either loads within them or is refused with a reason.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nova::plugins::RuntimeConfig;
use nova::plugins::manifest::{Manifest, Protected, Rules};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A network grant resolves its host name (DNS): not from a fuzzer.
    if text.contains("network") {
        return;
    }
    let config = RuntimeConfig::default();
    let protected = Protected {
        disjoint: vec!["/srv/nova/knowledge".into()],
        enclosed: vec!["/srv/nova/plugins".into()],
    };
    let rules = Rules::of(&config, protected);
    match Manifest::parse(text, Path::new("/srv/nova/plugins"), &rules) {
        Ok(manifest) => {
            // What loads is within the host's ceilings.
            let limits = manifest.limits;
            assert!(limits.memory_bytes <= config.max_memory_bytes);
            assert!(limits.max_output_bytes <= config.max_output_bytes);
            assert!(limits.store.items <= config.max_store.items);
            assert!(limits.store.bytes <= config.max_store.bytes);
            assert!(limits.kv.items <= config.max_kv.items);
            assert!(limits.kv.bytes <= config.max_kv.bytes);
            assert!(!limits.timeout.is_zero());
            // Outbound HTTP limits: at least 1, at most the host's.
            let (http, max) = (limits.http, config.max_http);
            assert!((1..=max.response_bytes).contains(&http.response_bytes));
            assert!((1..=max.concurrency).contains(&http.concurrency));
            for (t, m) in [
                (http.connect_timeout, max.connect_timeout),
                (http.first_byte_timeout, max.first_byte_timeout),
                (http.between_bytes_timeout, max.between_bytes_timeout),
            ] {
                assert!(!t.is_zero() && t <= m, "{t:?} over {m:?}");
            }
            // wasi:config has one namespace: no key is both.
            for (key, _) in &manifest.grants.config {
                assert!(!manifest.grants.secrets.contains(key), "{key}");
            }
            for grant in &manifest.grants.dirs {
                assert!(!grant.host.starts_with("/srv/nova/knowledge"), "{grant:?}");
                assert!(!Path::new("/srv/nova/knowledge").starts_with(&grant.host));
                assert!(!Path::new("/srv/nova/plugins").starts_with(&grant.host));
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
