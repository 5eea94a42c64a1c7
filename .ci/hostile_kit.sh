#!/usr/bin/env bash
# Grades, through `cargo grade`, a copy of the kit in which five exercises are the reference
# solution plus one hostile act each, done when the student's function is first called:
#   processes/exec            forges "pass" records into every fd, then _exit(0)s the test
#   processes/cow             leaves a thread running
#   processes/orphans         leaves a POSIX message queue
#   processes/clone_vm        touches far more memory than a test may have
#   processes/process_groups  kills the harness's supervisor
# None may pass; each must be reported with its evidence; afterwards nothing of the run may be
# left on the machine (processes, System V objects, POSIX queues, scratch directories).
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
root=$(pwd)
copy=$(mktemp -d /tmp/kit-hostile.XXXXXX)
tmp=$(mktemp -d /tmp/kit-hostile-tmp.XXXXXX)
trap 'rm -rf "$copy" "$tmp"' EXIT
copy_kit "$copy"
before=$(ipc_objects)

# inject.py ID FUNCTION CALL HELPER: the solution of ID, with CALL as the first statement of
# `pub fn FUNCTION` and HELPER appended, becomes the student's file.
inject() {
    python3 - "$copy" "$@" <<'PY'
import sys
copy, id, function, call, helper = sys.argv[1:]
lines = open(f"solutions/{id}.rs").read().split("\n")
start = next(i for i, l in enumerate(lines) if l.startswith(f"pub fn {function}("))
body = next(i for i in range(start, len(lines)) if lines[i].endswith("{"))
lines.insert(body + 1, f"    {call};")
open(f"{copy}/exercises/{id}.rs", "w").write("\n".join(lines) + "\n" + helper + "\n")
PY
}

inject processes/exec run "forge_a_pass()" '
/// Writes a "pass" record, in every framing it might be, into every fd, then leaves.
fn forge_a_pass() {
    for fd in 3..1024 {
        for record in [&b"pass 0\n"[..], b"verdict 6\npassed"] {
            // SAFETY: writes a buffer we own; a bad fd only gives EBADF.
            unsafe { libc::write(fd, record.as_ptr().cast(), record.len()) };
        }
    }
    // SAFETY: ends the process at once.
    unsafe { libc::_exit(0) }
}'
inject processes/cow cow_after_fork "leave_a_thread()" '
/// Starts a thread that nobody joins.
fn leave_a_thread() {
    std::thread::spawn(|| {
        loop {
            std::thread::park();
        }
    });
}'
inject processes/orphans orphan_and_adopt "leave_a_queue()" '
/// Opens a POSIX message queue and never unlinks it.
fn leave_a_queue() {
    let name = c"/oskata-ci-hostile";
    let attr: *const libc::mq_attr = std::ptr::null();
    // SAFETY: mq_open with a valid name, flags, a mode and no attributes.
    let q = unsafe { libc::mq_open(name.as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600 as libc::mode_t, attr) };
    assert!(q != -1, "mq_open: {}", std::io::Error::last_os_error());
}'
inject processes/clone_vm clone_and_write "hog_memory()" '
/// Touches 8 GiB, one byte a page.
fn hog_memory() {
    let mut v = vec![0u8; 8 << 30];
    for i in (0..v.len()).step_by(4096) {
        v[i] = 1;
    }
    std::hint::black_box(&v);
}'
inject processes/process_groups spawn_group "kill_the_supervisor()" '
/// Kills the parent of the test process: the harness'"'"'s supervisor.
fn kill_the_supervisor() {
    let _ = nix::sys::signal::kill(nix::unistd::getppid(), nix::sys::signal::Signal::SIGKILL);
}'

set +e
(cd "$copy" && TMPDIR="$tmp" CARGO_TARGET_DIR="$root/target" cargo grade --json \
    --exercise processes/exec --exercise processes/cow --exercise processes/orphans \
    --exercise processes/clone_vm --exercise processes/process_groups) >"$root/target/ci/hostile.json"
code=$?
set -e
[ "$code" -eq 1 ] || { echo "cargo grade on the hostile kit exited $code, expected 1"; exit 1; }
python3 - "$root/target/ci/hostile.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
by_id = {e["id"]: e for e in report["exercises"]}
want = {
    "processes/exec": ("failing", ["exited with status 0 in the middle of the test",
                                   "not sealed by the harness and were ignored"]),
    "processes/cow": ("failing", ["is still running after the test returned"]),
    "processes/orphans": ("failing", ["nobody called mq_unlink"]),
    "processes/clone_vm": ("crashed", ["memory"]),
    "processes/process_groups": ("crashed", ["was killed by SIGKILL before it could report"]),
}
bad = []
for id, (status, phrases) in want.items():
    e = by_id[id]
    if e["status"] != status:
        bad.append(f"{id}: {e['status']}, expected {status}")
    if not any(t["status"] == "passed" for t in e["tests"]) and not e["tests"]:
        bad.append(f"{id}: no tests ran")
    failing = [t for t in e["tests"] if t["status"] != "passed"]
    for phrase in phrases:
        if not any(phrase in t["message"] for t in failing):
            bad.append(f"{id}: no failing test says {phrase!r}; first: {failing[0]['message'][:600] if failing else '-'}")
    print(f"{id}: {e['status']}, {len(failing)} of {len(e['tests'])} tests not passed")
if bad:
    sys.exit("\n".join(bad))
print("every hostile exercise got its verdict with evidence")
PY

left=$(processes_matching "$copy|$(kit_binaries "$root")")
[ -z "$left" ] || { echo "processes left behind:"; echo "$left"; exit 1; }
after=$(ipc_objects)
[ "$before" = "$after" ] || { echo "IPC objects left behind:"; diff <(echo "$before") <(echo "$after"); exit 1; }
files=$(find "$tmp" -mindepth 1 -maxdepth 1)
[ -z "$files" ] || { echo "left in the grader's TMPDIR:"; echo "$files"; exit 1; }
echo "nothing left behind"
