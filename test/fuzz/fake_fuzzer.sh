#!/usr/bin/env bash
# A stand-in for a libFuzzer binary in fork mode, for test_long_run.sh: it
# takes the options long-run.sh passes and prints progress lines as fork
# mode does, 1000 executions and 1 s a job, then what FAKE_FUZZER says:
#   pass      the last line and "INFO: exiting: 0", exit 0
#   crash     a crash artifact in -artifact_prefix, exit 77 (after 2 jobs)
#   block     2 jobs, then wait for INT or TERM (and exit as libFuzzer does)
# FAKE_FUZZER_JOBS caps the jobs of one stint (then exit 0 early, as a
# fuzzer that stopped without finishing).
set -u
runs=0 prefix=
for a in "$@"; do
    case $a in
    -runs=*) runs=${a#-runs=} ;;
    -artifact_prefix=*) prefix=${a#-artifact_prefix=} ;;
    esac
done
mode=${FAKE_FUZZER:-pass}
cap=${FAKE_FUZZER_JOBS:-1000000}
n=0 job=0
progress() { echo "#$n: cov: 10 ft: 20 corp: 3 exec/s 1000 oom/timeout/crash: 0/0/0 time: ${job}s job: $job dft_time: 0"; }
while [ "$n" -lt "$runs" ] && [ "$job" -lt "$cap" ]; do
    job=$(( job + 1 )) n=$(( n + 1000 ))
    progress
    if [ "$job" -eq 2 ]; then
        case $mode in
        crash)
            echo "==1==ERROR: AddressSanitizer: a made-up report"
            echo "artifact" > "${prefix}crash-0123"
            exit 77 ;;
        block)
            trap 'echo "==1== libFuzzer: run interrupted; exiting"; exit 72' INT TERM
            echo "fake fuzzer: blocking"
            while :; do sleep 1; done ;;
        esac
    fi
done
[ "$n" -ge "$runs" ] && echo "INFO: fuzzed for $n iterations, wrapping up soon"
echo "INFO: exiting: 0 time: ${job}s"
