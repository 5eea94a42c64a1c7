#!/usr/bin/env bash
# `cargo grade --watch` end to end on a copy of the kit: the first report shows the exercise
# not started; saving the solution over it brings a new report with it done; SIGINT ends the
# watcher with 130 and leaves no process behind.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
root=$(pwd)
copy=$(mktemp -d /tmp/kit-watch.XXXXXX)
log="$root/target/ci/watch.log"
copy_kit "$copy"
(cd "$copy" && exec env CARGO_TARGET_DIR="$root/target" cargo grade --watch --exercise processes/fork_basics) >"$log" 2>&1 &
watcher=$!
trap 'kill -KILL "$watcher" 2>/dev/null || true; rm -rf "$copy"' EXIT

# Waits until PATTERN has appeared COUNT times in the log, for at most SECS seconds.
wait_for() {
    local pattern=$1 count=$2 secs=$3 start=$SECONDS
    until [ "$(grep -c -- "$pattern" "$log")" -ge "$count" ]; do
        if ! kill -0 "$watcher" 2>/dev/null; then
            echo "the watcher ended before '$pattern' (x$count) appeared; it printed:"
            cat "$log"
            exit 1
        fi
        if [ $((SECONDS - start)) -ge "$secs" ]; then
            echo "gave up after ${secs}s waiting for '$pattern' (x$count); the watcher printed:"
            cat "$log"
            exit 1
        fi
        sleep 0.2
    done
}

wait_for "watching" 1 900
grep -q "processes/fork_basics .*not started" "$log" || { cat "$log"; exit 1; }
cp "$copy/solutions/processes/fork_basics.rs" "$copy/exercises/processes/fork_basics.rs"
wait_for "watching" 2 300
tail -n 20 "$log" | grep -q "processes/fork_basics .*done" || { cat "$log"; exit 1; }
echo "the watcher regraded the saved exercise: done"

kill -INT "$watcher"
set +e
wait "$watcher"
code=$?
set -e
[ "$code" -eq 130 ] || { echo "the watcher exited $code after SIGINT, expected 130"; cat "$log"; exit 1; }
left=$(processes_matching "$copy")
[ -z "$left" ] || { echo "processes left behind:"; echo "$left"; exit 1; }
echo "SIGINT ended the watcher with 130 and nothing left behind"
