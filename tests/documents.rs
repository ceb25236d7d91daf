//! Knowledge v2 end to end: collections and documents over HTTP, the three
//! search modes, rich filters and keys held to collections; on the
//! embedded index, and on a Qdrant server when the tests are built with
//! `QDRANT_URL` (else those variants are ignored, counted as skipped).

use nova_tests::{Nova, Options, sources};
use reqwest::Method;
use serde_json::{Value, json};

/// A host with the shipped loaders, on the embedded index or the server.
async fn host(server: bool) -> Nova {
    let options = Options::default().loaders();
    let options = if server {
        options
            .qdrant()
            .expect("built for a Qdrant server: set QDRANT_URL")
    } else {
        options
    };
    Nova::start(options).await
}

/// Declares each scenario on the embedded index and on a Qdrant server.
macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod edge {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    super::$scenario(super::host(false).await).await;
                }
            )*
        }
        mod server {
            $(
                #[tokio::test(flavor = "multi_thread")]
                #[cfg_attr(not(qdrant_server), ignore = "needs a Qdrant server: set QDRANT_URL when building the tests")]
                async fn $scenario() {
                    super::$scenario(super::host(true).await).await;
                }
            )*
        }
    };
}

on_both!(
    documents_round_trip,
    keyword_and_hybrid_modes_find_rare_tokens,
    filters_on_uploaded_metadata,
    keys_see_only_their_collections,
);

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}

async fn put_doc(
    nova: &Nova,
    collection: &str,
    id: &str,
    media_type: &str,
    body: impl Into<reqwest::Body>,
    metadata: Option<Value>,
) -> (u16, Value) {
    let mut request = nova
        .admin(
            Method::PUT,
            &format!("/rag/collections/{collection}/documents/{id}"),
        )
        .header("content-type", media_type)
        .body(body);
    if let Some(m) = metadata {
        request = request.header("x-nova-metadata", m.to_string());
    }
    send(request).await
}

async fn create(nova: &Nova, collection: &str, settings: Value) -> (u16, Value) {
    send(
        nova.admin(Method::PUT, &format!("/rag/collections/{collection}"))
            .json(&settings),
    )
    .await
}

async fn search(nova: &Nova, body: Value) -> Value {
    let (status, answer) = send(nova.admin(Method::POST, "/rag/query").json(&body)).await;
    assert_eq!(status, 200, "{body} -> {answer}");
    answer
}

const TEA: &str = "# Tea\n\nSteep green tea at eighty degrees for two minutes.\n\n\
                   ## Storage\n\nKeep the leaves dry and away from light.\n";

async fn documents_round_trip(nova: Nova) {
    // A collection, with settings; again: 200, settings kept.
    let (status, created) = create(
        &nova,
        "kb",
        json!({"description": "team notes", "chunk_tokens": 64, "chunk_overlap": 8}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["settings"]["chunk_tokens"], 64);
    let (status, again) = create(&nova, "kb", json!({})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["settings"]["description"], "team notes");
    let (status, bad) = create(&nova, "kb2", json!({"chunk_tokens": 4})).await;
    assert_eq!(status, 400, "{bad}");
    let (status, bad) = create(&nova, "Bad Name", json!({})).await;
    assert_eq!(status, 400, "{bad}");

    // Markdown with metadata from the header: 201 with the chunk count.
    let (status, saved) = put_doc(
        &nova,
        "kb",
        "guides%2Ftea.md",
        "text/markdown; charset=utf-8",
        TEA,
        Some(json!({"team": "kitchen", "year": 2024})),
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["id"], "guides/tea.md");
    assert_eq!(saved["loader"], "markdown");
    let chunks = saved["chunks"].as_u64().unwrap();
    assert!(chunks >= 2, "{saved}");
    assert_eq!(saved["embedded"], chunks);
    // The same again: nothing embedded, 200.
    let (status, same) = put_doc(
        &nova,
        "kb",
        "guides%2Ftea.md",
        "text/markdown",
        TEA,
        Some(json!({"team": "kitchen", "year": 2024})),
    )
    .await;
    assert_eq!((status, &same["embedded"]), (200, &json!(0)), "{same}");
    assert_eq!(same["chunks"], chunks);
    // New metadata re-indexes.
    let (status, meta) = put_doc(
        &nova,
        "kb",
        "guides%2Ftea.md",
        "text/markdown",
        TEA,
        Some(json!({"team": "bar", "year": 2024})),
    )
    .await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["embedded"], chunks);

    // HTML and the JSON form, by the same loaders as files.
    let html = "<html><head><title>Coffee</title></head><body><nav>menu</nav>\
                <h1>Coffee</h1><p>Brew coffee with water just off the boil.</p></body></html>";
    let (status, saved) = put_doc(&nova, "kb", "coffee", "text/html", html, None).await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["loader"], "html");
    let (status, saved) = put_doc(
        &nova,
        "kb",
        "note-1",
        "application/json",
        json!({"text": "Cocoa is made from roasted cacao beans.", "metadata": {"team": "bar"}})
            .to_string(),
        None,
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["loader"], "text");
    // A PDF, from the fixtures.
    let pdf = std::fs::read(nova_tests::root().join("tests/fixtures/nova-overview.pdf")).unwrap();
    let (status, saved) = put_doc(&nova, "kb", "overview.pdf", "application/pdf", pdf, None).await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["loader"], "pdf");
    // ?loader= names one whatever the type.
    let (status, saved) = send(
        nova.admin(
            Method::PUT,
            "/rag/collections/kb/documents/raw.bin?loader=text",
        )
        .header("content-type", "application/octet-stream")
        .body("Plain words sent as bytes."),
    )
    .await;
    assert_eq!((status, &saved["loader"]), (201, &json!("text")), "{saved}");

    // Found by search, with the document's metadata on its chunks.
    let answer = search(
        &nova,
        json!({"query": "how hot for green tea", "collection": "kb", "top_k": 1, "mode": "dense"}),
    )
    .await;
    assert_eq!(sources(&answer), ["guides/tea.md"], "{answer}");
    assert_eq!(answer["results"][0]["metadata"]["team"], "bar");
    assert_eq!(answer["results"][0]["metadata"]["year"], 2024);
    assert_eq!(answer["mode"], "dense");

    // Listing, two at a time: every document once, each page by id.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(next) => format!("/rag/collections/kb/documents?limit=2&after={next}"),
            None => "/rag/collections/kb/documents?limit=2".to_owned(),
        };
        let page = nova.get_json(&path).await;
        let ids: Vec<String> = page["documents"]
            .as_array()
            .unwrap_or_else(|| panic!("{page}"))
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.len() <= 2 && ids.is_sorted(), "{page}");
        seen.extend(ids);
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
        assert!(seen.len() <= 5, "{seen:?}");
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "coffee",
            "guides/tea.md",
            "note-1",
            "overview.pdf",
            "raw.bin"
        ],
        "{seen:?}"
    );
    let (status, bad) =
        send(nova.admin(Method::GET, "/rag/collections/kb/documents?after=coffee")).await;
    assert_eq!(status, 400, "{bad}");

    // One document, with its chunks.
    let doc = nova
        .get_json("/rag/collections/kb/documents/guides%2Ftea.md?chunks=true")
        .await;
    assert_eq!(doc["id"], "guides/tea.md", "{doc}");
    assert_eq!(doc["uploaded"], true);
    assert_eq!(doc["loader"], "markdown");
    assert_eq!(doc["metadata"], json!({"team": "bar", "year": 2024}));
    assert_eq!(doc["content_hash"].as_str().unwrap().len(), 64);
    let list = doc["chunk_list"].as_array().expect("chunks");
    assert_eq!(list.len() as u64, chunks);
    assert!(
        list.iter()
            .any(|c| c["text"].as_str().unwrap().contains("eighty degrees"))
    );
    let info = nova.get_json("/rag/collections/kb").await;
    assert_eq!(info["documents"], 5, "{info}");
    let all = nova.get_json("/rag/collections").await;
    assert!(
        all["collections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "kb"),
        "{all}"
    );

    // Refusals, each with a clear error.
    let cases: Vec<(u16, &str, (u16, Value))> = vec![
        (
            415,
            "no_loader",
            put_doc(&nova, "kb", "x.bin", "application/x-unknown", "bytes", None).await,
        ),
        (
            400,
            "invalid_request",
            put_doc(&nova, "kb", "x", "text/plain", "t", Some(json!({"a.b": 1}))).await,
        ),
        (
            400,
            "invalid_request",
            put_doc(
                &nova,
                "kb",
                "x",
                "text/plain",
                "t",
                Some(json!({"n": {"deep": 1}})),
            )
            .await,
        ),
        (
            400,
            "invalid_request",
            put_doc(&nova, "kb", "x", "text/plain", "", None).await,
        ),
        (
            400,
            "invalid_request",
            put_doc(&nova, "kb", "x", "application/json", "{\"txt\": 1}", None).await,
        ),
        (
            404,
            "unknown_collection",
            put_doc(&nova, "nosuch", "x", "text/plain", "t", None).await,
        ),
        (
            422,
            "document_rejected",
            put_doc(
                &nova,
                "kb",
                "broken.pdf",
                "application/pdf",
                "not a pdf",
                None,
            )
            .await,
        ),
        (
            404,
            "unknown_document",
            send(nova.admin(Method::GET, "/rag/collections/kb/documents/missing")).await,
        ),
    ];
    for (status, code, (got, body)) in cases {
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    // A rejected document left nothing behind.
    assert_eq!(nova.get_json("/rag/collections/kb").await["documents"], 5);

    // Deleted: gone from search and reads.
    let (status, _) = send(nova.admin(
        Method::DELETE,
        "/rag/collections/kb/documents/guides%2Ftea.md",
    ))
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(nova.admin(
        Method::DELETE,
        "/rag/collections/kb/documents/guides%2Ftea.md",
    ))
    .await;
    assert_eq!(status, 404);
    let answer = search(
        &nova,
        json!({"query": "green tea steeping temperature", "collection": "kb", "top_k": 5}),
    )
    .await;
    assert!(
        !sources(&answer).contains(&"guides/tea.md".to_owned()),
        "{answer}"
    );
    let (status, _) = send(nova.admin(Method::DELETE, "/rag/collections/kb")).await;
    assert_eq!(status, 204);
    let (status, gone) = send(nova.admin(Method::GET, "/rag/collections/kb")).await;
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (404, Some("unknown_collection"))
    );
}

async fn keyword_and_hybrid_modes_find_rare_tokens(nova: Nova) {
    assert_eq!(create(&nova, "errors", json!({})).await.0, 201);
    let pages = [
        (
            "borrowing.md",
            "# Borrowing\n\nA value may be borrowed mutably only once at a time; the borrow \
             checker refuses a second mutable borrow while the first is alive.",
        ),
        (
            "e0499.md",
            "# Codes\n\nThe compiler reports E0499 for this case, with a note pointing at the \
             first borrow.",
        ),
        (
            "lifetimes.md",
            "# Lifetimes\n\nReferences must not outlive the value they refer to; lifetimes name \
             how long a borrow lasts.",
        ),
        (
            "config.md",
            "# Settings\n\nSet NOVA_RAG_RATE_LIMIT to change how many queries a client may \
             make each second.",
        ),
    ];
    for (id, text) in pages {
        let (status, saved) = put_doc(&nova, "errors", id, "text/markdown", text, None).await;
        assert_eq!(status, 201, "{saved}");
    }
    for (query, expected) in [
        ("E0499", "e0499.md"),
        ("what is e0499", "e0499.md"),
        ("NOVA_RAG_RATE_LIMIT", "config.md"),
    ] {
        for mode in ["keyword", "hybrid"] {
            let answer = search(
                &nova,
                json!({"query": query, "collection": "errors", "mode": mode, "top_k": 3}),
            )
            .await;
            assert_eq!(
                sources(&answer).first().map(String::as_str),
                Some(expected),
                "{mode} {query:?}: {answer}"
            );
            assert_eq!(answer["mode"], mode);
        }
    }
    // The default mode is hybrid; dense still answers by meaning.
    let answer = search(&nova, json!({"query": "E0499", "collection": "errors"})).await;
    assert_eq!(answer["mode"], "hybrid");
    let answer = search(
        &nova,
        json!({"query": "how long does a reference live", "collection": "errors", "mode": "dense", "top_k": 1}),
    )
    .await;
    assert_eq!(sources(&answer), ["lifetimes.md"], "{answer}");
    // Keyword mode with words in no document finds nothing.
    let answer = search(
        &nova,
        json!({"query": "kubernetes helm", "collection": "errors", "mode": "keyword"}),
    )
    .await;
    assert!(sources(&answer).is_empty(), "{answer}");
    let (status, bad) = send(
        nova.admin(Method::POST, "/rag/query")
            .json(&json!({"query": "q", "collection": "errors", "mode": "fuzzy"})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
}

async fn filters_on_uploaded_metadata(nova: Nova) {
    assert_eq!(create(&nova, "notes", json!({})).await.0, 201);
    let docs = [
        (
            "a",
            json!({"year": 2019, "status": "draft", "tags": ["rust", "wasm"], "published": "2019-03-01T00:00:00Z"}),
        ),
        (
            "b",
            json!({"year": 2021, "status": "final", "tags": ["rust"], "published": "2021-06-15"}),
        ),
        (
            "c",
            json!({"year": 2024, "status": "final", "tags": ["python"], "published": "2024-01-01T00:00:00Z"}),
        ),
        (
            "d",
            json!({"year": 2025, "rating": 4.5, "published": "2025-02-01T08:00:00+01:00"}),
        ),
    ];
    for (id, meta) in &docs {
        let text = format!("Release notes of project {id}: tea, coffee and cocoa.");
        let (status, saved) =
            put_doc(&nova, "notes", id, "text/plain", text, Some(meta.clone())).await;
        assert_eq!(status, 201, "{saved}");
    }
    let cases = [
        (json!({"year": 2021}), vec!["b"]),
        (
            json!({"status": {"any": ["draft", "final"]}}),
            vec!["a", "b", "c"],
        ),
        (json!({"tags": "rust"}), vec!["a", "b"]),
        (json!({"tags": {"any": ["wasm", "python"]}}), vec!["a", "c"]),
        (json!({"status": {"not": "draft"}}), vec!["b", "c", "d"]),
        (json!({"tags": {"not": ["rust", "python"]}}), vec!["d"]),
        (json!({"year": {"gte": 2020, "lt": 2025}}), vec!["b", "c"]),
        (json!({"rating": {"gt": 4}}), vec!["d"]),
        (
            json!({"published": {"gte": "2021-01-01", "lt": "2024-06-01T00:00:00Z"}}),
            vec!["b", "c"],
        ),
        (json!({"status": "final", "year": {"lte": 2021}}), vec!["b"]),
        (json!({"source": "c"}), vec!["c"]),
    ];
    for (filter, expected) in cases {
        for mode in ["dense", "keyword", "hybrid"] {
            let answer = search(
                &nova,
                json!({"query": "release notes tea", "collection": "notes", "top_k": 10,
                       "filter": filter, "mode": mode}),
            )
            .await;
            let mut got = sources(&answer);
            got.sort();
            assert_eq!(got, expected, "{mode} {filter}: {answer}");
        }
    }
    for bad in [
        json!({"year": {"near": 3}}),
        json!({"year": [2019, 2021]}),
        json!({"year": null}),
        json!({"year": {"gte": "yesterday"}}),
        json!({"year": {"gte": 1, "lt": "2024-01-01"}}),
        json!({"tags": {"any": []}}),
        json!({"tags": {"any": ["a", 1]}}),
        json!({"a.b": 1}),
    ] {
        let (status, answer) = send(
            nova.admin(Method::POST, "/rag/query")
                .json(&json!({"query": "q", "collection": "notes", "filter": bad})),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request");
    }
}

async fn keys_see_only_their_collections(nova: Nova) {
    for c in ["team-a", "team-b"] {
        assert_eq!(create(&nova, c, json!({})).await.0, 201);
        let (status, _) = put_doc(
            &nova,
            c,
            "doc.md",
            "text/markdown",
            format!("# {c}\n\nThe handbook of {c}."),
            None,
        )
        .await;
        assert_eq!(status, 201);
    }
    let key = nova
        .client
        .key_create_with(&nova_client::NewKey {
            name: "team-a-bot".into(),
            scopes: vec!["rag:query".into(), "rag:write".into()],
            collections: Some(vec!["team-a".into()]),
        })
        .await
        .expect("key")
        .value;
    assert_eq!(key.collections, Some(vec!["team-a".to_owned()]));
    let as_key = |method: Method, path: &str| {
        nova.anon
            .request(method, nova.url(path))
            .bearer_auth(&key.key)
    };
    // Its own collection: everything works.
    let (status, answer) = send(
        as_key(Method::POST, "/rag/query")
            .json(&json!({"query": "handbook", "collection": "team-a"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(sources(&answer), ["doc.md"]);
    let (status, _) = send(
        as_key(Method::PUT, "/rag/collections/team-a/documents/more.md")
            .header("content-type", "text/markdown")
            .body("# More\n\nMore of the handbook."),
    )
    .await;
    assert_eq!(status, 201);
    // Another: 404, worded exactly as for a collection that does not exist.
    let (_, missing) = send(
        as_key(Method::POST, "/rag/query").json(&json!({"query": "q", "collection": "no-such"})),
    )
    .await;
    for (method, path, body) in [
        (
            Method::POST,
            "/rag/query",
            Some(json!({"query": "handbook", "collection": "team-b"})),
        ),
        (Method::GET, "/rag/collections/team-b", None),
        (Method::GET, "/rag/collections/team-b/documents", None),
        (
            Method::GET,
            "/rag/collections/team-b/documents/doc.md",
            None,
        ),
        (
            Method::DELETE,
            "/rag/collections/team-b/documents/doc.md",
            None,
        ),
        (Method::DELETE, "/rag/collections/team-b", None),
        (Method::PUT, "/rag/collections/team-c", None),
    ] {
        let mut request = as_key(method.clone(), path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, answer) = send(request).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "unknown_collection", "{answer}");
        assert_eq!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .replace("team-b", "no-such")
                .replace("team-c", "no-such"),
            missing["error"]["message"].as_str().unwrap(),
        );
    }
    let (status, _) = send(
        as_key(Method::PUT, "/rag/collections/team-b/documents/x.md")
            .header("content-type", "text/markdown")
            .body("# X"),
    )
    .await;
    assert_eq!(status, 404);
    // Listings show only its collection.
    let (_, list) = send(as_key(Method::GET, "/rag/collections")).await;
    let names: Vec<&str> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team-a"], "{list}");
    let (_, stats) = send(as_key(Method::GET, "/rag/stats")).await;
    let names: Vec<&str> = stats["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["team-a"], "{stats}");
    // An ingest into another collection: its report is not the key's
    // either.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.md"), "# B\n\nMore of team-b.").unwrap();
    let (status, started) = send(
        nova.admin(Method::POST, "/rag/reload")
            .json(&json!({"dir": dir.path().display().to_string(), "collection": "team-b"})),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let report = format!("/rag/ingests/{}", started["id"].as_str().unwrap());
    loop {
        let answer = nova.get_json(&report).await;
        if answer["running"] == json!(false) && answer["report"].is_object() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, answer) = send(as_key(Method::GET, &report)).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], "not_found");
    // team-b holds its upload and the directory's file, none of the key's.
    assert_eq!(
        nova.get_json("/rag/collections/team-b").await["documents"],
        2
    );
    // A bad collection list is refused when the key is made.
    let bad = nova
        .client
        .key_create_with(&nova_client::NewKey {
            name: "bad".into(),
            scopes: vec!["rag:query".into()],
            collections: Some(vec!["../etc".into()]),
        })
        .await;
    assert!(bad.is_err());
}

/// A plugin's `knowledge` import searches only the collections its
/// manifest grants: `default` when it says nothing.
#[tokio::test(flavor = "multi_thread")]
async fn plugins_search_only_granted_collections() {
    let nova = Nova::start(
        Options::default()
            .loaders()
            .plugin("searcher", nova_tests::plugin("knowledge-search"))
            .plugin("granted", nova_tests::plugin("knowledge-search"))
            .manifest("granted", "[grants]\nknowledge = [\"private\"]\n"),
    )
    .await;
    for c in ["default", "private"] {
        create(&nova, c, json!({})).await;
        let (status, _) = put_doc(
            &nova,
            c,
            "tea.md",
            "text/markdown",
            format!("# Tea in {c}\n\nSteep green tea at eighty degrees."),
            None,
        )
        .await;
        assert_eq!(status, 201);
    }
    let run = |plugin: &'static str, collection: &'static str| {
        let nova = &nova;
        async move {
            let (status, run) = nova
                .submit(&json!({
                    "steps": [{"plugin": plugin, "config": {"collection": collection, "top_k": 1}}],
                    "input": {"query": "green tea"}
                }))
                .await;
            assert_eq!(status, 202, "{run}");
            nova.wait_run(run["id"].as_str().unwrap(), 30).await
        }
    };
    // Without a grant: the default collection, and nothing else.
    let ok = run("searcher", "default").await;
    assert_eq!(ok["status"], "succeeded", "{ok}");
    assert!(ok["output"].to_string().contains("tea.md"), "{ok}");
    let refused = run("searcher", "private").await;
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused
            .to_string()
            .contains("no collection named \\\"private\\\""),
        "{refused}"
    );
    // Granted: that collection, and no longer the default one.
    let ok = run("granted", "private").await;
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let refused = run("granted", "default").await;
    assert_eq!(refused["status"], "failed", "{refused}");
    // The admin listing shows the grant.
    let shown = nova.get_json("/admin/plugins/granted").await;
    assert_eq!(shown["grants"]["knowledge"], json!(["private"]), "{shown}");
    let shown = nova.get_json("/admin/plugins/searcher").await;
    assert_eq!(shown["grants"]["knowledge"], json!(["default"]), "{shown}");
}

/// A directory's sync leaves documents uploaded into its collection alone.
#[tokio::test(flavor = "multi_thread")]
async fn directory_sync_keeps_uploads() {
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("file.md"), "# File\n\nFrom the directory.").unwrap();
    let nova = Nova::start(Options::default().loaders().knowledge_dir(docs.path())).await;
    let (status, saved) = put_doc(
        &nova,
        "default",
        "upload.md",
        "text/markdown",
        "# Upload\n\nSent over HTTP.",
        None,
    )
    .await;
    assert_eq!(status, 201, "{saved}");
    // A full re-ingest of the directory: the upload stays.
    let (status, started) = send(nova.admin(Method::POST, "/rag/reload").json(&json!({}))).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let report = loop {
        let answer = nova.get_json(&format!("/rag/ingests/{id}")).await;
        if answer["running"] == json!(false) && answer["report"].is_object() {
            break answer["report"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(report["removed"], 0, "{report}");
    let page = nova.get_json("/rag/collections/default/documents").await;
    let ids: Vec<(&str, bool)> = page["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d["uploaded"].as_bool().unwrap()))
        .collect();
    assert_eq!(ids, [("file.md", false), ("upload.md", true)], "{page}");
}
