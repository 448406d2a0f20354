#!/usr/bin/env bash
# One long fuzz run that survives being stopped: fuzz-long's action.
#
#   long-run.sh BINARY SEEDS RUNS STATE
#
# runs BINARY in libFuzzer's fork mode (one job per CPU, SHMKIT_FUZZ_JOBS=N
# for N) until RUNS executions are done, counted over all jobs and over
# every stint. STATE keeps what a stint leaves for the next: the corpus
# grown so far (the first corpus directory, where fork mode writes new
# inputs), the executions and seconds of finished jobs, the binary's
# checksum and each stint's log. A run that is killed (machine shut down,
# Ctrl-C, a time limit) loses only its jobs in flight; running it again
# goes on from the counts and corpus it left, as fork mode itself starts
# each job from the corpus the earlier ones left. If the binary changed,
# the counts belong to another program: the state is thrown away and the
# run starts again from 0.
#
# Exit status: 0 when RUNS executions are done without a failure (STATE is
# removed then); the fuzzer's status when a crash, a sanitizer report, a
# model mismatch, a hang (-timeout) or an out-of-memory ended it (STATE is
# kept, with the artifact in it, and running the same binary again fails
# at once rather than go on past the failure); 2 for a bad command line
# or a STATE that another run is using.
set -u -o pipefail

if [ $# -ne 4 ]; then
    echo "usage: long-run.sh BINARY SEEDS RUNS STATE" >&2
    exit 2
fi
binary=$1 seeds=$2 runs=$3 state=$4
name=$(basename "$binary")
jobs=${SHMKIT_FUZZ_JOBS:-$(nproc)}

# A counter file's value, 0 when it does not exist yet.
counter() { cat "$state/$1" 2>/dev/null || echo 0; }

# Counters are replaced, never rewritten in place, so that a kill leaves
# either the old value or the new one.
set_counter() { echo "$2" > "$state/$1.new" && mv -f "$state/$1.new" "$state/$1"; }

checksum=$(sha256sum < "$binary" | cut -d' ' -f1) || exit 2
# One stint at a time: a second would count the same jobs twice and
# remove the first one's job directories.
mkdir -p "$state" && exec 9< "$state" || exit 2
if ! flock -n 9; then
    echo "$name: another run is using $state"
    exit 2
fi
if [ -f "$state/binary" ] && [ "$(cat "$state/binary")" != "$checksum" ]; then
    echo "$name: the binary is not the one the earlier stints ran: starting again from 0"
    find "$state" -mindepth 1 -delete
fi
if [ -f "$state/failed" ]; then
    echo "$name: FAILED: $(cat "$state/failed"), and the binary has not changed since; log, corpus and artifacts in $state (remove it to run again anyway)"
    exit 1
fi
mkdir -p "$state/corpus" || exit 2
echo "$checksum" > "$state/binary"
# Fork mode's job directories: a killed stint cannot remove its own.
rm -rf "$state/tmp" && mkdir "$state/tmp" || exit 2
export TMPDIR=$state/tmp

done_before=$(counter executions)
seconds_before=$(counter seconds)
stint=$(( $(counter stints) + 1 ))
set_counter stints "$stint"
left=$(( runs - done_before ))
echo "$name: stint $stint, $(date -u '+%F %T') UTC: $done_before executions in $seconds_before s before it, $left to go, $jobs jobs"

# Each progress line of fork mode ("#N: cov: C ... time: Ts job: J ...")
# totals the jobs finished in this stint: the state follows it.
record_progress() {
    local line n t
    while IFS= read -r line; do
        printf '%s\n' "$line"
        if [[ $line =~ ^#([0-9]+):\ cov:.*\ time:\ ([0-9]+)s ]]; then
            n=${BASH_REMATCH[1]} t=${BASH_REMATCH[2]}
            set_counter executions $(( done_before + n ))
            set_counter seconds $(( seconds_before + t ))
        fi
    done
}

status=0
if [ "$left" -gt 0 ]; then
    UBSAN_OPTIONS=print_stacktrace=1 "$binary" -fork="$jobs" -ignore_timeouts=0 -ignore_ooms=0 \
        -runs="$left" -timeout=60 -print_final_stats=1 -artifact_prefix="$state/" \
        "$state/corpus" "$seeds" 2>&1 | record_progress > "$state/stint-$stint.log"
    status=$?
fi

executions=$(counter executions)
seconds=$(counter seconds)
# What the fuzzer said last, with the target's name, as every line here.
{
    grep -E "^#[0-9]+: cov" "$state/stint-$stint.log" | tail -n 1
    grep -E "^INFO: (fuzzed for|exiting)" "$state/stint-$stint.log"
} 2>/dev/null | sed "s|^|$name: |"
if [ "$status" -ne 0 ]; then
    tail -n 80 "$state/stint-$stint.log" | sed "s|^|$name: |"
    echo "stint $stint ended with exit $status" > "$state/failed"
    echo "$name: FAILED (exit $status) in stint $stint; log, corpus and artifacts in $state"
    exit "$status"
fi
if [ "$executions" -lt "$runs" ]; then
    echo "$name: FAILED: the fuzzer stopped after $executions of $runs executions; log in $state"
    exit 1
fi
echo "$name: $executions executions in $stint stint(s), $seconds s of fuzzing ($(( executions / (seconds > 0 ? seconds : 1) )) exec/s)"
rm -rf "$state"
