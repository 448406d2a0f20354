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
# checksum and each stint's log. A run that is stopped (Ctrl-C, a kill, the
# machine going down) loses only its jobs in flight, which are not counted;
# running it again goes on from the counts and corpus it left, as fork mode
# itself starts each job from the corpus the earlier ones left. If the
# binary changed, the counts belong to another program: the state is moved
# to STATE.previous (its corpus and any artifact kept there) and the run
# starts again from 0. STATE.lock keeps two runs from sharing one state.
#
# Exit status: 0 when RUNS executions are done without a failure (STATE is
# removed then); 1 when a crash, a sanitizer report, a model mismatch, a
# hang (-timeout) or an out-of-memory ended it (STATE is kept, with the
# artifact in it, and running the same binary again fails at once rather
# than go on past the failure), or when it was stopped; 2 for a bad
# command line or a STATE that another run is using.
set -u -o pipefail

usage() { echo "usage: long-run.sh BINARY SEEDS RUNS STATE ($1)" >&2; exit 2; }
[ $# -eq 4 ] || usage "4 arguments"
binary=$1 seeds=$2 runs=$3 state=$4
[ -x "$binary" ] || usage "no executable $binary"
[ -d "$seeds" ] || usage "no directory $seeds"
[[ $runs =~ ^[0-9]+$ ]] || usage "RUNS is not a number"
name=$(basename "$binary")
jobs=${SHMKIT_FUZZ_JOBS:-$(nproc)}
say() { printf '%s: %s\n' "$name" "$*"; }

# A counter's value: 0 when its file is missing or holds anything but a
# number (a write cut short).
counter() {
    local v
    v=$(cat "$state/$1" 2>/dev/null)
    [[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo 0
}

# Files are replaced, never rewritten in place, so that a kill leaves
# either the old value or the new one.
put() { echo "$2" > "$state/$1.new" && mv -f "$state/$1.new" "$state/$1"; }

# What libFuzzer leaves when it finds something (-artifact_prefix=STATE/).
artifacts() { compgen -G "$state/crash-*" ; compgen -G "$state/timeout-*" ; compgen -G "$state/oom-*" ; compgen -G "$state/leak-*" ; }

# One run at a time on a state: a second would count the same jobs twice
# and remove the first one's job directories. The fuzzer inherits the lock
# and keeps it while it runs, even if this script is killed first.
exec 9>> "$state.lock" || exit 2
flock -n 9 || { say "another run is using $state"; exit 2; }

checksum=$(sha256sum < "$binary" | cut -d' ' -f1) || exit 2
if [ -d "$state" ] && [ "$(cat "$state/binary" 2>/dev/null)" != "$checksum" ]; then
    say "the binary is not the one the earlier stints ran: starting again from 0 (the old state is in $state.previous)"
    rm -rf "$state.previous" && mv "$state" "$state.previous" || exit 2
fi
mkdir -p "$state/corpus" || exit 2
put binary "$checksum" || exit 2
if [ -f "$state/failed" ] || [ -n "$(artifacts)" ]; then
    say "FAILED earlier ($(cat "$state/failed" 2>/dev/null || echo "an artifact is there")), and the binary has not changed since; log, corpus and artifacts in $state (remove it to run again anyway)"
    exit 1
fi
# Fork mode's job directories: a stint that was killed cannot remove its own.
rm -rf "$state/tmp" && mkdir "$state/tmp" || exit 2
export TMPDIR=$state/tmp

done_before=$(counter executions)
seconds_before=$(counter seconds)
stint=$(( $(counter stints) + 1 ))
put stints "$stint" || exit 2
left=$(( runs - done_before ))
say "stint $stint, $(date -u '+%F %T') UTC: $done_before executions in $seconds_before s before it, $left to go, $jobs jobs"

# Each progress line of fork mode ("#N: cov: C ... time: Ts job: J ...")
# totals the jobs finished in this stint: the state follows it.
record_progress() {
    local line
    while IFS= read -r line; do
        printf '%s\n' "$line"
        if [[ $line =~ ^#([0-9]+):\ cov:.*\ time:\ ([0-9]+)s ]]; then
            put executions $(( done_before + BASH_REMATCH[1] ))
            put seconds $(( seconds_before + BASH_REMATCH[2] ))
        fi
    done
}

# Stopped by Ctrl-C or a TERM (the fuzzer, in the same process group, ends
# its jobs): the stint ends without a verdict.
stopped() { say "stopped in stint $stint after $(counter executions) executions; run it again to go on"; exit 1; }
trap stopped INT TERM

status=0
if [ "$left" -gt 0 ]; then
    UBSAN_OPTIONS=print_stacktrace=1 "$binary" -fork="$jobs" -ignore_timeouts=0 -ignore_ooms=0 \
        -runs="$left" -timeout=60 -print_final_stats=1 \
        -artifact_prefix="$state/" "$state/corpus" "$seeds" 2>&1 | record_progress > "$state/stint-$stint.log"
    statuses=("${PIPESTATUS[@]}")
    status=${statuses[0]}
    [ "${statuses[1]}" -eq 0 ] || { say "cannot write $state/stint-$stint.log"; exit 1; }
fi

# What the fuzzer said last.
{
    grep -E "^#[0-9]+: cov" "$state/stint-$stint.log" | tail -n 1
    grep -E "^INFO: (fuzzed for|exiting)" "$state/stint-$stint.log"
} 2>/dev/null | sed "s|^|$name: |"
if [ "$status" -ne 0 ]; then
    tail -n 80 "$state/stint-$stint.log" | sed "s|^|$name: |"
    put failed "stint $stint ended with exit $status"
    say "FAILED (exit $status) in stint $stint; log, corpus and artifacts in $state"
    exit 1
fi
executions=$(counter executions)
seconds=$(counter seconds)
if [ "$executions" -lt "$runs" ]; then
    say "FAILED: the fuzzer stopped after $executions of $runs executions; log in $state"
    exit 1
fi
say "$executions executions in $stint stint(s), $seconds s of fuzzing ($(( executions / (seconds > 0 ? seconds : 1) )) exec/s)"
rm -rf "$state"
