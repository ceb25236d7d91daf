//! The shipped plugins, run through a real host on real documents.

use nova_tests::{Nova, Options, plugin, root, test_plugin};
use serde_json::{Value, json};

async fn host() -> Nova {
    let mut options = Options::default().plugin("log-and-kv", test_plugin("log-and-kv"));
    for name in [
        "markdown",
        "text",
        "html",
        "template",
        "knowledge-search",
        "json-transform",
        "store-doc",
    ] {
        options = options.plugin(name, plugin(name));
    }
    Nova::start(options).await
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures").join(name)).expect("fixture")
}

fn chunks_of(body: &Value) -> &Vec<Value> {
    body["chunks"].as_array().expect("chunks")
}

fn meta<'a>(chunk: &'a Value, key: &str) -> &'a str {
    chunk["metadata"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {chunk}"))
}

#[tokio::test]
async fn markdown_splits_by_heading_with_paths() {
    let nova = host().await;
    let (status, body) = nova
        .invoke_loader(
            "markdown",
            "docs/operations-guide.md",
            fixture("operations-guide.md"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let chunks = chunks_of(&body);
    let paths: Vec<&str> = chunks.iter().map(|c| meta(c, "heading_path")).collect();
    assert_eq!(
        paths,
        [
            "",
            "Operating the Widget Service",
            "Operating the Widget Service > Install",
            "Operating the Widget Service > Install > Linux",
            "Operating the Widget Service > Install > Linux > Debian",
            "Operating the Widget Service > Install > macOS",
            "Operating the Widget Service > Configure",
            // "Troubleshooting" has no body of its own: only its children.
            "Operating the Widget Service > Troubleshooting > The service does not start",
            "Operating the Widget Service > Troubleshooting > Orders are stuck",
        ]
    );
    for chunk in chunks {
        assert_eq!(meta(chunk, "title"), "Operating the Widget Service");
        assert_eq!(meta(chunk, "source"), "docs/operations-guide.md");
        let text = chunk["text"].as_str().unwrap();
        assert!(!text.contains("tags: ops"), "front matter leaked: {text}");
    }
    let debian = &chunks[4];
    assert_eq!(meta(debian, "heading"), "Debian");
    assert_eq!(meta(debian, "level"), "4");
    let linux = chunks[3]["text"].as_str().unwrap();
    assert!(
        linux.contains("sudo systemctl enable --now widgets"),
        "code block kept: {linux}"
    );
    let configure = chunks[6]["text"].as_str().unwrap();
    assert!(configure.contains("workers"), "table kept: {configure}");

    // Not UTF-8: the plugin refuses it, the host reports it clearly.
    let (status, body) = nova
        .invoke_loader("markdown", "bad.md", vec![b'#', b' ', 0xff, 0xfe])
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_invalid_input");
}

const PAGE_HEADINGS: [&str; 9] = [
    "Installation",
    "Command Line Notation",
    "Installing rustup on Linux or macOS",
    "Installing rustup on Windows",
    "Troubleshooting",
    "Updating and Uninstalling",
    "Reading the Local Documentation",
    "Using Text Editors and IDEs",
    "Working Offline with This Book",
];

fn assert_no_page_chrome(chunks: &[Value]) {
    let all: String = chunks
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    for chrome in [
        "elasticlunr",      // script
        "window.",          // script
        "font-family",      // style
        "Previous chapter", // page navigation (aria labels and links)
        "Next chapter",
        "mdbook-sidebar",
    ] {
        assert!(!all.contains(chrome), "page chrome {chrome:?} kept");
    }
}

#[tokio::test]
async fn html_keeps_the_main_text_of_a_real_page() {
    let nova = host().await;
    // A page of The Rust Programming Language as rustup installs it:
    // sidebar navigation, scripts, styles, a help pop-up and <main>.
    let page = fixture("rust-book-installation.html");
    let (status, body) = nova
        .invoke_loader("html", "book/ch01-01-installation.html", page.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    let chunks = chunks_of(&body);
    let headings: Vec<&str> = chunks.iter().map(|c| meta(c, "heading")).collect();
    assert_eq!(headings, PAGE_HEADINGS);
    assert_eq!(meta(&chunks[0], "heading_path"), "Installation");
    assert_eq!(
        meta(&chunks[4], "heading_path"),
        "Installation > Troubleshooting"
    );
    for chunk in chunks {
        assert_eq!(
            meta(chunk, "title"),
            "Installation - The Rust Programming Language"
        );
        assert_eq!(meta(chunk, "headings"), PAGE_HEADINGS.join(" | "));
    }
    let troubleshooting = chunks[4]["text"].as_str().unwrap();
    assert!(
        troubleshooting.contains("rustc --version"),
        "{troubleshooting}"
    );
    assert!(
        !chunks
            .iter()
            .any(|c| c["text"].as_str().unwrap().contains("Keyboard shortcuts"))
    );
    assert_no_page_chrome(chunks);

    // Without <main>, the body is used: scripts, styles and <nav> still go.
    let text = String::from_utf8(page)
        .unwrap()
        .replace("<main>", "")
        .replace("</main>", "");
    let (status, body) = nova
        .invoke_loader("html", "page.html", text.into_bytes())
        .await;
    assert_eq!(status, 200, "{body}");
    let chunks = chunks_of(&body);
    assert!(
        chunks
            .iter()
            .any(|c| meta(c, "heading") == "Troubleshooting")
    );
    assert_no_page_chrome(chunks);
}

#[tokio::test]
async fn text_groups_paragraphs_without_splitting_them() {
    let nova = host().await;
    let paragraphs: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "Paragraph {i}. {}",
                "Words make a sentence here. ".repeat(6).trim_end()
            )
        })
        .collect();
    let doc = paragraphs.join("\n\n");
    let (status, body) = nova
        .invoke_loader("text", "notes/log.txt", doc.into_bytes())
        .await;
    assert_eq!(status, 200, "{body}");
    let chunks = chunks_of(&body);
    assert!(chunks.len() > 1, "a long text is more than one chunk");
    let joined: Vec<String> = chunks
        .iter()
        .flat_map(|c| {
            c["text"]
                .as_str()
                .unwrap()
                .split("\n\n")
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(joined, paragraphs, "every paragraph, whole and in order");
    for chunk in chunks {
        assert!(chunk["text"].as_str().unwrap().len() <= 1_500, "{chunk}");
        assert_eq!(meta(chunk, "source"), "notes/log.txt");
    }
    let (status, body) = nova.invoke_loader("text", "empty.txt", Vec::new()).await;
    assert_eq!(status, 200, "{body}");
    assert!(chunks_empty(&body));
}

fn chunks_empty(body: &Value) -> bool {
    body["chunks"].as_array().is_some_and(Vec::is_empty)
}

#[tokio::test]
async fn template_renders_input_json() {
    let nova = host().await;
    let config = json!({"template": "Hello {{ name }}! {% for i in items %}[{{ i }}]{% endfor %}"});
    let (status, body) = nova
        .invoke_step(
            "template",
            &json!({"name": "Ada", "items": [1, 2]}),
            Some(&config),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"], json!({"text": "Hello Ada! [1][2]"}));

    let config = json!({"template": "{\"greeting\": \"hi {{ name }}\"}", "output": "json"});
    let (_, body) = nova
        .invoke_step("template", &json!({"name": "Bo"}), Some(&config))
        .await;
    assert_eq!(body["output"], json!({"greeting": "hi Bo"}));

    // Undefined variables are the caller's mistake (the step says so).
    let config = json!({"template": "{{ missing }}"});
    let (status, body) = nova
        .invoke_step("template", &json!({}), Some(&config))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "{body}"
    );
}

/// The template step declares its config's JSON Schema: the listing shows
/// it, and a config that does not match is refused before any call, on
/// invoke and at workflow submission, naming the field.
#[tokio::test]
async fn template_config_is_checked_against_its_schema() {
    let nova = host().await;
    let entry = nova.entry("template").await.expect("listed");
    assert_eq!(
        entry["config_schema"]["required"],
        json!(["template"]),
        "{entry}"
    );
    assert_eq!(
        entry["config_schema"]["properties"]["output"]["enum"],
        json!(["text", "json"])
    );
    for (config, says) in [
        (None, "\"template\" is a required property"),
        (
            Some(json!({"template": "x", "output": "xml"})),
            "config.output: ",
        ),
        (
            Some(json!({"template": "x", "strict": "yes"})),
            "config.strict: \"yes\" is not of type \"boolean\"",
        ),
        (Some(json!({"templat": "x"})), "templat"),
    ] {
        let (status, body) = nova
            .invoke_step("template", &json!({}), config.as_ref())
            .await;
        assert_eq!(status, 400, "{config:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_config", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{says}: {message}");
    }
    // A workflow is refused whole at submission, with the step's place.
    let (status, body) = nova
        .submit(&json!({"steps": [
            {"plugin": "template", "config": {"template": "{{ name }}"}},
            {"plugin": "template", "config": {"template": "x", "output": 1}},
        ]}))
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("step 1: config does not match \"template\"'s schema: config.output: "),
        "{message}"
    );
    // A matching config runs as before.
    let (status, body) = nova
        .submit(&json!({"input": {"name": "Ada"}, "steps": [
            {"plugin": "template", "config": {"template": "hi {{ name }}", "strict": false}},
        ]}))
        .await;
    assert_eq!(status, 202, "{body}");
    let run = nova.wait_run(body["id"].as_str().unwrap(), 30).await;
    assert_eq!(run["output"], json!({"text": "hi Ada"}), "{run}");
}

#[tokio::test]
async fn steps_reach_the_host_interfaces() {
    let nova = host().await;
    let (status, body) = nova
        .invoke_step(
            "knowledge-search",
            &json!({"query": "how do I reload a plugin?", "top_k": 3}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["query"], "how do I reload a plugin?");
    assert!(body["output"]["results"].is_array(), "{body}");
    let (status, body) = nova.invoke_step("knowledge-search", &json!(""), None).await;
    assert_eq!(status, 422, "{body}");

    // kv round trip, namespaced; knowledge search through the host.
    let (status, body) = nova.invoke_step("log-and-kv", &json!(null), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"],
        json!({
            "kv_roundtrip": true,
            "deleted": true,
            "knowledge": 0,
            // create, create again (conflict at version 1), replace 1 -> 2
            "store": {"versions": [1, 2], "conflict": 1, "value": {"n": 2}, "listed": 1, "deleted": true},
        })
    );
}

fn order() -> Value {
    json!({
        "order": {
            "id": "SO-1001",
            "customer": {"first_name": "Ada", "last_name": "Lovelace", "email": "  Ada@Example.COM "},
            "items": [
                {"sku": "PEN-01", "title": "Fountain pen", "price": 24.5, "qty": 2},
                {"sku": "INK-07", "title": "Ink, blue", "price": 7.25, "qty": 3, "discount": 1.5},
                {"sku": "PAD-A5", "title": "Notepad", "price": 4, "qty": 5},
            ],
            "shipping": null,
        }
    })
}

#[tokio::test]
async fn json_transform_summarises_an_order() {
    let nova = host().await;
    let subtotal = "sum(map($.items, $.price * $.qty - default($.discount, 0)))";
    let config = json!({
        "select": "$.order",
        "fields": {
            "order_id": "$.id",
            "customer": {
                "name": "$.customer.first_name + ' ' + $.customer.last_name",
                "email": "lower(trim($.customer.email))",
            },
            "lines": "len($.items)",
            "units": "sum($.items[*].qty)",
            "subtotal": subtotal,
            "shipping": "default($.shipping, 4.95)",
            "total": format!("round({subtotal} + default($.shipping, 4.95), 2)"),
            "skus": "join($.items[*].sku, ',')",
            "over_5": "filter($.items, $.price > 5)[*].sku",
            "tier": format!("if({subtotal} >= 50, 'gold', 'standard')"),
            "discounted": "exists($.items[*].discount)",
            "coupon": "default($.coupon, 'none')",
            "last_sku": "$.items[-1].sku",
            "source": "$$.order.id + '@shop'",
            "schema": 2,
        }
    });
    let (status, body) = nova
        .invoke_step("json-transform", &order(), Some(&config))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"],
        json!({
            "order_id": "SO-1001",
            "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
            "lines": 3,
            "units": 10,
            // 24.5*2 + (7.25*3 - 1.5) + 4*5
            "subtotal": 89.25,
            "shipping": 4.95,
            "total": 94.2,
            "skus": "PEN-01,INK-07,PAD-A5",
            "over_5": ["PEN-01", "INK-07"],
            "tier": "gold",
            "discounted": true,
            "coupon": "none",
            "last_sku": "PAD-A5",
            "source": "SO-1001@shop",
            "schema": 2,
        })
    );

    // Over each line item: keep it, rename `title` to `name`, add fields.
    let config = json!({
        "select": "$.order",
        "each": "$.items",
        "keep": true,
        "drop": ["title", "discount"],
        "fields": {
            "name": "$.title",
            "line_total": "$.price * $.qty - default($.discount, 0)",
            "order_id": "$$.order.id",
        }
    });
    let (status, body) = nova
        .invoke_step("json-transform", &order(), Some(&config))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"],
        json!([
            {"sku": "PEN-01", "name": "Fountain pen", "price": 24.5, "qty": 2, "line_total": 49, "order_id": "SO-1001"},
            {"sku": "INK-07", "name": "Ink, blue", "price": 7.25, "qty": 3, "line_total": 20.25, "order_id": "SO-1001"},
            {"sku": "PAD-A5", "name": "Notepad", "price": 4, "qty": 5, "line_total": 20, "order_id": "SO-1001"},
        ])
    );
}

#[tokio::test]
async fn json_transform_reports_bad_expressions() {
    let nova = host().await;
    // A type error names the field, the expression and the column.
    let config = json!({"select": "$.order", "fields": {"double": "$.customer.first_name * 2"}});
    let (status, body) = nova
        .invoke_step("json-transform", &order(), Some(&config))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_invalid_input");
    // (The host prefixes the plugin's message with what kind of error it is.)
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with(
            "fields.double: cannot apply `*` to string and number (at column 23 of `$.customer.first_name * 2`)"
        ),
        "{body}"
    );
    // So does a parse error, before the input is read.
    let config = json!({"fields": {"total": "sum($.order.items[*].price"}});
    let (status, body) = nova
        .invoke_step("json-transform", &order(), Some(&config))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_invalid_input");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("fields.total: parse error at column 27 of `sum($.order.items[*].price`: expected `,` or `)`"),
        "{message}"
    );
    // Per element of `each`, with the element's index.
    let input = json!({"rows": [{"n": 1}, {"n": "two"}]});
    let config = json!({"each": "$.rows", "fields": {"next": "$.n + 1"}});
    let (status, body) = nova
        .invoke_step("json-transform", &input, Some(&config))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fields.next (element 1 of each): cannot apply `+` to string and number"),
        "{body}"
    );
    let (status, body) = nova
        .invoke_step("json-transform", &input, Some(&json!({"feilds": {}})))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown config key \"feilds\""),
        "{body}"
    );
}

#[tokio::test]
async fn store_doc_round_trip_with_versions() {
    let nova = host().await;
    let put = json!({"op": "put", "key": "invoices/{$.id}"});
    let inv1 = json!({"id": "INV-1", "customer": "acme", "amount": 120, "status": "open"});
    let (status, body) = nova.invoke_step("store-doc", &inv1, Some(&put)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"],
        json!({"key": "invoices/INV-1", "version": 1, "input": inv1})
    );

    let get = json!({"op": "get", "key": "invoices/{$.id}"});
    let (status, body) = nova
        .invoke_step("store-doc", &json!({"id": "INV-1"}), Some(&get))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"],
        json!({"key": "invoices/INV-1", "found": true, "value": inv1, "version": 1})
    );

    // Merge: a shallow update over the stored object, at the version read.
    let merge = json!({"op": "merge", "key": "invoices/{$.id}"});
    let paid = json!({"id": "INV-1", "status": "paid", "paid_on": "2024-05-02"});
    let (status, body) = nova.invoke_step("store-doc", &paid, Some(&merge)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["version"], 2);
    let merged = json!({"id": "INV-1", "customer": "acme", "amount": 120, "status": "paid", "paid_on": "2024-05-02"});
    assert_eq!(body["output"]["value"], merged);

    // A second invoice, and a document outside the prefix.
    let inv2 = json!({"id": "INV-2", "customer": "globex", "amount": 80, "status": "open"});
    let (status, body) = nova.invoke_step("store-doc", &inv2, Some(&put)).await;
    assert_eq!(status, 200, "{body}");
    let other = json!({"op": "put", "key": "customers/{$.customer}", "value": "$.customer"});
    let (status, body) = nova.invoke_step("store-doc", &inv2, Some(&other)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["key"], "customers/globex");

    let list = json!({"op": "list", "prefix": "invoices/"});
    let (status, body) = nova
        .invoke_step("store-doc", &json!(null), Some(&list))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"],
        json!({"docs": [
            {"key": "invoices/INV-1", "value": merged, "version": 2},
            {"key": "invoices/INV-2", "value": inv2, "version": 1},
        ], "next": null})
    );

    // Optimistic concurrency: a put at a stale version is a conflict.
    let stale = json!({"op": "put", "key": "invoices/{$.id}", "if_version": 1});
    let (status, body) = nova.invoke_step("store-doc", &inv1, Some(&stale)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_failed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("conflict: current version 2, expected 1"),
        "{message}"
    );
    let create_only = json!({"op": "put", "key": "invoices/{$.id}", "if_version": 0});
    let (status, body) = nova
        .invoke_step("store-doc", &inv1, Some(&create_only))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_failed");
    // Read, change, write back at the version read (if_version from input).
    let (_, read) = nova
        .invoke_step("store-doc", &json!({"id": "INV-1"}), Some(&get))
        .await;
    let write_back =
        json!({"op": "put", "key": "{$.key}", "value": "$.value", "if_version": "$.version"});
    let (status, body) = nova
        .invoke_step("store-doc", &read["output"], Some(&write_back))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["version"], 3);
    let (status, body) = nova
        .invoke_step("store-doc", &read["output"], Some(&write_back))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("conflict: current version 3, expected 2"),
        "{body}"
    );

    // Delete, then it is gone.
    let delete = json!({"op": "delete", "key": "invoices/{$.id}"});
    let (status, body) = nova
        .invoke_step("store-doc", &json!({"id": "INV-1"}), Some(&delete))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["output"],
        json!({"key": "invoices/INV-1", "deleted": true})
    );
    let (_, body) = nova
        .invoke_step("store-doc", &json!({"id": "INV-1"}), Some(&delete))
        .await;
    assert_eq!(body["output"]["deleted"], false);
    let (_, body) = nova
        .invoke_step("store-doc", &json!({"id": "INV-1"}), Some(&get))
        .await;
    assert_eq!(
        body["output"],
        json!({"key": "invoices/INV-1", "found": false, "value": null, "version": 0})
    );
    let (_, body) = nova
        .invoke_step("store-doc", &json!(null), Some(&list))
        .await;
    assert_eq!(
        body["output"]["docs"].as_array().unwrap().len(),
        1,
        "{body}"
    );

    // The caller's mistakes are invalid input.
    let (status, body) = nova.invoke_step("store-doc", &json!({}), Some(&get)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_invalid_input");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("{$.id} is missing from the input"),
        "{body}"
    );
    let (status, body) = nova
        .invoke_step(
            "store-doc",
            &json!({}),
            Some(&json!({"op": "upsert", "key": "k"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_invalid_input");
}

#[tokio::test]
async fn a_workflow_of_shipped_steps_transforms_and_stores() {
    let nova = host().await;
    let workflow = json!({
        "steps": [
            {"plugin": "json-transform", "config": {"select": "$.order", "fields": {
                "id": "$.id",
                "total": "round(sum(map($.items, $.price * $.qty - default($.discount, 0))), 2)",
                "status": "'received'",
            }}},
            {"plugin": "store-doc", "config": {"op": "put", "key": "orders/{$.id}"}},
            {"plugin": "store-doc", "config": {"op": "merge", "key": "{$.key}", "value": "$.input"}},
            {"plugin": "json-transform", "config": {"fields": {
                "key": "$.key",
                "version": "$.version",
                "summary": "$.value.id + ': ' + string($.value.total)",
            }}},
        ],
        "input": order(),
    });
    let (status, body) = nova.submit(&workflow).await;
    assert_eq!(status, 202, "{body}");
    let run = nova.wait_run(body["id"].as_str().unwrap(), 30).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["output"],
        json!({"key": "orders/SO-1001", "version": 2, "summary": "SO-1001: 89.25"})
    );
}
