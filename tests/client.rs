//! nova-client against real hosts: retries across a host that is down
//! then started, errors that are not retried, the `/rag` rate limit's
//! `Retry-After`, and a typed call for every route.

use std::time::Duration;

use nova_client::{
    Client, CodeLanguage, CollectionSettings, Definition, Document, Error, HealthStatus, Invoke,
    ListRuns, NewKey, PluginKind, Query, Reload, ReloadOutcome, RetryPolicy, RunStatus, SandboxRun,
    SearchMode, StartRun, Step, Workflow,
};
use nova_tests::{Nova, Options, TOKEN, free_port, plugin};
use serde_json::json;

/// Patient enough to outlast a host's start; short waits between tries.
fn patient(url: &str) -> Client {
    Client::builder(url)
        .token(TOKEN)
        .retry(RetryPolicy {
            max_attempts: 400,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(300),
        })
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_made_while_the_host_is_down_succeeds_once_it_is_up() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let client = patient(&url);

    // Nothing listens yet: the call keeps retrying the connection.
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.health().await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut host = Nova::start(
        Options::default()
            .port(port)
            .plugin("template", plugin("template")),
    )
    .await;
    let health = call.await.expect("join").expect("health after retrying");
    assert!(health.attempts > 1, "the first try found no host");
    assert!(
        matches!(
            health.value.status,
            HealthStatus::Ok | HealthStatus::Starting
        ),
        "{}",
        health.raw
    );

    // Stop the host, start a call, start a new host on the same port: the
    // call lands on the new one. The idempotency key makes the submission
    // safe to send again.
    host.kill();
    let workflow = Workflow {
        steps: vec![Step::new("template", json!({"template": "hi {{ n }}"}))],
        input: Some(json!({"n": 1}).into()),
        idempotency_key: Some("across-a-restart".into()),
        ..Workflow::default()
    };
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            // Wait for readiness first: a host that just listens has not
            // loaded its plugins, and would refuse the step as unknown.
            client.wait_ready(Duration::from_secs(120)).await?;
            client.submit(&workflow).await
        }
    });
    let _host = Nova::start(
        Options::default()
            .port(port)
            .plugin("template", plugin("template")),
    )
    .await;
    let submitted = call.await.expect("join").expect("submitted after restart");
    assert!(submitted.value.created);
    let run = client
        .wait(&submitted.value.id, Duration::from_secs(30))
        .await
        .expect("run");
    assert_eq!(run.value.status, RunStatus::Succeeded, "{}", run.raw);
    assert_eq!(run.value.output.to_value(), json!({"text": "hi 1"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_errors_are_answered_after_one_attempt_with_code_and_message() {
    let host = Nova::start(Options::default().plugin("template", plugin("template"))).await;
    let client = patient(&host.url);

    // An unknown plugin: 400, not retried even with a patient policy and
    // an idempotency key.
    let e = client
        .submit(&json!({"steps": [{"plugin": "no-such-plugin"}], "idempotency_key": "k1"}))
        .await
        .expect_err("refused");
    match &e {
        Error::Api {
            status,
            code,
            message,
            attempts,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code, "invalid_workflow");
            assert!(message.contains("no-such-plugin"), "{message}");
            assert_eq!(*attempts, 1);
        }
        other => panic!("not an API error: {other:?}"),
    }
    assert_eq!(e.exit_code(), 1);

    let e = client
        .run("0193f0b2-7c4e-7cc0-8000-000000000000")
        .await
        .expect_err("unknown run");
    assert_eq!(e.status(), Some(404));
    assert_eq!(e.code(), Some("run_not_found"));
    assert_eq!(e.attempts(), Some(1));

    // No credentials: 401, once, on every route but /health.
    let anonymous = Client::new(&host.url).expect("client");
    let e = anonymous.plugins_list().await.expect_err("no token");
    assert_eq!(e.code(), Some("unauthorized"));
    assert_eq!(e.attempts(), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_calls_wait_for_retry_after() {
    let host = Nova::start(
        Options::default()
            .env("NOVA_RAG_RATE_LIMIT", "1")
            .env("NOVA_RAG_RATE_BURST", "1"),
    )
    .await;

    // Without retries the refusal comes back with its Retry-After.
    let once = Client::builder(&host.url)
        .token(TOKEN)
        .retry(RetryPolicy::none())
        .build()
        .expect("client");
    let mut refusal = None;
    for _ in 0..10 {
        if let Err(e) = once.rag_stats().await {
            refusal = Some(e);
            break;
        }
    }
    match refusal {
        Some(Error::Api {
            status: 429,
            code,
            retry_after,
            attempts: 1,
            ..
        }) => {
            assert_eq!(code, "rate_limited");
            assert!(retry_after.is_some_and(|d| d >= Duration::from_secs(1)));
        }
        other => panic!("expected a 429 within 10 calls at 1 request/s: {other:?}"),
    }

    // Three calls at once with one token a second: every call succeeds,
    // and the ones refused at first waited for Retry-After and tried again.
    let client = Client::builder(&host.url)
        .token(TOKEN)
        .retry(RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(3),
        })
        .build()
        .expect("client");
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.rag_stats().await })
        })
        .collect();
    let mut attempts = Vec::new();
    for call in calls {
        let stats = call.await.expect("join").expect("stats after retrying");
        assert!(stats.value.ready);
        attempts.push(stats.attempts);
    }
    assert!(attempts.iter().any(|a| *a > 1), "{attempts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_has_a_typed_call() {
    let docs = tempfile::tempdir().expect("docs");
    std::fs::write(
        docs.path().join("tea.md"),
        "# Tea\n\nSteep green tea for two minutes at eighty degrees.\n",
    )
    .expect("write");
    let host = Nova::start(Options::default().loaders().code_steps()).await;
    let client = &host.client;

    let health = client.health().await.expect("health");
    assert!(health.value.is_ok(), "{}", health.raw);
    assert!(health.value.checks.plugins.ready);
    assert_eq!(health.value.checks.store.backend, "sqlite");

    // Plugins: upload (created, then replaced), show, list, invoke, reload,
    // remove.
    let wasm = std::fs::read(plugin("template")).expect("template.wasm");
    let uploaded = client
        .plugin_upload("greeter", wasm.clone())
        .await
        .expect("upload");
    assert!(uploaded.value.created);
    assert_eq!(uploaded.status, 201);
    assert_eq!(uploaded.value.plugin.kind, Some(PluginKind::Step));
    let again = client
        .plugin_upload("greeter", wasm)
        .await
        .expect("upload again");
    assert!(!again.value.created);
    let shown = client.plugin_show("greeter").await.expect("show");
    assert_eq!(shown.value.sha256, uploaded.value.plugin.sha256);
    assert!(shown.value.limits.is_some_and(|l| l.timeout_ms > 0));
    let listing = client.plugins_list().await.expect("list");
    let names: Vec<&str> = listing
        .value
        .plugins
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert!(
        names.contains(&"greeter") && names.contains(&"markdown"),
        "{names:?}"
    );
    let invoked = client
        .plugin_invoke(
            "greeter",
            br#"{"name": "Ada"}"#.to_vec(),
            &Invoke {
                config: Some(json!({"template": "Hello {{ name }}!"})),
                source: None,
            },
        )
        .await
        .expect("invoke step");
    assert_eq!(invoked.value.kind, PluginKind::Step);
    assert_eq!(
        invoked.value.output.map(|o| o.to_value()),
        Some(json!({"text": "Hello Ada!"}))
    );
    let chunks = client
        .plugin_invoke(
            "markdown",
            b"# One\n\nfirst\n\n# Two\n\nsecond\n".to_vec(),
            &Invoke {
                config: None,
                source: Some("doc.md".into()),
            },
        )
        .await
        .expect("invoke loader");
    assert_eq!(chunks.value.kind, PluginKind::Loader);
    let loaded = chunks.value.chunks.unwrap_or_default();
    assert_eq!(loaded.len(), 2, "{}", chunks.raw);
    assert_eq!(loaded[0].metadata["source"], "doc.md");
    // The code sandbox: a snippet's result and output, and its error.
    let ran = client
        .sandbox_run(&SandboxRun {
            language: CodeLanguage::Javascript,
            code: "console.log('hi');\nresult = input.n + 1;".into(),
            input: Some(json!({"n": 41}).into()),
            timeout_ms: Some(5_000),
            memory_mb: None,
            capture_bytes: None,
        })
        .await
        .expect("sandbox run");
    assert_eq!(ran.value.result.to_value(), json!(42), "{}", ran.raw);
    assert_eq!(ran.value.stdout, "hi\n");
    assert_eq!(ran.value.error, None);
    let failed = client
        .sandbox_run(&SandboxRun {
            language: CodeLanguage::Python,
            code: "x = 1\nx / 0".into(),
            input: None,
            timeout_ms: None,
            memory_mb: None,
            capture_bytes: None,
        })
        .await
        .expect("sandbox run");
    let error = failed.value.error.expect("an error");
    assert_eq!(error.kind, "ZeroDivisionError");
    assert_eq!(error.line, Some(2));
    let reloaded = client.plugins_reload().await.expect("reload");
    assert_eq!(
        reloaded.value.outcomes.get("greeter"),
        Some(&ReloadOutcome::Unchanged)
    );

    // Workflows: submit, wait, run, list, cancel.
    let submitted = client
        .submit(&Workflow {
            steps: vec![Step::new("greeter", json!({"template": "{{ n + 1 }}"}))],
            input: Some(json!({"n": 41}).into()),
            ..Workflow::default()
        })
        .await
        .expect("submit");
    let id = submitted.value.id.clone();
    let run = client
        .wait(&id, Duration::from_secs(30))
        .await
        .expect("wait");
    assert_eq!(run.value.status, RunStatus::Succeeded, "{}", run.raw);
    assert_eq!(run.value.output.to_value(), json!({"text": "42"}));
    assert_eq!(run.value.steps[0].plugin_version.as_deref(), Some("0.1.0"));
    let now = client.run(&id).await.expect("run");
    assert_eq!(now.value.finished_at, run.value.finished_at);
    let page = client
        .list(&ListRuns {
            status: Some(RunStatus::Succeeded),
            limit: Some(5),
            output: true,
            ..ListRuns::default()
        })
        .await
        .expect("list");
    assert_eq!(page.value.runs[0].id, id);
    assert_eq!(page.value.runs[0].step_count, 1);
    assert_eq!(
        page.value.runs[0].output.as_ref().map(|o| o.to_value()),
        Some(json!({"text": "42"}))
    );
    assert_eq!(page.value.runs[0].input, None, "input only on request");
    let e = client.cancel(&id).await.expect_err("finished");
    assert_eq!(e.code(), Some("run_finished"));
    let e = client.retry(&id).await.expect_err("succeeded");
    assert_eq!(e.code(), Some("run_not_retryable"));
    let again = client.rerun(&id).await.expect("rerun");
    assert!(again.value.created);
    assert_ne!(again.value.id, id);

    // Definitions: save (JSON and YAML), read, list, run, delete.
    let definition = Definition {
        steps: vec![Step::new("greeter", json!({"template": "{{ n * 2 }}"}))],
        ..Definition::default()
    };
    let saved = client
        .definition_save("double", &definition)
        .await
        .expect("save");
    assert_eq!((saved.status, saved.value.version), (201, 1));
    let yaml = b"steps:\n  - plugin: greeter\n    config: {template: '{{ n * 3 }}'}\n".to_vec();
    let saved = client
        .definition_save_text("double", yaml, true)
        .await
        .expect("save yaml");
    assert_eq!(saved.value.version, 2);
    let first = client.definition("double", Some(1)).await.expect("get");
    assert_eq!(first.value.definition, definition);
    let listed = client.definitions().await.expect("list");
    assert_eq!(listed.value.definitions[0].version, 2);
    let started = client
        .run_definition(
            "double",
            &StartRun {
                input: Some(json!({"n": 5}).into()),
                ..StartRun::default()
            },
        )
        .await
        .expect("run");
    assert!(started.value.created);
    let run = client
        .wait(&started.value.id, Duration::from_secs(30))
        .await
        .expect("wait");
    assert_eq!(
        run.value.output.to_value(),
        json!({"text": "15"}),
        "{}",
        run.raw
    );
    assert_eq!(run.value.definition.as_deref(), Some("double"));
    client.definition_delete("double").await.expect("delete");
    let e = client.definition("double", None).await.expect_err("gone");
    assert_eq!(e.code(), Some("definition_not_found"));

    let removed = client.plugin_remove("greeter").await.expect("remove");
    assert_eq!(removed.value.removed, "greeter");
    let e = client.plugin_show("greeter").await.expect_err("gone");
    assert_eq!(e.code(), Some("plugin_not_found"));

    // Knowledge base: reload a directory, follow the ingest, query, stats.
    let started = client
        .rag_reload(&Reload {
            dir: Some(docs.path().display().to_string()),
            collection: Some("drinks".into()),
        })
        .await
        .expect("reload");
    assert_eq!(started.value.collections, ["drinks"]);
    let report = loop {
        let progress = client.rag_ingest(&started.value.id).await.expect("ingest");
        if progress.value.is_finished() {
            break progress.value.report.expect("report");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((report.added, report.failed), (1, 0), "{report:?}");
    let mut query = Query::new("how long should green tea steep?");
    query.top_k = Some(1);
    query.collection = Some("drinks".into());
    let answer = client.rag_query(&query).await.expect("query");
    assert_eq!(answer.value.results.len(), 1);
    assert_eq!(answer.value.results[0].source, "tea.md");
    let stats = client.rag_stats().await.expect("stats");
    assert!(
        stats
            .value
            .collections
            .iter()
            .any(|c| c.name == "drinks" && c.documents == 1),
        "{}",
        stats.raw
    );
    assert_eq!(stats.value.model.dimensions, 384);

    // Collections and documents: create, upload, list, read, search in a
    // mode, delete; a key held to one collection.
    let made = client
        .collection_create(
            "notes",
            &CollectionSettings {
                description: Some("team notes".into()),
                ..CollectionSettings::default()
            },
        )
        .await
        .expect("create collection");
    assert!(made.value.created);
    assert_eq!(made.status, 201);
    let again = client
        .collection_create("notes", &CollectionSettings::default())
        .await
        .expect("create again");
    assert!(!again.value.created);
    assert_eq!(
        again.value.settings.description.as_deref(),
        Some("team notes")
    );
    let document = Document {
        body: b"# Cocoa\n\nCocoa comes from roasted cacao beans; error K-7731 means wet beans.\n"
            .to_vec(),
        media_type: "text/markdown".into(),
        loader: None,
        metadata: [("year".to_owned(), json!(2024))].into(),
    };
    let saved = client
        .document_put("notes", "guides/cocoa.md", &document)
        .await
        .expect("put document");
    assert!(
        saved.value.created && saved.value.embedded > 0,
        "{}",
        saved.raw
    );
    let same = client
        .document_put("notes", "guides/cocoa.md", &document)
        .await
        .expect("put again");
    assert_eq!((same.value.created, same.value.embedded), (false, 0));
    let page = client
        .documents("notes", None, Some(10))
        .await
        .expect("list");
    assert_eq!(page.value.documents[0].id, "guides/cocoa.md");
    let shown = client
        .document("notes", "guides/cocoa.md", true)
        .await
        .expect("show");
    assert_eq!(shown.value.metadata["year"], json!(2024));
    assert!(shown.value.chunk_list.is_some_and(|c| !c.is_empty()));
    let mut query = Query::new("K-7731");
    query.collection = Some("notes".into());
    query.mode = Some(SearchMode::Keyword);
    query.filter = [("year".to_owned(), json!({"gte": 2020}))].into();
    let answer = client.rag_query(&query).await.expect("keyword query");
    assert_eq!(answer.value.mode, SearchMode::Keyword);
    assert_eq!(answer.value.results[0].source, "guides/cocoa.md");
    let listed = client.collections().await.expect("collections");
    assert!(listed.value.collections.iter().any(|c| c.name == "notes"));
    let one = client.collection("notes").await.expect("collection");
    assert_eq!(one.value.documents, 1);
    let held = client
        .key_create_with(&NewKey {
            name: "notes-only".into(),
            scopes: vec!["rag:query".into()],
            collections: Some(vec!["notes".into()]),
        })
        .await
        .expect("key");
    assert_eq!(held.value.collections, Some(vec!["notes".to_owned()]));
    let keys = client.keys_list().await.expect("keys");
    assert!(
        keys.value
            .keys
            .iter()
            .any(|k| k.collections == Some(vec!["notes".to_owned()]))
    );
    client
        .document_delete("notes", "guides/cocoa.md")
        .await
        .expect("delete document");
    let e = client
        .document("notes", "guides/cocoa.md", false)
        .await
        .expect_err("gone");
    assert_eq!(e.code(), Some("unknown_document"));
    client
        .collection_delete("notes")
        .await
        .expect("delete collection");
    let e = client.collection("notes").await.expect_err("gone");
    assert_eq!(e.code(), Some("unknown_collection"));
}
