#!/usr/bin/env bash
# schemathesis against a fresh `nova serve` on loopback: every operation of
# its own OpenAPI document, every check, for SECONDS (default 300).
# Usage: scripts/schemathesis.sh NOVA_BINARY [SECONDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$1"
seconds="${2:-300}"
target="${CARGO_TARGET_DIR:-$root/target}"

# A venv of its own, pinned, kept between runs.
venv="$target/schemathesis-venv"
if [[ ! -x "$venv/bin/schemathesis" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet schemathesis==4.32.5
fi

work="$(mktemp -d)"
mkdir -p "$work/data" "$work/plugins" "$work/knowledge"
cp "$root"/build/plugins/*.wasm "$work/plugins/"
printf '# nova\n\nAn automation host.\n' > "$work/knowledge/nova.md"
token="schemathesis-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"

NOVA_BIND="127.0.0.1:$port" NOVA_DATA_DIR="$work/data" NOVA_PLUGINS_DIR="$work/plugins" \
    NOVA_CACHE_DIR="$target/schemathesis-cache" NOVA_ADMIN_TOKEN="$token" NOVA_LOG=warn \
    NOVA_MODEL_DIR="$root/models/all-MiniLM-L6-v2" NOVA_KNOWLEDGE_DIR="$work/knowledge" \
    "$bin" serve > "$work/nova.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 120); do
    curl -sf "$url/health" >/dev/null && break
    kill -0 $pid 2>/dev/null || { cat "$work/nova.log"; exit 1; }
    sleep 1
done
curl -sf -H "Authorization: Bearer $token" "$url/openapi.json" > "$work/openapi.json"

status=0
(cd "$work" && "$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run openapi.json \
    --url "$url" -H "Authorization: Bearer $token" --checks all \
    --max-time "$seconds" --workers 2 --seed 1) || status=$?

# The host must still be up and answering after all of it.
curl -sf "$url/health" >/dev/null || { echo "nova stopped answering" >&2; status=1; }
if grep -q "panicked" "$work/nova.log"; then
    echo "nova logged a panic:" >&2
    grep -A3 "panicked" "$work/nova.log" >&2
    status=1
fi
exit $status
