#!/usr/bin/env bash
# One long fuzz run that survives being stopped: fuzz-long's action.
#
#   long-run.sh BINARY SEEDS RUNS STATE
#
# runs BINARY in libFuzzer's fork mode (one job per CPU, SHMKIT_FUZZ_JOBS=N
# for N) until RUNS executions are done, counted over all jobs and over
# every stint. STATE keeps what a stint leaves for the next: the corpus
# grown so far (the first corpus directory, where fork mode writes new
# inputs), the binary's checksum and each stint's log, whose progress lines
# count the executions and seconds of its finished jobs. A run that is
# stopped (INT or TERM to this script or to its fuzzer, a kill, the machine
# going down) loses only its jobs in flight, which are not counted;
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

# Executions and seconds of the jobs finished in all stints so far: each
# stint's log ends its progress lines ("#N: cov: C ... time: Ts job: J")
# with the totals of that stint's finished jobs, written as each job ends,
# so a stint killed at any moment has counted only what it finished.
totals() {
    local log line n=0 t=0
    for log in "$state"/stint-*.log; do
        [ -f "$log" ] || continue
        line=$(grep -E "^#[0-9]+: cov:.* time: [0-9]+s" "$log" | tail -n 1)
        [[ $line =~ ^#([0-9]+):\ cov:.*\ time:\ ([0-9]+)s ]] || continue
        n=$(( n + BASH_REMATCH[1] )) t=$(( t + BASH_REMATCH[2] ))
    done
    echo "$n $t"
}

# Files are replaced, never rewritten in place, so that a kill leaves
# either the old content or the new one.
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

read -r done_before seconds_before < <(totals)
stint=1
while [ -e "$state/stint-$stint.log" ]; do stint=$(( stint + 1 )); done
log=$state/stint-$stint.log
left=$(( runs - done_before ))
say "stint $stint, $(date -u '+%F %T') UTC: $done_before executions in $seconds_before s before it, $left to go, $jobs jobs"

# The fuzzer and its jobs run in a session of their own, so that a stop
# (INT or TERM to this script) reaches all of them and nothing else, as a
# TERM: libFuzzer ends on it as on INT, and unlike INT no shell has it
# ignored in what it starts in the background. The stint then ends without
# a verdict.
status=0 stopped= fuzzer=
stop() {
    stopped=1
    [ -n "$fuzzer" ] && { kill -TERM -- "-$fuzzer" 2>/dev/null || kill -TERM "$fuzzer" 2>/dev/null; }
}
trap stop INT TERM
if [ "$left" -gt 0 ] && [ -z "$stopped" ]; then
    UBSAN_OPTIONS=print_stacktrace=1 setsid "$binary" -fork="$jobs" -ignore_timeouts=0 -ignore_ooms=0 \
        -runs="$left" -timeout=60 -print_final_stats=1 -artifact_prefix="$state/" \
        "$state/corpus" "$seeds" > "$log" 2>&1 &
    fuzzer=$!
    [ -n "$stopped" ] && stop # the stop came before its pid was known
    # wait returns early for a trapped signal: wait again until the fuzzer is gone.
    while :; do
        wait "$fuzzer"
        status=$?
        kill -0 "$fuzzer" 2>/dev/null || break
    done
fi
trap - INT TERM

# What the fuzzer said last.
{
    grep -E "^#[0-9]+: cov" "$log" | tail -n 1
    grep -E "^INFO: (fuzzed for|exiting)" "$log"
} 2>/dev/null | sed "s|^|$name: |"
read -r executions seconds < <(totals)
# libFuzzer says "run interrupted" when a SIGINT reached it from elsewhere.
if [ -n "$stopped" ] || { [ "$status" -ne 0 ] && [ -z "$(artifacts)" ] && grep -q "run interrupted" "$log"; }; then
    say "stopped in stint $stint after $executions executions; run it again to go on"
    exit 1
fi
if [ "$status" -ne 0 ]; then
    tail -n 80 "$log" | sed "s|^|$name: |"
    put failed "stint $stint ended with exit $status"
    say "FAILED (exit $status) in stint $stint; log, corpus and artifacts in $state"
    exit 1
fi
if [ "$executions" -lt "$runs" ]; then
    say "FAILED: the fuzzer stopped after $executions of $runs executions; log in $state"
    exit 1
fi
say "$executions executions in $stint stint(s), $seconds s of fuzzing ($(( executions / (seconds > 0 ? seconds : 1) )) exec/s)"
rm -rf "$state"
