#!/usr/bin/env bash
# Tests of long-run.sh (fuzz-long's action) with fake_fuzzer.sh standing in
# for a fuzzer: a run in one stint; a stint that ends early, or is killed,
# or is stopped, and the next one going on from its count; a failure that
# stays a failure; a changed binary starting again; two runs on one state.
# Everything runs in a scratch directory, removed at the end; every wait is
# bounded. Prints "ok: ..." or "FAILED: ..." per check, then the counts.
set -u
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/shmkit-long-run-test.XXXXXX) || exit 1
cleanup() { pkill -KILL -f "$work" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fake=$work/fake_fuzzer # a copy: its checksum stands for the binary's
cp "$here/fake_fuzzer.sh" "$fake" && mkdir "$work/seeds" || exit 1
state=$work/state
passed=0 failed=0

check() {
    if eval "$2"; then
        echo "ok: $1"
        passed=$(( passed + 1 ))
    else
        echo "FAILED: $1"
        sed 's/^/    /' "$work/out"
        failed=$(( failed + 1 ))
    fi
}

# One stint of RUNS executions, in the foreground; its output in out, its
# exit status in rc.
stint() {
    SHMKIT_FUZZ_JOBS=2 bash "$here/long-run.sh" "$fake" "$work/seeds" "$1" "$state" > "$work/out" 2>&1
    rc=$?
}

# The same in the background, until the fake fuzzer of stint $2 blocks
# (at most 10 s).
blocked_stint() {
    FAKE_FUZZER=block SHMKIT_FUZZ_JOBS=2 bash "$here/long-run.sh" "$fake" "$work/seeds" "$1" "$state" \
        > "$work/out" 2>&1 &
    script=$!
    local i
    for i in $(seq 1000); do
        grep -qs "fake fuzzer: blocking" "$state/stint-$2.log" && return 0
        sleep 0.01 # polling a log, not ordering anything
    done
    return 1
}

said() { grep -q -- "$1" "$work/out"; }

# -- one stint
FAKE_FUZZER=pass stint 5000
check "a run passes in one stint" '[ $rc -eq 0 ] && said "5000 executions in 1 stint(s)"'
check "a passed run leaves no state" '[ ! -e "$state" ]'

# -- a stint that ends early, then one that finishes
FAKE_FUZZER=pass FAKE_FUZZER_JOBS=2 stint 5000
check "a fuzzer that stops early fails the stint" '[ $rc -eq 1 ] && said "stopped after 2000 of 5000"'
FAKE_FUZZER=pass stint 5000
check "the next stint counts what the first one did" '[ $rc -eq 0 ] && said "2000 executions in 2 s before it, 3000 to go" && said "5000 executions in 2 stint(s)"'

# -- a stint killed with everything it started, then the next one
blocked_stint 5000 1
check "the fake fuzzer blocks" '[ $? -eq 0 ]'
# The fake fuzzer leads a session of its own (as long-run.sh starts it):
# all of it goes, its sleep included, as in a machine going down.
sessions=$(pgrep -f "$work/fake_fuzzer")
for sid in $sessions; do pkill -KILL -s "$sid"; done
kill -KILL "$script"
wait "$script" 2>/dev/null
# A killed process lets its lock go when it is gone, not when it is sent
# SIGKILL: until then (at most 10 s) the next stint would find it held.
for i in $(seq 1000); do
    alive=
    for sid in $sessions; do pgrep -s "$sid" > /dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.01 # polling for the end of processes, not ordering anything
done
FAKE_FUZZER=pass stint 5000
check "a killed stint counts its finished jobs" '[ $rc -eq 0 ] && said "2000 executions in 2 s before it" && said "5000 executions in 2 stint(s)"'

# -- a stint stopped (TERM or INT)
blocked_stint 5000 1
check "the fake fuzzer blocks again" '[ $? -eq 0 ]'
kill -TERM "$script" # INT: ignored by a job this script starts in the background
wait "$script"
rc=$?
check "TERM stops a stint, without a verdict" '[ $rc -eq 1 ] && said "stopped in stint 1 after 2000 executions" && [ ! -e "$state/failed" ]'
check "the stopped fuzzer is gone" '! pgrep -f "$work/fake_fuzzer" > /dev/null'

# -- two runs on one state (the stopped run's state is still there)
blocked_stint 5000 2
check "another stint blocks" '[ $? -eq 0 ]'
first=$script
FAKE_FUZZER=pass SHMKIT_FUZZ_JOBS=2 bash "$here/long-run.sh" "$fake" "$work/seeds" 5000 "$state" > "$work/out2" 2>&1
rc=$?
check "a second run on the same state is refused" '[ $rc -eq 2 ] && grep -q "another run is using" "$work/out2"'
kill -TERM "$first"
wait "$first"
FAKE_FUZZER=pass stint 5000
check "after two stopped stints the next one finishes" '[ $rc -eq 0 ] && said "4000 executions in 4 s before it" && said "in 3 stint(s)"'

# -- a failure stays one until the binary changes
FAKE_FUZZER=crash stint 5000
check "a crash fails the run" '[ $rc -eq 1 ] && said "FAILED (exit 77)" && [ -e "$state/failed" ] && [ -e "$state/crash-0123" ]'
FAKE_FUZZER=pass stint 5000
check "the same binary fails again at once" '[ $rc -eq 1 ] && said "FAILED earlier" && ! said "stint 2"'
rm "$state/failed"
FAKE_FUZZER=pass stint 5000
check "an artifact left in the state fails it too" '[ $rc -eq 1 ] && said "an artifact is there"'
echo "# changed" >> "$fake"
FAKE_FUZZER=pass stint 5000
check "a changed binary starts again from 0" '[ $rc -eq 0 ] && said "starting again from 0" && said "5000 executions in 1 stint(s)"'
check "the old state, with its artifact, is kept aside" '[ -e "$state.previous/crash-0123" ]'

# -- bad arguments
bash "$here/long-run.sh" "$fake" "$work/none" 5000 "$state" > "$work/out" 2>&1
rc=$?
check "a missing seed directory is a usage error" '[ $rc -eq 2 ]'
bash "$here/long-run.sh" "$fake" "$work/seeds" many "$state" > "$work/out" 2>&1
rc=$?
check "RUNS that is not a number is a usage error" '[ $rc -eq 2 ]'

echo "long-run.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
