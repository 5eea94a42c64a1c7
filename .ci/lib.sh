# What the CI scripts share; sourced, never run. Each list or pattern is defined here once.

# The grader and every test binary cargo built under $1's target directory (`deps/<target>-
# <16 hex digits>`: one per exercise and the harness's own), matched by shape, so a new exercise
# needs no edit here and nothing else running on the machine is mistaken for the kit's.
kit_binaries() { printf '%s' "$1/target/debug/(oskata-grade|deps/[a-z0-9_]+-[0-9a-f]{16})( |\$)"; }

# The processes whose command line matches the extended regex $1 (this call's own excepted).
processes_matching() { pgrep -af "$1" | grep -v pgrep || true; }

# The machine's System V IPC objects and POSIX message queues, as text to compare.
ipc_objects() { cat /proc/sysvipc/shm /proc/sysvipc/sem /proc/sysvipc/msg; ls -A /dev/mqueue 2>/dev/null || true; }

# Copies the kit's tracked files (the working tree's versions) into the directory $1.
copy_kit() { git ls-files -z | xargs -0 cp --parents -t "$1"; }
