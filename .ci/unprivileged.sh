#!/usr/bin/env bash
# Runs every exercise's tests (against the solutions) and the harness's own tests as the
# unprivileged user `nobody`, the way a student runs them: no root, so no cgroup and no plain
# unshare; the harness must fall back (user namespace, RLIMIT_NPROC) and still pass.
# The test binaries are copied to a directory nobody can read, since the clone may not be.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/oskata-unprivileged.XXXXXX)
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
cargo test --features solutions --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, os, sys
# Every integration test binary of the kit (one per exercise) and of the harness (its self-tests).
mine = {os.path.abspath(p) for p in ("Cargo.toml", "harness/Cargo.toml")}
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        if os.path.abspath(m["manifest_path"]) in mine:
            print(m["executable"])
' | while read -r exe; do cp "$exe" "$dir/"; done
chmod 755 "$dir"/* 2>/dev/null || true
ls "$dir"
# One binary per exercise, and one per file of the harness's self-tests.
expected=$(( $(grep -c '^\[\[exercises\]\]' manifest.toml) + $(find harness/tests -maxdepth 1 -name '*.rs' | wc -l) ))
found=$(find "$dir" -maxdepth 1 -type f | wc -l)
[ "$found" -eq "$expected" ] || { echo "found $found test binaries, expected $expected"; exit 1; }
tmp="$dir/tmp"
mkdir -m 1777 "$tmp"
status=0
for exe in "$dir"/*; do
    [ -f "$exe" ] || continue
    echo "--- $(basename "$exe") as nobody"
    (cd "$dir" && setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH=/usr/bin:/bin HOME="$dir" TMPDIR="$tmp" "$exe" --test-threads=2) || status=1
done
left=$(find "$tmp" -mindepth 1 -maxdepth 1)
[ -z "$left" ] || { echo "left in the tests' TMPDIR:"; echo "$left"; status=1; }
exit $status
