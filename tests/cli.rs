//! The client verbs of the `nova` command (`submit`, `runs`, `ingest`,
//! `query`, `plugins`, `keys`, `health`) against a real host: output, JSON
//! output and exit codes.
//!
//! Each host gets an API key made with `nova keys create` (everything but
//! `admin`), which the plain verbs use through `NOVA_API_KEY`; the admin
//! verbs pass the admin token.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use nova_tests::{Nova, Options, TOKEN, free_port, nova_bin, plugin, run_nova, test_plugin};
use serde_json::{Value, json};

async fn start() -> Nova {
    with_key(
        Nova::start(
            Options::default()
                .plugin("template", plugin("template"))
                .plugin("flaky", test_plugin("flaky"))
                .plugin("slow", test_plugin("slow-step"))
                .env("NOVA_PLUGIN_TIMEOUT_MS", "60000"),
        )
        .await,
    )
}

/// The API key each host's plain verbs use, by the host's URL.
static KEYS: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

/// Makes `host` a key for everything but admin, with `nova keys create`,
/// for [`nova_cli`] to use.
fn with_key(host: Nova) -> Nova {
    let out = nova_admin(
        &host.url,
        &[
            "keys",
            "create",
            "cli-user",
            "--scope",
            "runs:write",
            "--scope",
            "runs:read",
            "--scope",
            "rag:query",
            "--scope",
            "rag:write",
            "--scope",
            "plugins:invoke",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let key = json_out(&out)["key"].as_str().expect("the key").to_owned();
    let mut keys = KEYS.lock().unwrap_or_else(|p| p.into_inner());
    keys.get_or_insert_with(HashMap::new)
        .insert(host.url.trim_end_matches('/').to_owned(), key);
    host
}

fn key_for(url: &str) -> Option<String> {
    let keys = KEYS.lock().unwrap_or_else(|p| p.into_inner());
    keys.as_ref()?.get(url.trim_end_matches('/')).cloned()
}

/// `nova ARGS…` against `url`, with `stdin` fed to it.
fn nova_cli_with(url: &str, args: &[&str], stdin: &[u8]) -> Output {
    let key = key_for(url).unwrap_or_default();
    run_nova(
        &[args, &["--url", url]].concat(),
        &[("NOVA_API_KEY", &key)],
        stdin,
    )
}

fn nova_cli(url: &str, args: &[&str]) -> Output {
    nova_cli_with(url, args, b"")
}

/// `nova ARGS… --token TOKEN` against `url`.
fn nova_admin(url: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    // The token, and not the host's plain key.
    all.extend(["--token", TOKEN, "--api-key="]);
    nova_cli(url, &all)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code, not a signal")
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}

/// A template step that adds `by` to the input's `n`.
fn add(by: u32) -> Value {
    json!({
        "plugin": "template",
        "config": {"template": format!("{{\"n\": {{{{ n + {by} }}}}}}"), "output": "json"}
    })
}

fn write(dir: &Path, name: &str, body: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body.to_string()).expect("write workflow");
    path.to_str().expect("utf-8 path").to_owned()
}

#[tokio::test]
async fn submit_show_list_and_cancel() {
    let host = start().await;
    let url = host.url.as_str();
    let dir = tempfile::tempdir().expect("tmp");
    let file = write(
        dir.path(),
        "two.json",
        &json!({"steps": [add(1), add(10)], "input": {"n": 1}}),
    );

    // --wait: exit 0, the run as `runs show` prints it.
    let out = nova_cli(url, &["submit", &file, "--wait"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("succeeded"), "{text}");
    assert!(text.contains("template"), "{text}");
    assert!(text.contains("STEP"), "{text}");
    assert!(text.contains(r#"{"n":12}"#), "{text}");

    // --wait=SECONDS --json: the final run, as JSON.
    let out = nova_cli(url, &["submit", &file, "--wait=30", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let run = json_out(&out);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["output"], json!({"n": 12}));
    assert_eq!(run["steps"].as_array().map(Vec::len), Some(2));
    for field in ["created_at", "started_at", "finished_at"] {
        assert!(run[field].is_string(), "{field}: {run}");
    }
    let id = run["id"].as_str().expect("id").to_owned();

    // Without --wait: the id and the status; from stdin with `-`.
    let out = nova_cli_with(
        url,
        &["submit", "-", "--json"],
        json!({"steps": [add(1)], "input": {"n": 0}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let answer = json_out(&out);
    assert_eq!(answer["status"], "queued");
    let queued = answer["id"].as_str().expect("id").to_owned();
    let out = nova_cli(url, &["submit", &file]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("queued"), "{}", stdout(&out));

    // runs show, human and JSON.
    let out = nova_cli(url, &["runs", "show", &id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("succeeded"), "{text}");
    assert!(text.contains("0.1.0"), "{text}");
    let out = nova_cli(url, &["runs", "show", &id, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out)["id"], id.as_str());

    // runs list: JSON with the API's fields; a page of one has a cursor.
    host.wait_run(&queued, 30).await;
    let out = nova_cli(url, &["runs", "list", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = json_out(&out);
    let runs = page["runs"].as_array().expect("runs");
    assert!(runs.iter().any(|r| r["id"] == id.as_str()), "{page}");
    assert!(page.get("next_cursor").is_some(), "{page}");
    let out = nova_cli(
        url,
        &["runs", "list", "--limit", "1", "--status", "succeeded"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("STATUS"), "{text}");
    let cursor = text
        .lines()
        .find_map(|l| l.strip_prefix("next cursor: "))
        .unwrap_or_else(|| panic!("no cursor: {text}"))
        .to_owned();
    let out = nova_cli(
        url,
        &[
            "runs", "list", "--limit", "1", "--cursor", &cursor, "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_ne!(json_out(&out)["runs"][0]["id"], cursor.as_str());

    // runs cancel: a running run is cancelled; a finished one is a conflict.
    let slow = write(
        dir.path(),
        "slow.json",
        &json!({"steps": [{"plugin": "slow", "config": {"iterations": 100_000_000_000u64}}]}),
    );
    let out = nova_cli(url, &["submit", &slow, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let slow_id = json_out(&out)["id"].as_str().expect("id").to_owned();
    let out = nova_cli(url, &["runs", "cancel", &slow_id, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let cancelled = json_out(&out);
    assert_eq!(cancelled["id"], slow_id.as_str());
    assert_eq!(cancelled["cancel_requested"], true, "{cancelled}");
    assert_eq!(host.wait_run(&slow_id, 30).await["status"], "cancelled");
    let out = nova_cli(url, &["runs", "cancel", &id]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stderr(&out).contains("run_finished"), "{}", stderr(&out));
}

#[tokio::test]
async fn defs_apply_list_show_run_and_rm() {
    let host = start().await;
    let url = host.url.as_str();
    let dir = tempfile::tempdir().expect("tmp");
    let yaml = dir.path().join("greet.yaml");
    std::fs::write(
        &yaml,
        "description: two branches, joined
steps:
  - id: hello
    needs: []
    plugin: template
    config: {template: 'Hello {{ name }}'}
  - id: shout
    needs: []
    plugin: template
    config: {template: '{{ name|upper }}!'}
  - id: both
    needs: [hello, shout]
    plugin: template
    config: {template: '{\"text\": \"{{ hello.text }} / {{ shout.text }}\"}', output: json}
",
    )
    .expect("write");
    let yaml = yaml.to_str().expect("utf-8");

    // apply: the file's name names it; a second apply is version 2.
    let out = nova_cli(url, &["defs", "apply", yaml]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "definition greet version 1\n");
    let out = nova_cli(url, &["defs", "apply", yaml, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out), json!({"name": "greet", "version": 2}));
    let json_file = write(dir.path(), "adder.json", &json!({"steps": [add(1)]}));
    let out = nova_cli(url, &["defs", "apply", &json_file, "--name", "plus-one"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let out = nova_cli(url, &["defs", "list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        text.contains("greet") && text.contains("two branches, joined"),
        "{text}"
    );
    assert!(text.contains("plus-one"), "{text}");
    let out = nova_cli(url, &["defs", "show", "greet", "--version", "1", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        json_out(&out)["definition"]["steps"][2]["needs"],
        json!(["hello", "shout"])
    );

    // run NAME --input --wait: the run, its steps by id.
    let out = nova_cli(
        url,
        &["run", "greet", "--input", r#"{"name": "ada"}"#, "--wait"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("greet v2"), "{text}");
    assert!(text.contains("shout"), "{text}");
    assert!(text.contains("Hello ada / ADA!"), "{text}");
    let out = nova_cli(
        url,
        &[
            "run",
            "plus-one",
            "--input",
            r#"{"n": 1}"#,
            "--wait=30",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out)["output"], json!({"n": 2}));
    let out = nova_cli(url, &["runs", "list", "--definition", "greet", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out)["runs"].as_array().map(Vec::len), Some(1));

    // Failures: bad input, an unknown name, a bad file.
    let out = nova_cli(url, &["run", "greet", "--input", "{oops"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--input is not JSON"),
        "{}",
        stderr(&out)
    );
    let out = nova_cli(url, &["run", "nope"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("definition_not_found"),
        "{}",
        stderr(&out)
    );
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "steps:\n  - {id: a, plugin: template, if: nope}\n").expect("write");
    let out = nova_cli(url, &["defs", "apply", bad.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("steps[0].if"), "{}", stderr(&out));

    let out = nova_cli(url, &["defs", "rm", "greet"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = nova_cli(url, &["defs", "show", "greet"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

#[tokio::test]
async fn failures_and_exit_codes() {
    let host = start().await;
    let url = host.url.as_str();
    let dir = tempfile::tempdir().expect("tmp");

    // The server refuses the workflow: 1, with its error code.
    let unknown = write(
        dir.path(),
        "unknown.json",
        &json!({"steps": [{"plugin": "no-such-plugin"}]}),
    );
    let out = nova_cli(url, &["submit", &unknown, "--wait"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("invalid_workflow"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("no-such-plugin"), "{}", stderr(&out));

    // A run that fails: 1 with --wait, and the run is still printed.
    let failing = write(
        dir.path(),
        "failing.json",
        &json!({"steps": [{"plugin": "flaky", "config": {"key": "cli", "fail_times": 5}, "retries": 0}]}),
    );
    let out = nova_cli(url, &["submit", &failing, "--wait"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stdout(&out).contains("failed"), "{}", stdout(&out));
    assert!(stderr(&out).contains("failed"), "{}", stderr(&out));

    // An unknown run: 1, with the code; a malformed id too.
    let out = nova_cli(
        url,
        &["runs", "show", "0193f0b2-7c4e-7cc0-8000-000000000000"],
    );
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("run_not_found"), "{}", stderr(&out));
    let out = nova_cli(url, &["runs", "show", "not-an-id"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("invalid_id"), "{}", stderr(&out));

    // Local problems: 2.
    let missing = dir.path().join("missing.json");
    let out = nova_cli(url, &["submit", missing.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("missing.json"), "{}", stderr(&out));
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"steps\": [").expect("write");
    let out = nova_cli(url, &["submit", broken.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not valid JSON"), "{}", stderr(&out));
    let out = nova_cli(url, &["runs", "list", "--limit", "0"]);
    assert_eq!(code(&out), 2, "bad usage");

    // Nothing listening: 2, naming the URL.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let ok = write(dir.path(), "ok.json", &json!({"steps": [add(1)]}));
    for args in [&["submit", ok.as_str()][..], &["runs", "list"]] {
        let out = nova_cli(&nowhere, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&nowhere), "{}", stderr(&out));
    }

    // NOVA_URL stands in for --url.
    let out = Command::new(nova_bin())
        .args(["runs", "list", "--json"])
        .env("NOVA_URL", url)
        .env("NOVA_API_KEY", key_for(url).expect("the host's key"))
        .output()
        .expect("nova");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(json_out(&out)["runs"].is_array());
}

#[tokio::test]
async fn ingest_and_query_the_knowledge_base() {
    let docs = tempfile::tempdir().expect("docs");
    std::fs::write(
        docs.path().join("kettle.md"),
        "# Kettle\n\nDescale the kettle with vinegar once a month.\n",
    )
    .expect("write");
    let host = with_key(Nova::start(Options::default().loaders().knowledge_dir(docs.path())).await);

    // A directory of its own, into a collection named after it, with the
    // admin token from the environment.
    let manuals = tempfile::tempdir().expect("manuals");
    let dir = manuals.path().join("manuals");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(
        dir.join("bike.md"),
        "# Bike\n\nOil the bicycle chain every two hundred kilometres.\n",
    )
    .expect("write");
    let out = Command::new(nova_bin())
        .args([
            "ingest",
            dir.to_str().expect("utf-8"),
            "--url",
            &host.url(""),
        ])
        .env("NOVA_ADMIN_TOKEN", nova_tests::TOKEN)
        .env("NOVA_LOG", "warn")
        .output()
        .expect("nova ingest");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out)
            .contains("collection manuals: 1 added, 0 updated, 0 removed, 0 unchanged, 0 failed"),
        "{}",
        stdout(&out)
    );

    // --json: the finished ingest as the host reports it; --detach --json:
    // the answer to the reload.
    let out = nova_admin(
        &host.url,
        &["ingest", dir.to_str().expect("utf-8"), "--json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let done = json_out(&out);
    assert_eq!(done["running"], false, "{done}");
    assert_eq!(done["report"]["collection"], "manuals");
    assert_eq!(done["report"]["unchanged"], 1, "{done}");
    let out = nova_admin(
        &host.url,
        &["ingest", dir.to_str().expect("utf-8"), "--detach", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out)["collections"], json!(["manuals"]));

    let out = nova_cli(
        &host.url(""),
        &[
            "query",
            "how often to oil a bike chain",
            "--collection",
            "manuals",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("1. "), "{}", stdout(&out));
    assert!(stdout(&out).contains("bike.md — Bike"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("Oil the bicycle chain"),
        "{}",
        stdout(&out)
    );

    let out = nova_cli(
        &host.url(""),
        &["query", "descaling", "--top-k", "1", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let answer = json_out(&out);
    assert_eq!(answer["results"][0]["source"], "kettle.md");
    assert_eq!(answer["results"].as_array().expect("results").len(), 1);

    // Errors: no token is 401 (exit 1); an empty query is 400 (exit 1); no
    // host is exit 2.
    let out = Command::new(nova_bin())
        .args(["ingest", "--url", &host.url("")])
        .env_remove("NOVA_ADMIN_TOKEN")
        .output()
        .expect("nova ingest");
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));
    let out = nova_cli(&host.url(""), &["query", " "]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("query is empty"), "{}", stderr(&out));
    let out = nova_cli("http://127.0.0.1:9", &["query", "anything"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[tokio::test]
async fn collections_and_docs_verbs() {
    let host = with_key(Nova::start(Options::default().loaders()).await);
    let url = host.url("");
    let out = nova_cli(
        &url,
        &[
            "collections",
            "create",
            "manuals",
            "--description",
            "how-tos",
            "--chunk-tokens",
            "96",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("created"), "{}", stdout(&out));
    assert!(stdout(&out).contains("how-tos"), "{}", stdout(&out));
    let out = nova_cli(&url, &["collections", "create", "manuals"]);
    assert!(stdout(&out).starts_with("exists"), "{}", stdout(&out));

    let files = tempfile::tempdir().expect("files");
    let bike = files.path().join("bike.md");
    std::fs::write(
        &bike,
        "# Bike\n\nOil the bicycle chain every 200 km; code B-17 means rust.\n",
    )
    .expect("write");
    let put = |extra: &[&str]| {
        let mut args = vec![
            "docs",
            "put",
            bike.to_str().expect("utf-8"),
            "--collection",
            "manuals",
        ];
        args.extend_from_slice(extra);
        nova_cli(&url, &args)
    };
    let out = put(&["--metadata", r#"{"kind": "bike"}"#]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("added manuals/bike.md"),
        "{}",
        stdout(&out)
    );
    let out = put(&["--metadata", r#"{"kind": "bike"}"#]);
    assert!(
        stdout(&out).starts_with("unchanged manuals/bike.md"),
        "{}",
        stdout(&out)
    );
    let out = put(&["--id", "guides/bike", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out)["id"], "guides/bike");

    let out = nova_cli(&url, &["docs", "list", "--collection", "manuals"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listing = stdout(&out);
    assert!(
        listing.contains("bike.md") && listing.contains("guides/bike"),
        "{listing}"
    );
    assert!(listing.contains("markdown"), "{listing}");
    let out = nova_cli(
        &url,
        &["docs", "list", "--collection", "manuals", "--limit", "1"],
    );
    let first = stdout(&out);
    let next = first
        .lines()
        .find_map(|l| l.strip_prefix("more after: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no next page: {first}"))
        .to_owned();
    let out = nova_cli(
        &url,
        &[
            "docs",
            "list",
            "--collection",
            "manuals",
            "--limit",
            "1",
            "--after",
            &next,
        ],
    );
    let second = stdout(&out);
    assert!(!second.contains("more after"), "{second}");
    // The two pages hold the two documents.
    for id in ["bike.md", "guides/bike"] {
        assert!(
            first.contains(id) != second.contains(id),
            "{id}: {first}{second}"
        );
    }
    let out = nova_cli(
        &url,
        &[
            "docs",
            "show",
            "guides/bike",
            "--collection",
            "manuals",
            "--chunks",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Oil the bicycle chain"),
        "{}",
        stdout(&out)
    );

    let out = nova_cli(
        &url,
        &[
            "query",
            "B-17",
            "--collection",
            "manuals",
            "--mode",
            "keyword",
            "--filter",
            r#"{"kind": "bike"}"#,
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let answer = json_out(&out);
    assert_eq!(answer["mode"], "keyword");
    assert_eq!(answer["results"][0]["source"], "bike.md", "{answer}");
    let out = nova_cli(&url, &["query", "x", "--mode", "fuzzy"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));

    let out = nova_cli(&url, &["collections", "list"]);
    assert!(stdout(&out).contains("manuals"), "{}", stdout(&out));
    let out = nova_cli(&url, &["docs", "rm", "bike.md", "--collection", "manuals"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = nova_cli(&url, &["docs", "rm", "bike.md", "--collection", "manuals"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown_document"),
        "{}",
        stderr(&out)
    );
    let unknown = files.path().join("data.xyz");
    std::fs::write(&unknown, "x").expect("write");
    let out = nova_cli(&url, &["docs", "put", unknown.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = nova_cli(&url, &["collections", "rm", "manuals"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = nova_cli(&url, &["collections", "show", "manuals"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));

    // A key held to one collection, made from the CLI.
    let out = nova_admin(
        &url,
        &[
            "keys",
            "create",
            "reader",
            "--scope",
            "rag:query",
            "--collection",
            "manuals",
            "--json",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out)["collections"], json!(["manuals"]));
}

#[tokio::test]
async fn plugins_verbs() {
    let host = start().await;
    let url = host.url.as_str();
    let dir = tempfile::tempdir().expect("tmp");
    let template = plugin("template");
    let template = template.to_str().expect("utf-8");

    // upload: created, then replaced; JSON is the listing entry.
    let out = nova_admin(url, &["plugins", "upload", "greeter", template]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("plugin greeter 0.1.0 created (step sha256 "),
        "{}",
        stdout(&out)
    );
    let out = nova_admin(url, &["plugins", "upload", "greeter", template, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let entry = json_out(&out);
    assert_eq!(entry["name"], "greeter");
    assert_eq!(entry["status"], "active");

    // list and show, human and JSON.
    let out = nova_admin(url, &["plugins", "list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("NAME "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("greeter ") && l.contains(" step ") && l.contains("active")),
        "{text}"
    );
    let out = nova_admin(url, &["plugins", "list", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names: Vec<Value> = json_out(&out)["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert!(names.contains(&json!("greeter")), "{names:?}");
    let out = nova_admin(url, &["plugins", "show", "greeter"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains(&entry["sha256"].as_str().expect("sha256").to_owned()));
    let out = nova_admin(url, &["plugins", "show", "greeter", "--json"]);
    assert_eq!(json_out(&out)["sha256"], entry["sha256"]);

    // invoke a step: input from stdin, config from --config.
    let mut args = vec![
        "plugins",
        "invoke",
        "greeter",
        "-",
        "--config",
        r#"{"template": "Hi {{ name }}"}"#,
        "--token",
        TOKEN,
    ];
    let out = nova_cli_with(url, &args, br#"{"name": "Ada"}"#);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(r#""text": "Hi Ada""#),
        "{}",
        stdout(&out)
    );
    // The plugin's own log line for the call follows on stderr.
    assert!(
        stderr(&out).contains("debug rendering a"),
        "{}",
        stderr(&out)
    );
    args.push("--json");
    let out = nova_cli_with(url, &args, br#"{"name": "Ada"}"#);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out)["output"], json!({"text": "Hi Ada"}));

    // A plugin failure is the server's: 1, with its code.
    let out = nova_admin(
        url,
        &[
            "plugins",
            "invoke",
            "greeter",
            "--config",
            r#"{"template": "{{ missing }}"}"#,
        ],
    );
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("plugin_invalid_input"),
        "{}",
        stderr(&out)
    );
    // So is a config the step's schema refuses (template needs `template`).
    let out = nova_admin(url, &["plugins", "invoke", "greeter", "--config", "{}"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("invalid_config: config does not match the plugin's schema"),
        "{}",
        stderr(&out)
    );
    // A --config that is not JSON never leaves: 2.
    let out = nova_admin(url, &["plugins", "invoke", "greeter", "--config", "{nope"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--config"), "{}", stderr(&out));

    // reload, remove, then the plugin is gone.
    let out = nova_admin(url, &["plugins", "reload", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out)["outcomes"]["greeter"], "unchanged");
    let out = nova_admin(url, &["plugins", "reload"]);
    assert!(stdout(&out).starts_with("NAME "), "{}", stdout(&out));
    let out = nova_admin(url, &["plugins", "remove", "greeter", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out), json!({"removed": "greeter"}));
    let out = nova_admin(url, &["plugins", "show", "greeter"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("plugin_not_found"),
        "{}",
        stderr(&out)
    );
    let out = nova_admin(url, &["plugins", "upload", "x", "/no/such.wasm"]);
    assert_eq!(code(&out), 2);
    // An upload that outlasts --timeout says the host may still be
    // compiling, not that it cannot be reached.
    let out = nova_admin(
        url,
        &[
            "plugins",
            "upload",
            "slowpoke",
            template,
            "--timeout",
            "0.000001",
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("may still be compiling slowpoke")
            && stderr(&out).contains("--timeout"),
        "{}",
        stderr(&out)
    );

    // Without the token: the server refuses, 1.
    let out = Command::new(nova_bin())
        .args(["plugins", "list", "--url", url])
        .env_remove("NOVA_ADMIN_TOKEN")
        .output()
        .expect("nova");
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));

    // NOVA_ADMIN_TOKEN stands in for --token.
    let out = Command::new(nova_bin())
        .args(["plugins", "list", "--json", "--url", url])
        .env("NOVA_ADMIN_TOKEN", TOKEN)
        .output()
        .expect("nova");
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A loader on a file: one chunk per section; the file name is the source.
    let doc = dir.path().join("guide.md");
    std::fs::write(&doc, "# One\n\nfirst\n\n# Two\n\nsecond\n").expect("write");
    let host = with_key(Nova::start(Options::default().loaders()).await);
    let doc = doc.to_str().expect("utf-8");
    let out = nova_admin(&host.url, &["plugins", "invoke", "markdown", doc]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("CHUNK "), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("(2 chunks from markdown"),
        "{}",
        stdout(&out)
    );
    let out = nova_admin(&host.url, &["plugins", "invoke", "markdown", doc, "--json"]);
    let chunks = json_out(&out);
    assert_eq!(chunks["chunks"][1]["metadata"]["source"], doc, "{chunks}");
}

#[tokio::test]
async fn health_and_usage_exit_codes() {
    let host = start().await;
    let url = host.url.as_str();

    let out = nova_cli(url, &["health", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_out(&out)["status"], "ok");
    let out = nova_cli(url, &["health"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("status   ok\n"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("CHECK"), "{}", stdout(&out));

    // Bad usage is 2, with clap's message; --help is 0 for every verb.
    for args in [
        &["runs", "list", "--bogus"][..],
        &["plugins"],
        &["plugins", "upload", "only-a-name"],
        &["query"],
        &["submit", "x.json", "--wait", "30"],
        &["health", "--timeout", "soon"],
        &["health", "--timeout", "0"],
    ] {
        let out = nova_cli(url, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?}");
    }
    for verb in [
        &["submit"][..],
        &["runs", "show"],
        &["runs", "list"],
        &["runs", "cancel"],
        &["ingest"],
        &["query"],
        &["run-code"],
        &["plugins", "list"],
        &["plugins", "show"],
        &["plugins", "reload"],
        &["plugins", "upload"],
        &["plugins", "remove"],
        &["plugins", "invoke"],
        &["keys", "create"],
        &["keys", "list"],
        &["keys", "revoke"],
        &["health"],
    ] {
        let mut args = verb.to_vec();
        args.push("--help");
        let out = Command::new(nova_bin()).args(&args).output().expect("nova");
        assert_eq!(code(&out), 0, "{args:?}");
        let help = stdout(&out);
        for flag in [
            "--url",
            "--api-key",
            "--token",
            "--json",
            "NOVA_URL",
            "NOVA_API_KEY",
            "NOVA_ADMIN_TOKEN",
        ] {
            assert!(help.contains(flag), "{args:?} --help lacks {flag}: {help}");
        }
    }

    // Nothing listening: 2 for every verb that talks to a host.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    for args in [
        &["health"][..],
        &["plugins", "list"],
        &["query", "anything"],
        &["runs", "cancel", "0193f0b2-7c4e-7cc0-8000-000000000000"],
    ] {
        let out = nova_admin(&nowhere, args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("cannot reach nova"),
            "{}",
            stderr(&out)
        );
    }
    let out = nova_cli("ftp://nowhere", &["health"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("invalid URL"), "{}", stderr(&out));
}

/// `nova keys create|list|revoke`: the key printed once, listed without
/// it, working until revoked.
#[tokio::test]
async fn keys_create_list_and_revoke() {
    let host = Nova::start(Options::default()).await;
    let url = host.url.as_str();
    let out = nova_admin(
        url,
        &["keys", "create", "grafana", "--scope", "metrics:read"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("key"))
        .map(str::trim)
        .expect("the key line")
        .to_owned();
    assert!(key.starts_with("nova_"), "{text}");
    assert!(stderr(&out).contains("shown this once"), "{}", stderr(&out));
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("id"))
        .map(str::trim)
        .expect("the id line")
        .to_owned();

    let out = nova_admin(url, &["keys", "list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listing = stdout(&out);
    assert!(listing.contains("grafana"), "{listing}");
    assert!(listing.contains("metrics:read"), "{listing}");
    assert!(listing.contains(&id), "{listing}");
    assert!(
        !listing.contains(&key),
        "the listing shows the key: {listing}"
    );

    // The key works for what it holds, and not beyond.
    let with_key = |args: &[&str]| {
        Command::new(nova_bin())
            .args(args)
            .args(["--url", url])
            .env_remove("NOVA_ADMIN_TOKEN")
            .env("NOVA_API_KEY", &key)
            .output()
            .expect("nova")
    };
    let out = with_key(&["runs", "list"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("forbidden"), "{}", stderr(&out));
    assert!(stderr(&out).contains("runs:read"), "{}", stderr(&out));

    // A scope that does not exist: refused by the host, 1.
    let out = nova_admin(url, &["keys", "create", "x", "--scope", "everything"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("unknown scope"), "{}", stderr(&out));

    let out = nova_admin(url, &["keys", "revoke", &id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("revoked {id}")));
    let out = with_key(&["runs", "list"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));
    let out = nova_admin(url, &["keys", "revoke", &id]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("key_not_found"), "{}", stderr(&out));
}
