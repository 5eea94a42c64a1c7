#!/usr/bin/env bash
# Grades, through `cargo grade`, a copy of the kit in which eleven exercises are the reference
# solution plus one hostile act each, done when the student's function is first called:
#   processes/exec            forges "pass" records into every fd, then _exit(0)s the test
#   processes/cow             leaves a thread running
#   processes/orphans         leaves a POSIX message queue
#   processes/clone_vm        touches far more memory than a test may have
#   processes/process_groups  kills the harness's supervisor
#   processes/fork_basics     starts a process beside the test's (clone with CLONE_PARENT)
#   processes/zombies         leaves a zombie leader whose other thread runs on
#   processes/reap_all        leaves a zombie, then fills the fd table
#   processes/exit_flush      leaves files in /tmp and in TMPDIR
#   processes/double_fork     moves itself out of the test's cgroups (where it may: root)
#   processes/daemonize       sends kill(-1, SIGWINCH) through the i386 and x32 entries
# Each must get its verdict with its evidence (the last is refused, so its exercise is done,
# and a sentinel process of this script must not have received the signal); afterwards
# nothing of the run may be left on the machine (processes, System V objects, POSIX queues,
# files in /tmp, scratch directories).
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
/// Opens a POSIX message queue, closes its descriptor and never unlinks it.
fn leave_a_queue() {
    let name = c"/oskata-ci-hostile";
    let attr: *const libc::mq_attr = std::ptr::null();
    // SAFETY: mq_open with a valid name, flags, a mode and no attributes.
    let q = unsafe { libc::mq_open(name.as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600 as libc::mode_t, attr) };
    assert!(q != -1, "mq_open: {}", std::io::Error::last_os_error());
    // SAFETY: closes the descriptor just opened; the queue itself stays.
    unsafe { libc::mq_close(q) };
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

inject processes/fork_basics fork_and_report "start_a_sibling()" '
/// Starts a process whose parent is the test process'"'"'s parent (clone with CLONE_PARENT).
fn start_a_sibling() {
    // SAFETY: a raw clone without a new stack behaves as fork(2); the child only pauses.
    let rc = unsafe { libc::syscall(libc::SYS_clone, libc::CLONE_PARENT | libc::SIGCHLD, 0, 0, 0, 0) };
    if rc == 0 {
        loop {
            // SAFETY: pause(2) only waits for a signal.
            unsafe { libc::pause() };
        }
    }
}'
inject processes/zombies zombie_then_reap "leave_a_zombie_leader()" '
/// Forks a child whose main thread exits while another of its threads runs on.
fn leave_a_zombie_leader() {
    // SAFETY: the test process is single-threaded; the child starts a thread and ends its own.
    if unsafe { libc::fork() } == 0 {
        std::thread::spawn(|| {
            loop {
                std::thread::park();
            }
        });
        // SAFETY: the raw exit system call ends this thread only; the other runs on.
        unsafe { libc::syscall(libc::SYS_exit, 0) };
    }
}'
inject processes/reap_all reap_all "leave_a_zombie_and_fill_the_fd_table()" '
/// Leaves a child unreaped, then opens /dev/null until the fd table is full.
fn leave_a_zombie_and_fill_the_fd_table() {
    // SAFETY: the test process is single-threaded; the child only exits.
    if unsafe { libc::fork() } == 0 {
        // SAFETY: leaves the child at once.
        unsafe { libc::_exit(0) }
    }
    let nofile = nix::sys::resource::Resource::RLIMIT_NOFILE;
    let _ = nix::sys::resource::setrlimit(nofile, 2048, 2048);
    while let Ok(f) = std::fs::File::open("/dev/null") {
        std::mem::forget(f);
    }
}'
inject processes/exit_flush spawn_writer "leave_files()" '
/// Writes a file in /tmp by its absolute path and one in TMPDIR, and never removes them.
fn leave_files() {
    let _ = std::fs::write("/tmp/kit-hostile-left", "left");
    let _ = std::fs::write(std::env::temp_dir().join("kit-hostile-left-in-tmpdir"), "left");
}'
inject processes/double_fork spawn_detached "leave_the_cgroups()" '
/// Moves the calling process into the parent of each of its `oskata-*` cgroups.
fn leave_the_cgroups() {
    let me = std::process::id().to_string();
    let lines = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in lines.lines() {
        let mut fields = line.splitn(3, '"'"':'"'"');
        let (Some(hierarchy), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let Some((parent, leaf)) = path.rsplit_once('"'"'/'"'"') else { continue };
        if !leaf.starts_with("oskata-") {
            continue;
        }
        let root = if hierarchy == "0" { "unified" } else { controllers.split('"'"','"'"').next().unwrap_or("") };
        let _ = std::fs::write(format!("/sys/fs/cgroup/{root}{parent}/cgroup.procs"), &me);
    }
}'
inject processes/daemonize daemonize "signal_everyone_through_other_abis()" '
/// In a child: kill(-1, SIGWINCH) through the i386 entry (int 0x80, where kill is 37) and with
/// the x32 number of kill; panics unless both were refused (a kernel without the i386 entry
/// answers int 0x80 with SIGSEGV, which refuses it too).
fn signal_everyone_through_other_abis() {
    // SAFETY: the test process is single-threaded; the child makes two system calls and exits.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let i386: i32;
        // SAFETY: the i386 kill(-1, SIGWINCH); rbx, which LLVM reserves, is swapped in and
        // back out around it, and the registers the entry may clobber are named.
        unsafe {
            std::arch::asm!(
                "xchg {pid:r}, rbx",
                "int 0x80",
                "xchg {pid:r}, rbx",
                pid = inout(reg) -1i64 => _,
                inlateout("eax") 37i32 => i386,
                in("ecx") libc::SIGWINCH,
                lateout("r8") _, lateout("r9") _, lateout("r10") _, lateout("r11") _,
            )
        };
        let x32: i64;
        // SAFETY: the x86_64 entry with the x32 number of kill (bit 30 set), (-1, SIGWINCH).
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") 0x4000_0000i64 | 62 => x32,
                in("rdi") -1i64,
                in("rsi") libc::SIGWINCH as i64,
                lateout("rcx") _, lateout("r11") _,
            )
        };
        let refused = |rc: i64| rc == -(libc::EPERM as i64) || rc == -(libc::ENOSYS as i64);
        // SAFETY: leaves the child at once, its status the answer.
        unsafe { libc::_exit(if refused(i386.into()) && refused(x32) { 0 } else { 1 }) }
    }
    let mut status = 0;
    // SAFETY: waits for the child just made, into a local.
    unsafe { libc::waitpid(child, &mut status, 0) };
    let segv = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV;
    let refused = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(refused || segv, "kill(-1, SIGWINCH) through another ABI was not refused");
}'

# A sentinel of this script's own: a SIGWINCH that got through to every process reaches it.
sentinel="$tmp.sentinel"
python3 -c '
import signal, sys
signal.signal(signal.SIGWINCH, lambda *_: open(sys.argv[1], "w").write("hit"))
while True:
    signal.pause()
' "$sentinel" &
sentinel_pid=$!
trap 'kill "$sentinel_pid" 2>/dev/null || true; rm -rf "$copy" "$tmp" "$sentinel"' EXIT

set +e
(cd "$copy" && TMPDIR="$tmp" CARGO_TARGET_DIR="$root/target" cargo grade --json \
    --exercise processes/exec --exercise processes/cow --exercise processes/orphans \
    --exercise processes/clone_vm --exercise processes/process_groups \
    --exercise processes/fork_basics --exercise processes/zombies --exercise processes/reap_all \
    --exercise processes/exit_flush --exercise processes/double_fork \
    --exercise processes/daemonize) >"$root/target/ci/hostile.json"
code=$?
set -e
[ "$code" -eq 1 ] || { echo "cargo grade on the hostile kit exited $code, expected 1"; exit 1; }
python3 - "$root/target/ci/hostile.json" <<'PY'
import json, os, sys
report = json.load(open(sys.argv[1]))
by_id = {e["id"]: e for e in report["exercises"]}
want = {
    "processes/exec": ("failing", ["exited with status 0 in the middle of the test",
                                   "not sealed by the harness and were ignored"]),
    "processes/cow": ("failing", ["is still running after the test returned"]),
    "processes/orphans": ("failing", ["nobody called mq_unlink"]),
    "processes/clone_vm": ("crashed", ["memory"]),
    "processes/process_groups": ("crashed", ["was killed by SIGKILL before it could report"]),
    "processes/fork_basics": ("failing", ["was started beside the test process"]),
    # A zombie leader can never be reaped: a test that waits for it runs into its deadline.
    "processes/zombies": (("failing", "timed_out"), ["is a zombie leader whose other threads still run"]),
    "processes/reap_all": ("failing", ["the fd table was full when the test returned",
                                       "is a zombie (state Z)"]),
    "processes/exit_flush": ("failing", ["file /tmp/kit-hostile-left was left behind by the test",
                                         "kit-hostile-left-in-tmpdir was left behind by the test"]),
    "processes/daemonize": ("done", []),
}
# Only root may write into a parent cgroup: an unprivileged run's write is refused, and the
# solution beneath it is done.
if os.geteuid() == 0:
    want["processes/double_fork"] = ("failing", ["moved itself out of the test's cgroup"])
else:
    want["processes/double_fork"] = ("done", [])
bad = []
for id, (status, phrases) in want.items():
    e = by_id[id]
    if e["status"] not in ((status,) if isinstance(status, str) else status):
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
[ ! -e /tmp/kit-hostile-left ] || { echo "left in /tmp: /tmp/kit-hostile-left"; rm -f /tmp/kit-hostile-left; exit 1; }
[ ! -e "$sentinel" ] || { echo "kill(-1, SIGWINCH) through another ABI reached this script's sentinel"; exit 1; }
kill -0 "$sentinel_pid" || { echo "this script's sentinel process died during the run"; exit 1; }
echo "nothing left behind"
