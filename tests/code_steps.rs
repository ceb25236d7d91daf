//! Code steps: Python and JavaScript snippets supplied at run time, run in
//! the sandbox by the shipped `python` and `javascript` plugins, through a
//! real host over HTTP: `POST /sandbox/run`, workflow steps, the CLI, the
//! limits, and hostile snippets.

use nova_tests::upstream::Upstream;
use nova_tests::{Nova, Options, http_client, run_nova};
use serde_json::{Value, json};

async fn host() -> Nova {
    Nova::start(Options::default().code_steps()).await
}

/// `POST /sandbox/run` as the admin: the status and the answer.
async fn run(nova: &Nova, body: Value) -> (u16, Value) {
    run_as(nova, &nova.http, body).await
}

async fn run_as(nova: &Nova, http: &reqwest::Client, body: Value) -> (u16, Value) {
    let response = http
        .post(nova.url("/sandbox/run"))
        .json(&body)
        .send()
        .await
        .expect("POST /sandbox/run");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON answer"))
}

/// Runs `code` and expects it to succeed: its answer.
async fn ok(nova: &Nova, language: &str, code: &str, input: Value) -> Value {
    let (status, body) = run(
        nova,
        json!({"language": language, "code": code, "input": input}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["error"].is_null(), "{language}: {body}");
    body
}

/// Runs `code` and expects it to fail: its error.
async fn fails(nova: &Nova, body: Value) -> Value {
    let (status, answer) = run(nova, body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["result"].is_null(), "{answer}");
    assert!(answer["error"].is_object(), "{answer}");
    answer["error"].clone()
}

#[tokio::test]
async fn python_computes_over_its_input_with_the_standard_library() {
    let nova = host().await;
    let code = r#"
import json, re, math, statistics, sys
from collections import Counter
from datetime import date, timedelta
from itertools import accumulate

words = re.findall(r"[a-z]+", input["text"].lower())
print("words:", len(words))
print("a warning", file=sys.stderr)
result = {
    "top": Counter(words).most_common(1)[0],
    "mean": statistics.mean(input["numbers"]),
    "running": list(accumulate(input["numbers"])),
    "hypot": math.hypot(3, 4),
    "due": date(2026, 12, 5) + timedelta(days=30),
    "tags": {"only"},
    "echo": json.loads(json.dumps(input["numbers"])),
}
"#;
    let body = ok(
        &nova,
        "python",
        code,
        json!({"text": "The cat and the hat and the bat", "numbers": [1, 2, 3, 4]}),
    )
    .await;
    let result = &body["result"];
    assert_eq!(result["top"], json!(["the", 3]), "{body}");
    assert_eq!(result["mean"], 2.5);
    assert_eq!(result["running"], json!([1, 3, 6, 10]));
    assert_eq!(result["hypot"], 5.0);
    assert_eq!(result["due"], "2027-01-04");
    assert_eq!(result["tags"], json!(["only"]));
    assert_eq!(result["echo"], json!([1, 2, 3, 4]));
    assert_eq!(body["stdout"], "words: 8\n");
    assert_eq!(body["stderr"], "a warning\n");
    assert!(body["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0));

    // main(input) when there is no `result`; the clock is real.
    let body = ok(
        &nova,
        "python",
        "import datetime\ndef main(input):\n    return {'double': input * 2, 'year': datetime.datetime.now().year}\n",
        json!(21),
    )
    .await;
    assert_eq!(body["result"]["double"], 42, "{body}");
    assert!(body["result"]["year"].as_i64().is_some_and(|y| y >= 2026));

    // No result at all is null; an input absent is None.
    let body = ok(&nova, "python", "x = input", Value::Null).await;
    assert_eq!(body["result"], Value::Null);
}

#[tokio::test]
async fn javascript_computes_over_its_input_with_the_ecmascript_builtins() {
    let nova = host().await;
    let code = r#"
const words = input.text.toLowerCase().match(/[a-z]+/g);
const counts = new Map();
for (const w of words) counts.set(w, (counts.get(w) ?? 0) + 1);
const top = [...counts].sort((a, b) => b[1] - a[1])[0];
console.log('words:', words.length, { n: words.length });
console.error('a warning');
result = {
  top,
  sum: input.numbers.reduce((a, b) => a + b, 0),
  hypot: Math.hypot(3, 4),
  due: new Date(Date.UTC(2026, 11, 5) + 30 * 86400e3).toISOString().slice(0, 10),
  unique: [...new Set([3, 1, 3])],
  json: JSON.parse(JSON.stringify({ a: [1] })),
};
"#;
    let body = ok(
        &nova,
        "javascript",
        code,
        json!({"text": "The cat and the hat and the bat", "numbers": [1, 2, 3, 4]}),
    )
    .await;
    let result = &body["result"];
    assert_eq!(result["top"], json!(["the", 3]), "{body}");
    assert_eq!(result["sum"], 10);
    assert_eq!(result["hypot"], 5);
    assert_eq!(result["due"], "2027-01-04");
    assert_eq!(result["unique"], json!([3, 1]));
    assert_eq!(result["json"], json!({"a": [1]}));
    assert_eq!(body["stdout"], "words: 8 {\"n\":8}\n");
    assert_eq!(body["stderr"], "a warning\n");

    // main(input), a top-level return, and await; the clock is real.
    let body = ok(
        &nova,
        "javascript",
        "function main(input) { return { double: input * 2, year: new Date().getFullYear() }; }",
        json!(21),
    )
    .await;
    assert_eq!(body["result"]["double"], 42, "{body}");
    assert!(body["result"]["year"].as_i64().is_some_and(|y| y >= 2026));
    let body = ok(
        &nova,
        "javascript",
        "return input.length;",
        json!([1, 2, 3]),
    )
    .await;
    assert_eq!(body["result"], 3, "{body}");
    let body = ok(
        &nova,
        "javascript",
        "const v = await Promise.resolve(input + 1);\nresult = v;",
        json!(1),
    )
    .await;
    assert_eq!(body["result"], 2, "{body}");
    let body = ok(
        &nova,
        "javascript",
        "async function main(input) { return (await Promise.all([1, 2].map(async (x) => x * input))); }",
        json!(5),
    )
    .await;
    assert_eq!(body["result"], json!([5, 10]), "{body}");
}

#[tokio::test]
async fn a_raised_error_comes_back_with_its_message_and_line() {
    let nova = host().await;
    for (language, code, kind, message, line) in [
        (
            "python",
            "print('before')\nx = 1\ny = x / 0\n",
            "ZeroDivisionError",
            "division by zero",
            3,
        ),
        (
            "python",
            "def f(d):\n    return d['missing']\n\nf({})\n",
            "KeyError",
            "'missing'",
            2,
        ),
        ("python", "x = 1\nif x\n  pass\n", "SyntaxError", "", 2),
        (
            "python",
            "raise ValueError('bad row 7')",
            "ValueError",
            "bad row 7",
            1,
        ),
        (
            "javascript",
            "console.log('before');\nconst o = null;\no.field;\n",
            "TypeError",
            "",
            3,
        ),
        (
            "javascript",
            "function f() {\n  throw new RangeError('bad row 7');\n}\nf();\n",
            "RangeError",
            "bad row 7",
            2,
        ),
        ("javascript", "let x = 1;\nx = ;\n", "SyntaxError", "", 2),
        (
            "javascript",
            "const v = await Promise.resolve(1);\nnull.field;\n",
            "TypeError",
            "",
            2,
        ),
        (
            "javascript",
            "async function main(input) {\n  await null;\n  throw new Error('late');\n}\n",
            "Error",
            "late",
            3,
        ),
    ] {
        let error = fails(
            &nova,
            json!({"language": language, "code": code, "input": null}),
        )
        .await;
        assert_eq!(error["type"], kind, "{language} {code:?}: {error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains(message)),
            "{language} {code:?}: {error}"
        );
        assert_eq!(error["line"], line, "{language} {code:?}: {error}");
    }
    // What was printed before the error is kept.
    let (_, answer) = run(
        &nova,
        json!({"language": "python", "code": "print('before')\n1/0"}),
    )
    .await;
    assert_eq!(answer["stdout"], "before\n", "{answer}");
    // A result that is not JSON says so.
    for (language, code) in [
        ("python", "result = object()"),
        ("python", "result = float('nan')"),
        ("javascript", "result = 10n;"),
    ] {
        let error = fails(&nova, json!({"language": language, "code": code})).await;
        assert_eq!(error["type"], "ResultError", "{language}: {error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("result is not JSON")),
            "{error}"
        );
    }
}

/// Each limit stops only its own call, with a clear error, and the next
/// call is served normally.
#[tokio::test]
async fn hostile_snippets_fail_only_their_own_call() {
    let nova = host().await;
    let hostile: &[(&str, &str, Value, &[&str])] = &[
        // Loops.
        (
            "python",
            "while True:\n    pass\n",
            json!({"timeout_ms": 300}),
            &["TimeLimit"],
        ),
        (
            "javascript",
            "for (;;) {}",
            json!({"timeout_ms": 300}),
            &["TimeLimit"],
        ),
        // Allocates without bound.
        (
            "python",
            "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))\n",
            json!({"memory_mb": 64}),
            &["MemoryLimit", "MemoryError"],
        ),
        (
            "javascript",
            "const chunks = [];\nfor (;;) chunks.push(new Uint8Array(1 << 20).fill(1));",
            json!({"memory_mb": 64}),
            &["MemoryLimit", "InternalError", "RangeError", "Uncaught"],
        ),
        // Recurses without end.
        (
            "python",
            "def f(n):\n    return f(n + 1)\nf(0)\n",
            json!({}),
            &["RecursionError", "StackOverflow"],
        ),
        (
            "javascript",
            "function f(n) { return f(n + 1); }\nf(0);",
            json!({}),
            &["InternalError", "RangeError", "StackOverflow"],
        ),
        // Prints without end.
        (
            "python",
            "while True:\n    print('x' * 1000)\n",
            json!({"timeout_ms": 500}),
            &["TimeLimit"],
        ),
        (
            "javascript",
            "for (;;) console.log('x'.repeat(1000));",
            json!({"timeout_ms": 500}),
            &["TimeLimit"],
        ),
        // Answers more than the output limit (16 MiB).
        (
            "python",
            "result = 'x' * (20 << 20)",
            json!({}),
            &["OutputLimit"],
        ),
        // (JavaScript's copies of a 20 MiB string may pass 128 MiB first.)
        (
            "javascript",
            "result = 'x'.repeat(20 << 20);",
            json!({}),
            &["OutputLimit", "MemoryLimit"],
        ),
    ];
    for (language, code, limits, kinds) in hostile {
        let mut body = json!({"language": language, "code": code});
        for (k, v) in limits.as_object().expect("limits") {
            body[k] = v.clone();
        }
        let error = fails(&nova, body).await;
        assert!(
            kinds.iter().any(|k| error["type"] == *k),
            "{language} {code:?}: expected one of {kinds:?}, got {error}"
        );
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
        // The next call is served normally.
        let body = ok(&nova, language, "result = 1 + 1", Value::Null).await;
        assert_eq!(body["result"], 2, "after {code:?}: {body}");
    }
    // A snippet that replaces the JSON encoder changes only its own
    // module: the step still answers JSON.
    for (language, code) in [
        (
            "python",
            "import json\njson.dumps = lambda *a, **k: 'garbage{'\nresult = [1]",
        ),
        (
            "javascript",
            "JSON.stringify = () => 'garbage{';\nJSON.parse = () => 7;\nresult = [1];",
        ),
    ] {
        let body = ok(&nova, language, code, Value::Null).await;
        assert_eq!(body["result"], json!([1]), "{language}: {body}");
    }
}

#[tokio::test]
async fn captured_output_is_capped_and_the_rest_counted() {
    let nova = host().await;
    for (language, code) in [
        (
            "python",
            "for i in range(2000):\n    print('y' * 99)\nresult = 'done'",
        ),
        (
            "javascript",
            "for (let i = 0; i < 2000; i++) console.log('y'.repeat(99));\nresult = 'done';",
        ),
    ] {
        let (status, body) = run(
            &nova,
            json!({"language": language, "code": code, "capture_bytes": 1000}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"], "done", "{body}");
        let stdout = body["stdout"].as_str().expect("stdout");
        assert!(stdout.starts_with(&"y".repeat(99)), "{language}");
        assert!(
            stdout.ends_with("[199000 more bytes not captured: the limit is 1000]\n"),
            "{language}: {stdout}"
        );
    }
}

/// No files, environment or network unless granted; with a grant, the
/// snippet reaches exactly the allowed host through `wasi:http`.
#[tokio::test]
async fn snippets_reach_no_file_environment_or_network_unless_granted() {
    let up = Upstream::http().await;
    let url = format!("http://127.0.0.1:{}/echo", up.port());
    let nova = host().await;
    let body = ok(
        &nova,
        "python",
        r#"
import os
found = []
for path in ["/etc/passwd", "/", "."]:
    try:
        os.listdir(path) if path != "/etc/passwd" else open(path).read()
        found.append(path)
    except OSError:
        pass
result = {"found": found, "env": dict(os.environ)}
"#,
        Value::Null,
    )
    .await;
    assert_eq!(body["result"], json!({"found": [], "env": {}}), "{body}");
    let error = fails(
        &nova,
        json!({"language": "python", "code": format!("import urllib.request\nurllib.request.urlopen({url:?}).read()")}),
    )
    .await;
    assert!(error["message"].as_str().is_some(), "{error}");
    let error = fails(
        &nova,
        json!({"language": "javascript", "code": format!("const r = await fetch({url:?});\nresult = await r.text();")}),
    )
    .await;
    assert!(error["message"].as_str().is_some(), "{error}");
    assert!(up.requests().is_empty(), "nothing reached the server");

    // An operator grants the host to both code steps.
    let grant = format!(
        "[grants]\nclocks = true\nallowed_outbound_hosts = [\"http://127.0.0.1:{}\"]\n",
        up.port()
    );
    let granted = Nova::start(
        Options::default()
            .plugin("javascript", nova_tests::plugin("javascript"))
            .manifest("javascript", &grant)
            .plugin("python", nova_tests::plugin("python"))
            .manifest("python", &grant),
    )
    .await;
    let body = ok(
        &granted,
        "javascript",
        &format!(
            "const r = await fetch({url:?}, {{ method: 'POST', body: JSON.stringify(input) }});\nresult = {{ status: r.status, body: await r.json() }};"
        ),
        json!({"hello": "world"}),
    )
    .await;
    assert_eq!(body["result"]["status"], 200, "{body}");
    let body = ok(
        &granted,
        "python",
        &format!(
            "import json, urllib.request\nrequest = urllib.request.Request({url:?}, data=json.dumps(input).encode(), headers={{'Content-Type': 'application/json', 'X-Trace': 't-1'}})\nwith urllib.request.urlopen(request) as r:\n    result = {{'status': r.status, 'type': r.headers['content-type'], 'body': json.load(r)}}\n"
        ),
        json!({"hello": "python"}),
    )
    .await;
    assert_eq!(body["result"]["status"], 200, "{body}");
    let seen = up.requests();
    assert_eq!(seen.len(), 2, "both snippets reached the server");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].header("x-trace"), Some("t-1"));
    assert_eq!(seen[1].body, r#"{"hello": "python"}"#);
    // Another host stays out of reach.
    for (language, code) in [
        (
            "javascript",
            "const r = await fetch('http://127.0.0.2:9/');",
        ),
        (
            "python",
            "import urllib.request\nurllib.request.urlopen('http://127.0.0.2:9/')",
        ),
    ] {
        let error = fails(&granted, json!({"language": language, "code": code})).await;
        assert!(error["message"].as_str().is_some(), "{error}");
    }
    let error = fails(
        &granted,
        json!({"language": "python", "code": "import urllib.request\nurllib.request.urlopen('http://127.0.0.2:9/')"}),
    )
    .await;
    assert_eq!(error["type"], "URLError", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("allowed_outbound_hosts")),
        "{error}"
    );
    assert_eq!(up.requests().len(), 2);
}

/// Every caller of a code step shares the plugin's kv, store and
/// knowledge grant: the interpreters import none of nova's interfaces, so
/// no snippet can reach another caller's data or the knowledge base.
#[tokio::test]
async fn snippets_reach_none_of_novas_interfaces() {
    for name in ["python", "javascript"] {
        let wasm = std::fs::read(nova_tests::plugin(name)).expect("component");
        for interface in ["kv", "store", "knowledge", "log"] {
            let import = format!("nova:plugin/{interface}@");
            assert!(
                !wasm.windows(import.len()).any(|w| w == import.as_bytes()),
                "{name} imports {import}"
            );
        }
    }
    let nova = host().await;
    for (language, code) in [
        ("python", "from wit_world.imports import kv"),
        ("python", "from wit_world.imports import knowledge"),
        ("javascript", "await import('nova:plugin/kv@0.1.1');"),
    ] {
        let error = fails(&nova, json!({"language": language, "code": code})).await;
        assert!(error["message"].as_str().is_some(), "{error}");
    }
}

#[tokio::test]
async fn sandbox_run_needs_its_scope() {
    let nova = host().await;
    let body = json!({"language": "python", "code": "result = 1"});
    let anonymous = http_client(None);
    let (status, _) = run_as(&nova, &anonymous, body.clone()).await;
    assert_eq!(status, 401);
    let runner = nova.key_client(&["runs:write", "plugins:invoke"]).await;
    let (status, answer) = run_as(&nova, &runner, body.clone()).await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sandbox:run")),
        "{answer}"
    );
    let sandbox = nova.key_client(&["sandbox:run"]).await;
    let (status, answer) = run_as(&nova, &sandbox, body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"], 1);

    // Bad requests are 400s that name the fault.
    for (bad, says) in [
        (
            json!({"language": "ruby", "code": "1"}),
            "`python` or `javascript`",
        ),
        (json!({"language": "python"}), "code"),
        (
            json!({"language": "python", "code": "1", "timeout_ms": 0}),
            "timeout_ms",
        ),
        (
            json!({"language": "python", "code": "1", "capture_bytes": 2_000_000}),
            "capture_bytes",
        ),
    ] {
        let (status, answer) = run_as(&nova, &sandbox, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{bad}: {answer}"
        );
    }

    // A host without the code steps says what to install.
    let bare = Nova::start(Options::default()).await;
    let (status, answer) = run(&bare, json!({"language": "javascript", "code": "1"})).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "language_unavailable", "{answer}");
}

/// A `template` step renders code that a `python` step then runs; a
/// `javascript` step with its code in its config; a code step's own
/// `timeout_ms` bounds it.
#[tokio::test]
async fn a_workflow_runs_code_a_template_rendered() {
    let nova = Nova::start(
        Options::default()
            .code_steps()
            .plugin("template", nova_tests::plugin("template")),
    )
    .await;
    let (status, submitted) = nova
        .submit(&json!({
            "input": {"field": "price", "factor": 3, "rows": [{"price": 2}, {"price": 5}]},
            "steps": [
                {
                    "id": "render",
                    "plugin": "template",
                    "config": {"template": "result = sum(row[\"{{ field }}\"] * {{ factor }} for row in input[\"rows\"])\nprint(\"rows:\", len(input[\"rows\"]))"},
                },
                {
                    "id": "compute",
                    "plugin": "python",
                    "needs": ["render"],
                    "input": {"code": "$.steps.render.output.text", "input": "$.input"},
                },
                {
                    "id": "describe",
                    "plugin": "javascript",
                    "needs": ["compute"],
                    "input": "$.steps.compute.output",
                    "config": {"code": "result = `total ${input.result} (${input.stdout.trim()})`;"},
                },
            ],
        }))
        .await;
    assert_eq!(status, 202, "{submitted}");
    let id = submitted["id"].as_str().expect("id");
    let run = nova.wait_run(id, 60).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"]["result"], "total 21 (rows: 2)", "{run}");

    // A code step fails with the snippet's message and line; its config's
    // timeout_ms bounds it.
    for (config, says) in [
        (json!({"code": "x = 1\nx.nope()"}), "AttributeError"),
        (
            json!({"code": "while True: pass", "timeout_ms": 200}),
            "200 ms",
        ),
    ] {
        let (status, submitted) = nova
            .submit(&json!({"steps": [{"plugin": "python", "config": config}]}))
            .await;
        assert_eq!(status, 202, "{submitted}");
        let run = nova
            .wait_run(submitted["id"].as_str().expect("id"), 60)
            .await;
        assert_eq!(run["status"], "failed", "{run}");
        let error = run["steps"][0]["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{config}: {run}");
    }
    let (_, submitted) = nova
        .submit(&json!({"steps": [{"plugin": "python", "config": {"code": "x = 1\nx.nope()"}}]}))
        .await;
    let run = nova
        .wait_run(submitted["id"].as_str().expect("id"), 60)
        .await;
    assert!(
        run["steps"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("(line 2)")),
        "{run}"
    );
}

#[tokio::test]
async fn the_cli_runs_a_file_and_prints_what_it_printed_and_its_result() {
    let nova = host().await;
    let dir = tempfile::tempdir().expect("dir");
    let py = dir.path().join("double.py");
    std::fs::write(
        &py,
        "print('doubling')\nresult = {'double': input['n'] * 2}\n",
    )
    .expect("write");
    let url = nova.url("");
    let env = [
        ("NOVA_URL", url.trim_end_matches('/')),
        ("NOVA_ADMIN_TOKEN", nova_tests::TOKEN),
    ];
    let out = run_nova(
        &[
            "run-code",
            py.to_str().expect("path"),
            "--input",
            r#"{"n": 21}"#,
        ],
        &env,
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "doubling\n{\"double\":42}\n");

    // Standard input with --language; an error exits 1 and says where.
    let out = run_nova(
        &["run-code", "-", "--language", "javascript"],
        &env,
        b"const a = 1;\nundefinedThing();\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ReferenceError") && stderr.contains("(line 2)"),
        "{stderr}"
    );

    // --json prints the whole answer.
    let out = run_nova(
        &[
            "run-code",
            py.to_str().expect("path"),
            "--input",
            r#"{"n": 1}"#,
            "--json",
        ],
        &env,
        b"",
    );
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["result"]["double"], 2);
    assert_eq!(answer["stdout"], "doubling\n");

    // A file of no known language is a usage error.
    let out = run_nova(&["run-code", "notes.txt"], &env, b"");
    assert_eq!(out.status.code(), Some(2));
}
