#!/usr/bin/env bash
# Grades a copy of the kit in which one exercise loops forever and another does not compile.
# The grader must report the loop as timed out, the broken file as not compiling (with the
# compiler's message) and still grade the rest; afterwards no process, System V IPC object or
# scratch directory of the run may be left on the machine. The grader runs with a TMPDIR of
# its own, which must be empty afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
copy=$(mktemp -d /tmp/kit-broken.XXXXXX)
tmp=$(mktemp -d /tmp/kit-broken-tmp.XXXXXX)
trap 'rm -rf "$copy" "$tmp"' EXIT
git ls-files -z | xargs -0 cp --parents -t "$copy"

ipc() { cat /proc/sysvipc/shm /proc/sysvipc/sem /proc/sysvipc/msg; }
before=$(ipc)

sed -i 's/todo!()/loop { std::hint::spin_loop() }/' "$copy/exercises/processes/fork_basics.rs"
echo 'fn broken( {' >>"$copy/exercises/ipc/pipe_direction.rs"

set +e
(cd "$copy" && TMPDIR="$tmp" CARGO_TARGET_DIR="$root/target/broken-kit" cargo grade --json) >"$root/target/ci/broken.json"
code=$?
set -e
[ "$code" -eq 1 ] || { echo "cargo grade on the broken kit exited $code, expected 1"; exit 1; }
python3 .ci/check_grade.py "$root/target/ci/broken.json" not_started \
    processes/fork_basics=timed_out ipc/pipe_direction=does_not_compile
python3 - "$root/target/ci/broken.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
broken = next(e for e in report["exercises"] if e["id"] == "ipc/pipe_direction")
assert "pipe_direction.rs" in (broken.get("compiler_message") or ""), broken
print("the compiler's message names the broken file")
PY

left=$(pgrep -af "$copy|target/broken-kit" | grep -v pgrep || true)
[ -z "$left" ] || { echo "processes left behind:"; echo "$left"; exit 1; }
after=$(ipc)
[ "$before" = "$after" ] || { echo "IPC objects left behind:"; diff <(echo "$before") <(echo "$after"); exit 1; }
files=$(find "$tmp" -mindepth 1 -maxdepth 1 -name 'oskata-*')
[ -z "$files" ] || { echo "left in the grader's TMPDIR:"; echo "$files"; exit 1; }
echo "nothing left behind"
