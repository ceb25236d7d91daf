//! The knowledge base end to end: real hosts, the real model, the shipped
//! loader plugins, over HTTP.

use std::path::Path;
use std::time::{Duration, Instant};

use nova_tests::{Backend, Nova, Options, root, sources, test_plugin};
use serde_json::{Value, json};

async fn query(nova: &Nova, body: Value) -> (u16, Value) {
    let response = nova
        .http
        .post(nova.url("/rag/query"))
        .json(&body)
        .send()
        .await
        .expect("query");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

async fn ask(nova: &Nova, body: Value) -> Value {
    let (status, answer) = query(nova, body.clone()).await;
    assert_eq!(status, 200, "{body} -> {answer}");
    answer
}

/// Starts an ingest with `body` and waits for its report.
async fn reload(nova: &Nova, body: Value) -> Value {
    let response = nova
        .admin(reqwest::Method::POST, "/rag/reload")
        .json(&body)
        .send()
        .await
        .expect("reload");
    assert_eq!(response.status(), 202);
    let started: Value = response.json().await.expect("JSON");
    let id = started["id"].as_str().expect("id").to_owned();
    wait_ingest(nova, &id).await
}

async fn wait_ingest(nova: &Nova, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let answer = nova.get_json(&format!("/rag/ingests/{id}")).await;
        if answer["running"] == json!(false) && answer["report"].is_object() {
            return answer["report"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "ingest {id} did not finish: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last finished ingest of the first ingest at start.
async fn last_ingest(nova: &Nova) -> Value {
    nova.get_json("/rag/stats").await["ingest"]["last"].clone()
}

fn counts(report: &Value) -> [u64; 5] {
    ["added", "updated", "removed", "unchanged", "failed"]
        .map(|k| report[k].as_u64().unwrap_or(999))
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_questions_about_nova_from_its_own_docs() {
    answers_questions_from_its_docs(Options::default(), "qdrant-edge").await;
}

/// The same on a Qdrant server.
#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(qdrant_server),
    ignore = "needs a Qdrant server: set QDRANT_URL when building the tests"
)]
async fn answers_questions_about_nova_from_its_own_docs_on_a_qdrant_server() {
    let options = Options::default()
        .qdrant()
        .expect("built for a Qdrant server: set QDRANT_URL");
    answers_questions_from_its_docs(options, "qdrant").await;
}

async fn answers_questions_from_its_docs(options: Options, backend: &str) {
    let nova = Nova::start(options.loaders().knowledge_dir(&root().join("knowledge"))).await;
    let stats = nova.get_json("/rag/stats").await;
    let files = walkdir_count(&root().join("knowledge"));
    assert_eq!(stats["documents"], json!(files), "{stats}");
    assert!(stats["chunks"].as_u64().unwrap() > files as u64, "{stats}");
    assert_eq!(stats["model"]["name"], "all-MiniLM-L6-v2");
    assert_eq!(stats["model"]["dimensions"], 384);
    assert_eq!(stats["index"]["backend"], backend);
    assert_eq!(stats["ingest"]["last"]["failed"], 0, "{stats}");

    let questions: &[(&str, &str)] = &[
        (
            "How do I upload a new plugin through the admin API?",
            "official_docs/http-api.md",
        ),
        (
            "Which setting points nova at a Postgres database?",
            "official_docs/configuration.md",
        ),
        (
            "How are failed workflow steps retried with exponential backoff?",
            "official_docs/workflows.md",
        ),
        (
            "What does the html loader drop from a web page?",
            "integrations/html.md",
        ),
        (
            "How do I write store documents with optimistic concurrency and expected versions?",
            "official_docs/wit-interfaces.md",
        ),
        (
            "How do I test a Rust plugin natively with cargo test and the SDK's testing feature?",
            "official_docs/writing-a-plugin.md",
        ),
        (
            "How does nova shut down gracefully on SIGTERM?",
            "official_docs/operations.md",
        ),
        (
            "How does the markdown loader split a document by headings?",
            "integrations/markdown.md",
        ),
        (
            "How do I render a minijinja template in a workflow step?",
            "integrations/template.md",
        ),
        (
            "How can a step select and rename fields of JSON input?",
            "integrations/json-transform.md",
        ),
        (
            "Which step plugin searches the knowledge base from a workflow?",
            "integrations/knowledge-search.md",
        ),
        (
            "What exit codes does nova submit return?",
            "official_docs/workflows.md",
        ),
        (
            "Which Prometheus metrics does nova export on /metrics?",
            "official_docs/operations.md",
        ),
        (
            "How does the Rust client library retry requests with backoff and Retry-After?",
            "official_docs/client.md",
        ),
        (
            "How do I upload a plugin from the command line with nova plugins upload?",
            "official_docs/cli.md",
        ),
        (
            "How do plugins uploaded to one host reach the other hosts of a fleet?",
            "official_docs/operations.md",
        ),
    ];
    let mut misses = Vec::new();
    // In the default mode (hybrid) and by meaning alone.
    for mode in [None, Some("dense")] {
        for (question, expected) in questions {
            let mut body = json!({"query": question, "top_k": 3});
            if let Some(mode) = mode {
                body["mode"] = json!(mode);
            }
            let answer = ask(&nova, body).await;
            let got = sources(&answer);
            assert!(got.len() <= 3);
            if !got.iter().any(|s| s == expected) {
                misses.push(format!(
                    "{mode:?} {question:?}: expected {expected}, got {got:?}"
                ));
            }
            let top = &answer["results"][0];
            // A cosine similarity; a fused rank's score is 1/(60 + rank)
            // summed over the two rankings.
            let floor = if mode == Some("dense") {
                0.2
            } else {
                1.0 / 70.0
            };
            assert!(top["score"].as_f64().unwrap() > floor, "{answer}");
            assert!(!top["text"].as_str().unwrap().is_empty());
        }
    }
    assert!(
        misses.is_empty(),
        "retrieval misses:\n{}",
        misses.join("\n")
    );
}

fn walkdir_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { walkdir_count(&p) } else { 1 }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_is_incremental_and_survives_a_restart() {
    let docs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    write(
        docs.path(),
        "guides/install.md",
        "# Install\n\nRun the installer and accept the licence.\n",
    );
    write(
        docs.path(),
        "guides/upgrade.md",
        "# Upgrade\n\nStop the service, replace the binary, start it again.\n",
    );
    write(
        docs.path(),
        "notes/cooking.txt",
        "Simmer the tomato sauce for forty minutes with basil.\n",
    );
    write(
        docs.path(),
        "notes/garden.txt",
        "Water the roses early in the morning.\n",
    );
    let options = || {
        Options::default()
            .loaders()
            .knowledge_dir(docs.path())
            .data_dir(data.path())
    };
    let nova = Nova::start(options()).await;
    let first = last_ingest(&nova).await;
    assert_eq!(counts(&first), [4, 0, 0, 0, 0], "{first}");
    assert!(first["chunks_embedded"].as_u64().unwrap() >= 4);

    // Nothing changed: nothing embedded.
    let again = reload(&nova, json!({})).await;
    assert_eq!(counts(&again), [0, 0, 0, 4, 0], "{again}");
    assert_eq!(again["chunks_embedded"], 0);

    // Add one, change one, remove one.
    write(
        docs.path(),
        "guides/backup.md",
        "# Backup\n\nCopy the data directory to cold storage every night.\n",
    );
    write(
        docs.path(),
        "notes/cooking.txt",
        "Knead the bread dough for ten minutes, then let it rise.\n",
    );
    std::fs::remove_file(docs.path().join("notes/garden.txt")).unwrap();
    let changed = reload(&nova, json!({"collection": "default"})).await;
    assert_eq!(counts(&changed), [1, 1, 1, 2, 0], "{changed}");
    let stats = nova.get_json("/rag/stats").await;
    assert_eq!(stats["documents"], 4, "{stats}");

    let bread = ask(
        &nova,
        json!({"query": "how long to knead bread dough", "top_k": 1}),
    )
    .await;
    assert_eq!(sources(&bread), ["notes/cooking.txt"]);
    assert!(
        bread["results"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Knead")
    );
    let roses = ask(&nova, json!({"query": "watering roses", "top_k": 10})).await;
    assert!(
        !sources(&roses).contains(&"notes/garden.txt".to_owned()),
        "removed file still found: {roses}"
    );
    let sauce = ask(
        &nova,
        json!({"query": "tomato sauce with basil", "top_k": 10}),
    )
    .await;
    assert!(
        sauce["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| !r["text"].as_str().unwrap().contains("tomato")),
        "the old version of a changed file is still indexed: {sauce}"
    );

    // A restart on the same data: nothing re-embedded, same answers.
    drop(nova);
    let nova = Nova::start(options()).await;
    let restarted = last_ingest(&nova).await;
    assert_eq!(counts(&restarted), [0, 0, 0, 4, 0], "{restarted}");
    assert_eq!(restarted["chunks_embedded"], 0);
    let bread_again = ask(
        &nova,
        json!({"query": "how long to knead bread dough", "top_k": 1}),
    )
    .await;
    assert_eq!(sources(&bread_again), ["notes/cooking.txt"]);
    assert_eq!(
        bread_again["results"][0]["score"],
        bread["results"][0]["score"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loader_upgrade_reingests_its_files_and_bad_files_are_reported() {
    let docs = tempfile::tempdir().unwrap();
    write(
        docs.path(),
        "a.note",
        "Alpha notes.\n\nSecond paragraph of alpha.\n",
    );
    write(docs.path(), "b.note", "Beta notes.\n");
    write(
        docs.path(),
        "c.md",
        "# C\n\nA markdown file beside the notes.\n",
    );
    write(docs.path(), "rejected.note", "REJECT this one\n");
    write(docs.path(), "unknown.xyz", "no loader handles this\n");
    let nova = Nova::start(
        Options::default()
            .plugin("markdown", nova_tests::plugin("markdown"))
            .plugin("notes", test_plugin("notes-v1"))
            .knowledge_dir(docs.path()),
    )
    .await;
    let first = last_ingest(&nova).await;
    assert_eq!(counts(&first), [3, 0, 0, 0, 2], "{first}");
    let failures: Vec<&str> = first["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["source"].as_str().unwrap())
        .collect();
    assert_eq!(failures, ["rejected.note", "unknown.xyz"], "{first}");
    let v1 = ask(
        &nova,
        json!({"query": "alpha notes", "top_k": 1, "filter": {"generation": "1"}}),
    )
    .await;
    assert_eq!(sources(&v1), ["a.note"]);

    // Version 2 of the loader arrives: its files are ingested again (the
    // watcher sees the loader change), the markdown file is not.
    nova.install("notes", &test_plugin("notes-v2"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let upgraded = loop {
        let last = last_ingest(&nova).await;
        if last["updated"] == 2 {
            break last;
        }
        assert!(
            Instant::now() < deadline,
            "no re-ingest after the loader upgrade: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(counts(&upgraded), [0, 2, 0, 1, 2], "{upgraded}");
    let v2 = ask(
        &nova,
        json!({"query": "alpha notes", "top_k": 5, "filter": {"generation": "2"}}),
    )
    .await;
    assert_eq!(sources(&v2)[0], "a.note");
    let old = ask(
        &nova,
        json!({"query": "alpha notes", "top_k": 5, "filter": {"generation": "1"}}),
    )
    .await;
    assert_eq!(
        sources(&old),
        Vec::<String>::new(),
        "chunks of the old loader remain: {old}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watcher_ingests_changes_without_a_reload() {
    let docs = tempfile::tempdir().unwrap();
    write(docs.path(), "first.md", "# First\n\nThe first document.\n");
    let nova = Nova::start(Options::default().loaders().knowledge_dir(docs.path())).await;
    write(
        docs.path(),
        "sub/lighthouse.md",
        "# Lighthouse\n\nThe keeper lights the lamp at dusk.\n",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = ask(
            &nova,
            json!({"query": "who lights the lamp at dusk", "top_k": 1}),
        )
        .await;
        if sources(&answer) == ["sub/lighthouse.md"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new file was not ingested: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_and_collections_are_isolated() {
    let docs = tempfile::tempdir().unwrap();
    let team = tempfile::tempdir().unwrap();
    write(
        docs.path(),
        "guides/deploy.md",
        "---\ntitle: Deploying\n---\n# Deploy\n\nShip the release to production with the deploy script.\n",
    );
    write(
        docs.path(),
        "guides/rollback.md",
        "# Rollback\n\nRoll back a bad release to the previous version.\n",
    );
    write(
        docs.path(),
        "reference/api.md",
        "# API\n\nThe release endpoint returns the current version.\n",
    );
    write(
        team.path(),
        "secret-plans.md",
        "# Plans\n\nThe release of the new rocket is planned for spring.\n",
    );
    let nova = Nova::start(Options::default().loaders().knowledge_dir(docs.path()).env(
        "NOVA_COLLECTIONS",
        &format!("team-a={}", team.path().display()),
    ))
    .await;
    let all = ask(&nova, json!({"query": "release", "top_k": 10})).await;
    let mut got = sources(&all);
    got.sort();
    assert_eq!(
        got,
        ["guides/deploy.md", "guides/rollback.md", "reference/api.md"],
        "{all}"
    );

    let exact = ask(
        &nova,
        json!({"query": "release", "filter": {"source": "reference/api.md"}}),
    )
    .await;
    assert_eq!(sources(&exact), ["reference/api.md"]);
    let prefix = ask(
        &nova,
        json!({"query": "release", "filter": {"source_prefix": "guides/"}}),
    )
    .await;
    let mut got = sources(&prefix);
    got.sort();
    assert_eq!(got, ["guides/deploy.md", "guides/rollback.md"]);
    let meta = ask(
        &nova,
        json!({"query": "release", "filter": {"title": "Deploying"}}),
    )
    .await;
    assert_eq!(sources(&meta), ["guides/deploy.md"]);
    assert_eq!(meta["results"][0]["metadata"]["title"], "Deploying");
    let both = ask(
        &nova,
        json!({"query": "release", "filter": {"source_prefix": "guides/", "title": "Nope"}}),
    )
    .await;
    assert_eq!(sources(&both), Vec::<String>::new());

    let team_a = ask(
        &nova,
        json!({"query": "release", "collection": "team-a", "top_k": 10}),
    )
    .await;
    assert_eq!(sources(&team_a), ["secret-plans.md"]);
    let rocket = ask(
        &nova,
        json!({"query": "rocket launch in spring", "top_k": 10}),
    )
    .await;
    assert!(
        !sources(&rocket).contains(&"secret-plans.md".to_owned()),
        "collections leak: {rocket}"
    );

    let stats = nova.get_json("/rag/stats").await;
    let names: Vec<&str> = stats["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "team-a"], "{stats}");

    // A directory ingested on request, into a collection named after it.
    let extra = tempfile::tempdir().unwrap();
    let handbook = extra.path().join("Handbook");
    write(
        &handbook,
        "leave.md",
        "# Leave\n\nEmployees get twenty-five days of paid leave.\n",
    );
    let report = reload(&nova, json!({"dir": handbook})).await;
    assert_eq!(report["collection"], "handbook");
    assert_eq!(report["added"], 1);
    let leave = ask(
        &nova,
        json!({"query": "paid leave days", "collection": "handbook"}),
    )
    .await;
    assert_eq!(sources(&leave), ["leave.md"]);
    // Another directory into a configured collection would empty it.
    let response = nova
        .admin(reqwest::Method::POST, "/rag/reload")
        .json(&json!({"dir": handbook, "collection": "team-a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_clear_errors() {
    let nova = Nova::start(Options::default().loaders()).await;
    let cases = [
        (json!({"query": ""}), 400),
        (json!({"query": "   "}), 400),
        (json!({"query": "x".repeat(5000)}), 400),
        (json!({"query": "q", "top_k": 0}), 400),
        (json!({"query": "q", "top_k": 101}), 400),
        (json!({"query": "q", "top_k": "five"}), 400),
        (json!({"query": "q", "filter": {"page": {"near": 3}}}), 400),
        (json!({"query": "q", "filter": {"page": [1, 2]}}), 400),
        (json!({"query": "q", "mode": "fuzzy"}), 400),
        (json!({"query": "q", "filter": {"a.b": "x"}}), 400),
        (json!({"query": "q", "collection": "../etc"}), 400),
        (json!({"query": "q", "collection": "nosuch"}), 404),
        (json!({"query": "q", "bogus": 1}), 400),
        (json!({"top_k": 3}), 400),
    ];
    for (body, status) in cases {
        let (got, answer) = query(&nova, body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    let response = nova
        .http
        .post(nova.url("/rag/query"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "invalid_json");

    // Reload needs a credential.
    let response = nova
        .anon
        .post(nova.url("/rag/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    for body in [
        json!({"dir": "relative/path"}),
        json!({"dir": "/no/such/dir"}),
        json!({"collection": "nosuch"}),
    ] {
        let response = nova
            .admin(reqwest::Method::POST, "/rag/reload")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 400 | 404),
            "{body}: {}",
            response.status()
        );
    }
    let bad = nova.get_json("/rag/ingests/not-an-id").await;
    assert_eq!(bad["error"]["code"], "invalid_id");
    let missing = nova
        .get_json("/rag/ingests/01a20e38-e6db-74b7-b1be-a1ecd6ab15f7")
        .await;
    assert_eq!(missing["error"]["code"], "not_found");
    let (status, answer) = query(&nova, json!({"query": "q", "filter": {"collection": "x"}})).await;
    assert_eq!(status, 400, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_are_cached_until_the_index_changes() {
    for backend in Backend::all() {
        let docs = tempfile::tempdir().unwrap();
        write(
            docs.path(),
            "owls.md",
            "# Owls\n\nOwls hunt at night and sleep during the day.\n",
        );
        let nova = Nova::start(
            Options::default()
                .loaders()
                .knowledge_dir(docs.path())
                .backend(&backend),
        )
        .await;
        let body = json!({"query": "when do owls hunt", "top_k": 2});
        let first = ask(&nova, body.clone()).await;
        assert_eq!(first["cached"], false, "{}", backend.name());
        let second = ask(&nova, body.clone()).await;
        assert_eq!(second["cached"], true, "{}", backend.name());
        assert_eq!(first["results"], second["results"]);
        let stats = nova.get_json("/rag/stats").await;
        let expected = if backend.name() == "embedded" {
            "memory"
        } else {
            "redis"
        };
        assert_eq!(stats["cache"]["backend"], expected);
        assert!(stats["cache"]["hits"].as_u64().unwrap() >= 1);

        // A change to the index invalidates: the next answer is fresh.
        write(
            docs.path(),
            "bats.md",
            "# Bats\n\nBats also hunt at night, by echolocation.\n",
        );
        let report = reload(&nova, json!({})).await;
        assert_eq!(report["added"], 1);
        let third = ask(&nova, body.clone()).await;
        assert_eq!(
            third["cached"],
            false,
            "{}: stale cache after an ingest",
            backend.name()
        );
        assert_eq!(third["results"].as_array().unwrap().len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_answers_429_with_retry_after() {
    for backend in Backend::all() {
        let nova = Nova::start(
            Options::default()
                .loaders()
                .backend(&backend)
                .env("NOVA_RAG_RATE_LIMIT", "0.5")
                .env("NOVA_RAG_RATE_BURST", "3"),
        )
        .await;
        let mut statuses = Vec::new();
        let mut retry_after = None;
        for _ in 0..5 {
            let response = nova.http.get(nova.url("/rag/stats")).send().await.unwrap();
            statuses.push(response.status().as_u16());
            if response.status() == 429 {
                retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let answer: Value = response.json().await.unwrap();
                assert_eq!(answer["error"]["code"], "rate_limited");
            }
        }
        assert_eq!(statuses, [200, 200, 200, 429, 429], "{}", backend.name());
        let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
        assert!((1..=2).contains(&secs), "{secs}");
        // /health is not limited.
        let health = nova.http.get(nova.url("/health")).send().await.unwrap();
        assert_eq!(health.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_is_503_until_the_first_ingest_finishes() {
    let docs = tempfile::tempdir().unwrap();
    for i in 0..60 {
        write(
            docs.path(),
            &format!("doc{i:02}.md"),
            &format!(
                "# Document {i}\n\n{}\n",
                "Some text about lighthouses, owls and rockets. ".repeat(40)
            ),
        );
    }
    let nova = Nova::start(
        Options::default()
            .loaders()
            .knowledge_dir(docs.path())
            .no_wait(),
    )
    .await;
    let mut saw_starting = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let response = nova.http.get(nova.url("/health")).send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        if status == 503 {
            assert_eq!(body["status"], "starting", "{body}");
            if body["checks"]["knowledge"]["ready"] == false {
                saw_starting = true;
            }
        } else {
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["checks"]["knowledge"]["ready"], true);
            break;
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        saw_starting,
        "/health never reported the index as not ready"
    );
    assert_eq!(last_ingest(&nova).await["added"], 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn pdf_documents_are_searchable_with_their_page() {
    let docs = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("tests/fixtures/nova-overview.pdf"),
        docs.path().join("overview.pdf"),
    )
    .unwrap();
    let nova = Nova::start(Options::default().loaders().knowledge_dir(docs.path())).await;
    let report = last_ingest(&nova).await;
    assert_eq!(counts(&report), [1, 0, 0, 0, 0], "{report}");
    let answer = ask(
        &nova,
        json!({"query": "what are workflow steps", "top_k": 3}),
    )
    .await;
    assert_eq!(sources(&answer)[0], "overview.pdf");
    let page = answer["results"][0]["metadata"]["page"]
        .as_str()
        .expect("page metadata");
    assert!(page.parse::<u32>().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn steps_search_the_knowledge_base() {
    let docs = tempfile::tempdir().unwrap();
    write(
        docs.path(),
        "tea.md",
        "# Tea\n\nSteep green tea at eighty degrees for two minutes.\n",
    );
    write(
        docs.path(),
        "coffee.md",
        "# Coffee\n\nBrew coffee with water just off the boil.\n",
    );
    let nova = Nova::start(
        Options::default()
            .loaders()
            .plugin("knowledge-search", nova_tests::plugin("knowledge-search"))
            .knowledge_dir(docs.path()),
    )
    .await;
    let (status, run) = nova
        .submit(&json!({
            "steps": [{"plugin": "knowledge-search", "config": {"top_k": 1}}],
            "input": {"query": "how hot should the water be for green tea"}
        }))
        .await;
    assert_eq!(status, 202, "{run}");
    let run = nova.wait_run(run["id"].as_str().unwrap(), 30).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let output = run["output"].to_string();
    assert!(output.contains("tea.md"), "{output}");
    assert!(!output.contains("coffee.md"), "{output}");
}

/// `nova_embed_texts_total`, from `/metrics`.
async fn texts_embedded(nova: &Nova) -> u64 {
    let page = nova
        .http
        .get(nova.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    page.lines()
        .find_map(|l| l.strip_prefix("nova_embed_texts_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// A query asked while an ingest embeds ten thousand chunks is answered
/// before them: the embedder serves queries first. (Before, it waited
/// behind every chunk the ingest had queued: 30 s for 40,000.)
#[tokio::test(flavor = "multi_thread")]
async fn queries_go_before_an_ingest() {
    const CHUNKS: u64 = 10_000;
    let docs = tempfile::tempdir().unwrap();
    write(
        docs.path(),
        "guide.md",
        "# Guide\n\nQueries are answered while a large ingest runs.\n",
    );
    let nova = Nova::start(
        Options::default()
            .loaders()
            .plugin("chunks", test_plugin("evil-chunks"))
            .knowledge_dir(docs.path())
            .env("NOVA_RAG_CACHE_TTL_S", "0"),
    )
    .await;
    // A document the hostile loader turns into CHUNKS tiny chunks, as many
    // as its size allows (one per 16 bytes).
    // In a directory of its own, ingested into a second collection.
    let other = tempfile::tempdir().unwrap();
    let mut bulk = format!("{CHUNKS} 1");
    bulk.push_str(&" ".repeat((CHUNKS * 16) as usize - bulk.len()));
    write(other.path(), "bulk.chunks", &bulk);
    let before = texts_embedded(&nova).await;
    let response = nova
        .admin(reqwest::Method::POST, "/rag/reload")
        .json(&json!({"dir": other.path(), "collection": "bulk"}))
        .send()
        .await
        .expect("reload");
    assert_eq!(response.status(), 202);
    let started: Value = response.json().await.expect("JSON");
    let id = started["id"].as_str().expect("id").to_owned();

    // Once the ingest's chunks are being embedded (all of them queued),
    // a query.
    let deadline = Instant::now() + Duration::from_secs(60);
    while texts_embedded(&nova).await == before {
        assert!(Instant::now() < deadline, "the ingest embedded nothing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let answer = ask(
        &nova,
        json!({"query": "Are queries answered during an ingest?", "top_k": 1}),
    )
    .await;
    let at_answer = texts_embedded(&nova).await - before;
    assert_eq!(sources(&answer), ["guide.md"], "{answer}");
    // The query's own text is one of them; the ingest's are far fewer
    // than it had queued.
    assert!(
        at_answer < CHUNKS / 2,
        "{at_answer} texts were embedded before the query's answer"
    );
    let report = wait_ingest(&nova, &id).await;
    assert_eq!(report["chunks_embedded"], CHUNKS, "{report}");
}
