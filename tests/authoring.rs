//! Writing a plugin the way the README says, from an empty directory
//! outside the repository: `nova plugin new`, `nova plugin build`, `nova
//! plugins upload` into a running host, in Rust, Python and JavaScript;
//! `cargo test` on the SDK's in-memory host; `nova plugin test` on built
//! components; and `nova plugin dev` rebuilding and reinstalling an edit,
//! with the plugin's log lines.
//!
//! The toolchains are the real ones: cargo (the project's own target
//! directory under the build's, so dependencies compile once), the
//! componentize-py a project installs into its `.venv` on first build,
//! and jco from the npm registry.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nova_tests::{Nova, Options, TOKEN, nova_bin};
use serde_json::{Value, json};

/// Where Rust plugin projects build: beside nova's own target directory,
/// shared by every run so their dependencies compile once.
fn project_target() -> PathBuf {
    nova_bin()
        .parent()
        .and_then(Path::parent)
        .expect("target/release/nova")
        .join("plugin-projects")
}

/// `nova ARGS…` run in `dir`, as an author would, with its output.
fn nova_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(nova_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("NOVA_URL")
        .env_remove("NOVA_ADMIN_TOKEN")
        .env_remove("NOVA_API_KEY")
        .env("CARGO_TARGET_DIR", project_target())
        .env("NOVA_LOG", "warn")
        .output()
        .expect("run nova")
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A directory outside the repository, as a new author's would be.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("nova-author-")
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir");
    assert!(
        !dir.path().starts_with(nova_tests::root()),
        "the test must run outside the repository"
    );
    dir
}

/// The three commands, from nothing to serving: returns the component.
fn new_build_upload(host: &Nova, dir: &Path, name: &str, lang: &str, kind: &str) -> PathBuf {
    // 1. new
    ok(
        &nova_in(
            dir,
            &["plugin", "new", name, "--lang", lang, "--kind", kind],
        ),
        "nova plugin new",
    );
    assert!(dir.join(name).join("nova-plugin.toml").exists());
    assert!(dir.join(name).join("wit/plugin.wit").exists());
    assert!(dir.join(name).join("README.md").exists());
    // 2. build: the last line is the component's path.
    let stdout = ok(
        &nova_in(dir, &["plugin", "build", name]),
        "nova plugin build",
    );
    let wasm = PathBuf::from(stdout.lines().last().expect("a path").trim());
    assert_eq!(
        wasm,
        dir.join(name).join("build").join(format!("{name}.wasm"))
    );
    assert!(wasm.metadata().expect("the component").len() > 1000);
    // 3. upload into the running host.
    let upload = nova_in(
        dir,
        &[
            "plugins",
            "upload",
            name,
            wasm.to_str().expect("utf-8"),
            "--url",
            &host.url,
            "--token",
            TOKEN,
        ],
    );
    let said = ok(&upload, "nova plugins upload");
    assert!(
        said.contains(&format!("plugin {name} 0.1.0 created")),
        "{said}"
    );
    wasm
}

async fn host() -> Nova {
    // Interpreted components compile for tens of seconds on a busy
    // machine; the first call waits for nothing else.
    Nova::start(Options::default().env("NOVA_PLUGIN_TIMEOUT_MS", "60000")).await
}

/// The greeting step every template makes, checked through the host.
async fn greets(host: &Nova, name: &str) {
    let (status, body) = host
        .invoke_step(
            name,
            &json!({"name": "Ada"}),
            Some(&json!({"greeting": "Hi"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["message"], "Hi, Ada!", "{body}");
    assert_eq!(body["version"], "0.1.0");
    let logs = body["logs"].as_array().expect("logs");
    assert!(
        logs.iter()
            .any(|l| l["level"] == "info"
                && l["message"].as_str().is_some_and(|m| m.contains("Ada"))),
        "the step logs the name at info: {body}"
    );
    // A bad input is the caller's mistake, named, and not a traceback.
    let (status, body) = host.invoke_step(name, &json!({"name": 7}), None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_invalid_input", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("name"), "{message}");
    assert!(!message.contains("Traceback"), "{message}");
    // The template's config.schema.json went into the component (Rust:
    // `CONFIG_SCHEMA`; Python, JavaScript: `nova plugin build`): the
    // listing shows it, and a config that does not match is refused before
    // the call, naming the field.
    let entry = host.entry(name).await.expect("listed");
    assert_eq!(
        entry["config_schema"]["properties"]["greeting"]["type"], "string",
        "{entry}"
    );
    for (config, field) in [
        (json!({"greeting": 5}), "config.greeting"),
        (json!({"greeting": ""}), "config.greeting"),
        (json!({"greting": "Hi"}), "greting"),
    ] {
        let (status, body) = host
            .invoke_step(name, &json!({"name": "Ada"}), Some(&config))
            .await;
        assert_eq!(status, 400, "{config}: {body}");
        assert_eq!(body["error"]["code"], "invalid_config", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("config does not match the plugin's schema: ")
                && message.contains(field),
            "{message}"
        );
    }
}

fn run_plugin_test(dir: &Path, args: &[&str]) -> (String, String) {
    let out = nova_in(dir, &[&["plugin", "test"], args].concat());
    let stdout = ok(&out, "nova plugin test");
    (stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn rust_step_from_nothing_to_serving_with_native_tests_and_dev_loop() {
    let host = host().await;
    let ws = workspace();
    let wasm = new_build_upload(&host, ws.path(), "hello-rs", "rust", "step");
    greets(&host, "hello-rs").await;

    let project = ws.path().join("hello-rs");
    // The project's own tests run natively against the SDK's in-memory
    // host (kv, logs), which a plain native build could not.
    let test = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["test", "--quiet"])
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", project_target())
        .output()
        .expect("cargo test");
    let said = ok(&test, "cargo test in the project");
    assert!(said.contains("3 passed"), "{said}");

    // The component runs in the sandbox without a server.
    let (stdout, stderr) = run_plugin_test(
        ws.path(),
        &[
            wasm.to_str().unwrap(),
            "--input",
            r#"{"name": "Grace"}"#,
            "--json",
        ],
    );
    let answer: Value = serde_json::from_str(&stdout).expect("--json answers JSON");
    assert_eq!(
        answer["output"],
        json!({"message": "Hello, Grace!", "calls": 1})
    );
    assert!(stderr.contains("greeting Grace (call 1)"), "{stderr}");
    assert!(
        stderr.contains("step hello-rs 0.1.0: loaded in"),
        "{stderr}"
    );

    // The dev loop: an edit is rebuilt, reinstalled and serving, and the
    // plugin's log lines follow.
    let mut dev = Command::new(nova_bin())
        .args([
            "plugin", "dev", "hello-rs", "--url", &host.url, "--token", TOKEN,
        ])
        .current_dir(ws.path())
        .env("CARGO_TARGET_DIR", project_target())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nova plugin dev");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stderr = dev.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(e) => panic!("nova plugin dev never said {what:?}: {e}"),
            }
        }
    };
    wait_for("serving hello-rs 0.1.0 (step)");
    wait_for("watching");
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).expect("lib.rs");
    std::fs::write(
        &lib,
        source.replace("greeting: \"Hello\".into()", "greeting: \"Howdy\".into()"),
    )
    .expect("edit lib.rs");
    let served = wait_for("serving hello-rs 0.1.0 (step)");
    assert!(served.contains("after the change"), "{served}");
    let (status, body) = host
        .invoke_step("hello-rs", &json!({"name": "Ada"}), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["message"], "Howdy, Ada!", "{body}");
    // The call's log line reaches the dev loop.
    let line = wait_for("greeting Ada");
    assert!(line.starts_with("hello-rs info"), "{line}");
    let _ = dev.kill();
    let _ = dev.wait();
}

#[tokio::test]
async fn rust_loader_builds_and_runs_in_the_sandbox() {
    let ws = workspace();
    ok(
        &nova_in(
            ws.path(),
            &["plugin", "new", "paras-rs", "--kind", "loader"],
        ),
        "nova plugin new",
    );
    let stdout = ok(
        &nova_in(ws.path(), &["plugin", "build", "paras-rs"]),
        "build",
    );
    assert!(
        stdout.trim_end().ends_with("paras-rs/build/paras-rs.wasm"),
        "{stdout}"
    );
    std::fs::write(
        ws.path().join("notes.txt"),
        "First.\n\nSecond\nparagraph.\n",
    )
    .unwrap();
    let (stdout, stderr) = run_plugin_test(
        ws.path(),
        &["paras-rs", "--document", "notes.txt", "--json"],
    );
    let answer: Value = serde_json::from_str(&stdout).expect("JSON");
    let chunks = answer["chunks"].as_array().expect("chunks");
    assert_eq!(chunks.len(), 2, "{answer}");
    assert_eq!(chunks[1]["text"], "Second\nparagraph.");
    assert_eq!(chunks[1]["metadata"]["paragraph"], "2");
    assert!(stderr.contains("notes.txt: 2 paragraphs"), "{stderr}");
    // A plain cargo build makes the same component, from a project that
    // is its own workspace.
    let plain = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .current_dir(ws.path().join("paras-rs"))
        .env("CARGO_TARGET_DIR", project_target())
        .output()
        .expect("cargo build");
    ok(&plain, "cargo build --target wasm32-wasip2");
    assert!(
        project_target()
            .join("wasm32-wasip2/release/paras_rs.wasm")
            .exists()
    );
    // And so does cargo component (installed by `just setup`): the
    // vendored SDK is no component of its own.
    let component = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["component", "build", "--release", "--quiet"])
        .current_dir(ws.path().join("paras-rs"))
        .env("CARGO_TARGET_DIR", project_target())
        .output()
        .expect("cargo component build");
    ok(&component, "cargo component build");
    assert!(
        project_target()
            .join("wasm32-wasip1/release/paras_rs.wasm")
            .exists()
    );
}

/// An exception the author did not expect (a bug put into `file`)
/// reaches the caller as `failed` with its type and message, not as a
/// trap with a traceback.
async fn unexpected_errors_are_failures(
    host: &Nova,
    ws: &Path,
    name: &str,
    file: &str,
    (from, to): (&str, &str),
    expected: &str,
) {
    let path = ws.join(name).join(file);
    let source = std::fs::read_to_string(&path).expect("source");
    assert!(source.contains(from), "the template changed: {source}");
    std::fs::write(&path, source.replacen(from, to, 1)).expect("edit");
    let stdout = ok(&nova_in(ws, &["plugin", "build", name]), "rebuild");
    let wasm = stdout.lines().last().expect("path").trim().to_owned();
    ok(
        &nova_in(
            ws,
            &[
                "plugins", "upload", name, &wasm, "--url", &host.url, "--token", TOKEN,
            ],
        ),
        "upload again",
    );
    let (status, body) = host.invoke_step(name, &json!({"name": "boom"}), None).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "plugin_failed", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(expected), "{message}");
    assert!(!message.contains("Traceback"), "{message}");
}

/// A loader template of `lang`, built and run on a document in the
/// sandbox: one chunk per paragraph.
fn loader_template_runs(ws: &Path, name: &str, lang: &str) {
    ok(
        &nova_in(
            ws,
            &["plugin", "new", name, "--lang", lang, "--kind", "loader"],
        ),
        "nova plugin new --kind loader",
    );
    ok(
        &nova_in(ws, &["plugin", "build", name]),
        "nova plugin build",
    );
    std::fs::write(ws.join("notes.txt"), "First.\n\nSecond\nparagraph.\n").unwrap();
    let (stdout, _) = run_plugin_test(ws, &[name, "--document", "notes.txt", "--json"]);
    let answer: Value = serde_json::from_str(&stdout).expect("JSON");
    let chunks = answer["chunks"].as_array().expect("chunks");
    assert_eq!(chunks.len(), 2, "{answer}");
    assert_eq!(chunks[1]["text"], "Second\nparagraph.", "{answer}");
}

#[tokio::test]
async fn python_step_from_nothing_to_serving() {
    let host = host().await;
    let ws = workspace();
    new_build_upload(&host, ws.path(), "hello-py", "python", "step");
    greets(&host, "hello-py").await;
    unexpected_errors_are_failures(
        &host,
        ws.path(),
        "hello-py",
        "app.py",
        (
            "    name = input.get(\"name\", \"world\")\n",
            "    name = input.get(\"name\", \"world\")\n    if name == \"boom\":\n        1 / 0\n",
        ),
        "ZeroDivisionError: division by zero",
    )
    .await;
    loader_template_runs(ws.path(), "paras-py", "python");
}

#[tokio::test]
async fn javascript_step_from_nothing_to_serving() {
    let host = host().await;
    let ws = workspace();
    new_build_upload(&host, ws.path(), "hello-js", "js", "step");
    greets(&host, "hello-js").await;
    unexpected_errors_are_failures(
        &host,
        ws.path(),
        "hello-js",
        "src/greet.js",
        (
            "  const name = input.name ?? 'world';\n",
            "  const name = input.name ?? 'world';\n  if (name === 'boom') null.boom();\n",
        ),
        "TypeError",
    )
    .await;
    loader_template_runs(ws.path(), "paras-js", "js");
}

/// The examples are standalone projects with their own copy of the
/// helpers a new project gets: the same as the templates'.
#[test]
fn examples_vendor_the_templates_helpers() {
    let root = nova_tests::root();
    for (example, helper) in [
        ("examples/python/step", "python/common/nova_plugin.py"),
        ("examples/python/loader", "python/common/nova_plugin.py"),
        ("examples/js/step", "js/common/src/nova.js"),
        ("examples/js/loader", "js/common/src/nova.js"),
        ("examples/js/step", "js/common/bundle.config.js"),
        ("examples/js/loader", "js/common/bundle.config.js"),
    ] {
        let template = root.join("templates/plugin").join(helper);
        let file = helper.split_once("/common/").expect("common").1;
        let copy = root.join(example).join(file);
        assert_eq!(
            std::fs::read_to_string(&copy).expect("the example's copy"),
            std::fs::read_to_string(&template).expect("the template's"),
            "{} differs from {}: copy the template's",
            copy.display(),
            template.display()
        );
    }
    let wit = std::fs::read_to_string(root.join("wit/v0.1/plugin.wit")).expect("wit");
    let copies = ["python/step", "python/loader", "js/step", "js/loader"]
        .map(|example| root.join("examples").join(example))
        .into_iter()
        // The code steps' vendored contract, too.
        .chain(["python", "javascript"].map(|p| root.join("plugins").join(p)));
    for project in copies {
        let copy = project.join("wit/plugin.wit");
        assert_eq!(
            std::fs::read_to_string(&copy).expect("wit copy"),
            wit,
            "{}",
            copy.display()
        );
    }
}

/// The examples under examples/, in the repository: each builds with
/// `nova plugin build` and does its job in the sandbox.
#[test]
fn examples_build_and_run() {
    let examples = nova_tests::root().join("examples");
    let here = examples.as_path();
    let built = |dir: &str| {
        let stdout = ok(
            &nova_in(here, &["plugin", "build", dir]),
            &format!("build {dir}"),
        );
        assert!(stdout.trim_end().ends_with(".wasm"), "{stdout}");
    };
    let run = |args: &[&str]| -> Value {
        let (stdout, _) = run_plugin_test(here, &[args, &["--json"]].concat());
        serde_json::from_str(&stdout).expect("JSON")
    };

    built("python/step");
    let out = run(&[
        "python/step",
        "--input",
        r#"{"text": "The cat and the hat"}"#,
        "--config",
        r#"{"top": 2}"#,
    ]);
    assert_eq!(out["output"]["words"], 5, "{out}");
    assert_eq!(out["output"]["unique"], 4, "{out}");
    assert_eq!(out["output"]["top"][0]["word"], "the", "{out}");

    built("python/loader");
    let csv = std::env::temp_dir().join(format!("nova-people-{}.csv", std::process::id()));
    std::fs::write(&csv, "name,age\nAda,36\nGrace,45\n").unwrap();
    let out = run(&[
        "python/loader",
        "--document",
        csv.to_str().unwrap(),
        "--source",
        "people.csv",
    ]);
    let chunks = out["chunks"].as_array().expect("chunks");
    assert_eq!(chunks.len(), 2, "{out}");
    assert!(
        chunks[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Ada"),
        "{out}"
    );

    built("js/step");
    let out = run(&["js/step", "--input", r#"{"text": "Héllo, Wörld!"}"#]);
    assert_eq!(out["output"]["slug"], "hello-world", "{out}");

    built("js/loader");
    let jsonl = std::env::temp_dir().join(format!("nova-notes-{}.jsonl", std::process::id()));
    std::fs::write(&jsonl, "{\"a\": 1}\n{\"b\": 2}\n").unwrap();
    let out = run(&[
        "js/loader",
        "--document",
        jsonl.to_str().unwrap(),
        "--source",
        "notes.jsonl",
    ]);
    assert_eq!(out["chunks"].as_array().map(Vec::len), Some(2), "{out}");
    let _ = std::fs::remove_file(csv);
    let _ = std::fs::remove_file(jsonl);
}

#[test]
fn new_refuses_what_it_cannot_make() {
    let ws = workspace();
    let out = nova_in(ws.path(), &["plugin", "new", "Bad_Name"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a plugin name"));
    let out = nova_in(ws.path(), &["plugin", "new", "serde"]);
    assert_eq!(out.status.code(), Some(2));
    // A name like a crate the project does not depend on is fine.
    ok(&nova_in(ws.path(), &["plugin", "new", "csv"]), "new csv");
    // Not over an existing project.
    let out = nova_in(ws.path(), &["plugin", "new", "csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    // build outside a project says what to do.
    let out = nova_in(ws.path(), &["plugin", "build"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nova plugin new"));
}
