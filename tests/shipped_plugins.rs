//! The shipped plugins, run through a real host on real documents.

use nova_tests::{Nova, Options, plugin, root, test_plugin};
use serde_json::{Value, json};

async fn host() -> Nova {
    let mut options = Options::default().plugin("log-and-kv", test_plugin("log-and-kv"));
    for name in ["markdown", "text", "html", "template", "knowledge-search"] {
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

    // Missing config and undefined variables are the caller's mistakes.
    let (status, body) = nova.invoke_step("template", &json!({}), None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_invalid_input");
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
        json!({"kv_roundtrip": true, "deleted": true, "knowledge": 0})
    );
}
