#!/usr/bin/env bash
# Grades a copy of the kit in which one exercise loops forever, another does not compile, and a
# third is the reference solution plus three leaks: a System V semaphore set, a setsid daemon
# and a zombie. The grader must report the loop as timed out, the broken file as not compiling
# (with the compiler's message), the leaky one as failing with the evidence of each leak, and
# still grade the others it is asked for; afterwards no process, System V IPC object or scratch directory of the
# run may be left on the machine. The grader runs with a TMPDIR of its own, which must be
# empty afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
root=$(pwd)
copy=$(mktemp -d /tmp/kit-broken.XXXXXX)
tmp=$(mktemp -d /tmp/kit-broken-tmp.XXXXXX)
trap 'rm -rf "$copy" "$tmp"' EXIT
copy_kit "$copy"

before=$(ipc_objects)

sed -i 's/todo!()/loop { std::hint::spin_loop() }/' "$copy/exercises/processes/fork_basics.rs"
echo 'fn broken( {' >>"$copy/exercises/ipc/pipe_direction.rs"
leaky="$copy/exercises/processes/reap_all.rs"
cp solutions/processes/reap_all.rs "$leaky"
sed -i 's/^pub fn reap_all(specs: &\[ChildSpec\]) -> nix::Result<Vec<WaitStatus>> {$/&\n    leave_things_behind();/' "$leaky"
grep -q '^    leave_things_behind();$' "$leaky" || { echo "could not make reap_all leak: its signature changed"; exit 1; }
cat >>"$leaky" <<'RS'

/// Leaves a semaphore set, a daemon in a session of its own and a zombie behind.
fn leave_things_behind() {
    // SAFETY: semget only creates an object; nothing here owns it.
    unsafe { libc::semget(libc::IPC_PRIVATE, 1, libc::IPC_CREAT | 0o600) };
    // SAFETY: the child exits at once and becomes a zombie nobody waits for.
    if let Ok(ForkResult::Child) = unsafe { fork() } {
        unsafe { libc::_exit(0) }
    }
    // SAFETY: the first child starts a session, forks the daemon and exits; the daemon sleeps.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = nix::unistd::setsid();
            if let Ok(ForkResult::Child) = unsafe { fork() } {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => {
            let _ = waitpid(child, None);
        }
        Err(_) => {}
    }
}
RS

set +e
# The three broken exercises and two sound ones (stubs, so "not started"): a copy of the kit
# builds every target it grades anew, and two show the rest is still graded as well as 57 would.
(cd "$copy" && TMPDIR="$tmp" CARGO_TARGET_DIR="$root/target" cargo grade --json \
    --exercise processes/fork_basics --exercise ipc/pipe_direction --exercise processes/reap_all \
    --exercise processes/zombies --exercise threads/spawn_join) >"$root/target/ci/broken.json"
code=$?
set -e
[ "$code" -eq 1 ] || { echo "cargo grade on the broken kit exited $code, expected 1"; exit 1; }
python3 .ci/check_grade.py "$root/target/ci/broken.json" not_started \
    processes/fork_basics=timed_out ipc/pipe_direction=does_not_compile processes/reap_all=failing
python3 - "$root/target/ci/broken.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
by_id = {e["id"]: e for e in report["exercises"]}
broken = by_id["ipc/pipe_direction"]
assert "pipe_direction.rs" in (broken.get("compiler_message") or ""), broken
print("the compiler's message names the broken file")
leaked = [t for t in by_id["processes/reap_all"]["tests"] if t["status"] == "leaked"]
assert leaked, by_id["processes/reap_all"]
# The semaphore set leaks in every test; the zombie and the daemon in each test whose own setup
# lets them be made (one test ignores SIGCHLD, so the kernel reaps the zombie; another caps the
# number of processes, so the forks fail): each must be reported in some test.
for phrase in ("System V semaphore set", "nobody removed it with IPC_RMID"):
    assert all(phrase in t["message"] for t in leaked), (phrase, leaked[0]["message"])
for phrase in ("is a zombie (state Z)", "still alive after the test ended"):
    assert any(phrase in t["message"] for t in leaked), (phrase, leaked[0]["message"])
print(f"{len(leaked)} reap_all tests report the semaphore set, and some the zombie and the daemon, as leaks")
PY

left=$(processes_matching "$copy|$(kit_binaries "$root")")
[ -z "$left" ] || { echo "processes left behind:"; echo "$left"; exit 1; }
after=$(ipc_objects)
[ "$before" = "$after" ] || { echo "IPC objects left behind:"; diff <(echo "$before") <(echo "$after"); exit 1; }
files=$(find "$tmp" -mindepth 1 -maxdepth 1 -name 'oskata-*')
[ -z "$files" ] || { echo "left in the grader's TMPDIR:"; echo "$files"; exit 1; }
echo "nothing left behind"
