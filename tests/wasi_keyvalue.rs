//! The standard `wasi:keyvalue` interface, through a real host, from a
//! component built against the standard WIT (`tests/plugins/std-keyvalue`,
//! as a Spin or wasmCloud component would be): its own keys, on both kv
//! backends (in-process, and Redis), the same keys as `nova:plugin/kv`, and
//! none of another plugin's.

use nova_tests::{Backend, Nova, Options, test_plugin};
use serde_json::{Value, json};

async fn ops(nova: &Nova, plugin: &str, ops: &str) -> Vec<String> {
    let (status, body) = nova
        .invoke_step(plugin, &json!({}), Some(&json!({"ops": ops})))
        .await;
    assert_eq!(status, 200, "{plugin} {ops}: {body}");
    let out: Vec<Value> = body["output"].as_array().expect("array").clone();
    out.iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect()
}

#[tokio::test]
async fn a_standard_keyvalue_component_keeps_its_own_keys() {
    for backend in Backend::all() {
        let name = backend.name();
        let nova = Nova::start(
            Options::default()
                .plugin("kv-a", test_plugin("std-keyvalue"))
                .plugin("kv-b", test_plugin("std-keyvalue"))
                .backend(&backend),
        )
        .await;
        assert_eq!(
            ops(
                &nova,
                "kv-a",
                "set colour blue; get colour; exists colour; exists nothing"
            )
            .await,
            ["ok", "blue", "true", "false"],
            "{name}"
        );
        // Another plugin's bucket of the same name holds nothing of it.
        assert_eq!(
            ops(&nova, "kv-b", "get colour; list").await,
            ["none", ""],
            "{name}: plugins are isolated"
        );
        // The same keys as nova's own kv, both ways.
        assert_eq!(
            ops(
                &nova,
                "kv-a",
                "nova-get colour; nova-set size large; get size"
            )
            .await,
            ["blue", "ok", "large"],
            "{name}"
        );
        assert_eq!(
            ops(
                &nova,
                "kv-a",
                "incr hits 2; incr hits 3; get hits; incr colour 1"
            )
            .await,
            [
                "2",
                "5",
                "5",
                "error: the value of \"colour\" is not a decimal number, so it cannot be incremented"
            ],
            "{name}"
        );
        assert_eq!(
            ops(
                &nova,
                "kv-a",
                "set-many a=1 b=2; get-many a b zz; delete a; get-many a; list"
            )
            .await,
            ["ok", "a=1,b=2,none", "ok", "none", "b,colour,hits,size"],
            "{name}"
        );
        assert_eq!(
            ops(&nova, "kv-a", "open elsewhere; open default; get b").await,
            ["error: no-such-store", "ok", "2"],
            "{name}: one bucket, `default`"
        );
        // A get-many answer is bounded (by `[plugins] list_bytes`, 4 MiB),
        // however often it names one large value.
        assert_eq!(
            ops(&nova, "kv-a", "fill big 1000000; get-many big big big big").await,
            [
                "ok",
                "big=<1000000 bytes>,big=<1000000 bytes>,big=<1000000 bytes>,big=<1000000 bytes>"
            ],
            "{name}"
        );
        let over = ops(&nova, "kv-a", "get-many big big big big big").await;
        assert_eq!(
            over,
            ["error: a get-many answer holds at most 4194304 bytes of values; ask for fewer keys"],
            "{name}"
        );
        // Keys persist across calls (and instances), as kv's do.
        assert_eq!(ops(&nova, "kv-a", "get colour").await, ["blue"], "{name}");
    }
}
