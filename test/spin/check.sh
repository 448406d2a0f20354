#!/bin/bash
# Verifies one configuration of a Promela model with SPIN, exhaustively.
#
#   check.sh MODEL [--liveness] [--expect-error] [-DNAME[=VALUE] ...]
#
# MODEL is a .pml file, or the name of one in this directory (rwlock, pool).
# -D options configure the model (spin -D). By default it is a safety run
# (pan built with -DSAFETY: assertions and invalid end states); --liveness
# adds -DLIVENESS to the model (which enables its LTL property) and runs
# pan -a (acceptance cycles). The run fails if SPIN reports an error of any
# kind or if the search was not complete. --expect-error inverts the
# verdict: the run must end with an error (a known counterexample).
#
# Works from any directory; everything it generates lives in a temporary
# directory that is removed on exit. Exit status 0: verdict as required.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)

usage() {
    echo "usage: check.sh MODEL [--liveness] [--expect-error] [-DNAME[=VALUE] ...]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
model=$1
shift
case $model in
    */* | *.pml) model=$(readlink -f "$model") ;;
    *) model=$here/$model.pml ;;
esac
[ -f "$model" ] || { echo "check.sh: no model $model" >&2; exit 2; }

liveness=0
expect_error=0
defines=()
for arg in "$@"; do
    case $arg in
        --liveness) liveness=1 ;;
        --expect-error) expect_error=1 ;;
        -D*) defines+=("$arg") ;;
        *) usage ;;
    esac
done

for tool in spin gcc; do
    command -v "$tool" >/dev/null || { echo "check.sh: $tool not found (Debian: apt-get install $tool)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-spin.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# -O0: gcc -O2 spends longer on these pan.c files than the optimised
# search saves. COLLAPSE compresses stored states losslessly. pan's memory
# is capped so that a configuration grown too large fails (an incomplete
# search is a failure) instead of exhausting the machine.
cflags=(-O0 -w -DCOLLAPSE -DMEMLIM=3072)
pan_args=(-m500000 -w22)
if [ "$liveness" = 1 ]; then
    defines+=(-DLIVENESS)
    pan_args+=(-a)
else
    cflags+=(-DSAFETY)
fi

name=$(basename "$model" .pml)
echo "spin ${defines[*]} -a $name.pml; gcc ${cflags[*]} pan.c; ./pan ${pan_args[*]}"

spin "${defines[@]}" -a "$model" >spin.out 2>&1 || { cat spin.out; exit 1; }
gcc "${cflags[@]}" -o pan pan.c >gcc.out 2>&1 || { cat gcc.out; exit 1; }
start=$(date +%s%N)
status=0
./pan "${pan_args[@]}" >pan.out 2>&1 || status=$?
end=$(date +%s%N)

# The summary: what was searched, what was found, what it cost.
grep -E '^(pan:|State-vector|Warning|error)|states, stored|transitions \(|total actual memory|elapsed time|^\s+(never claim|assertion violations|cycle checks|acceptance +cycles|invalid end states)' pan.out || true
ms=$(((end - start) / 1000000))
printf 'wall time: %d.%03d s\n' $((ms / 1000)) $((ms % 1000))

errors=$(sed -nE 's/.*errors: ([0-9]+).*/\1/p' pan.out | tail -n1)
found_error=0
if [ -z "$errors" ] || [ "$errors" != 0 ] ||
    grep -qE '^pan:[0-9]+: (assertion violated|invalid end state|acceptance cycle|non-progress cycle)' pan.out; then
    found_error=1
fi
incomplete=0
if grep -qE 'max search depth too small|out of memory|reached -DMEMLIM bound|Search not completed' pan.out &&
    [ "$found_error" = 0 ]; then
    incomplete=1
fi
if [ "$status" != 0 ] && [ "$found_error" = 0 ]; then
    echo "check.sh: pan exited with status $status"
    incomplete=1
fi

if [ "$found_error" = 1 ] && [ -f "$name.pml.trail" ]; then
    # The counterexample, replayed: the last steps before the violation.
    cp "$model" "$name.pml"
    echo "--- trail (spin -t -p, last 40 steps) ---"
    spin "${defines[@]}" -t -p -g "$name.pml" 2>&1 | grep -E '^ *[0-9]+:' | tail -n 40 || true
fi

if [ "$expect_error" = 1 ]; then
    if [ "$found_error" = 1 ]; then
        echo "PASS: $name: the expected counterexample was found"
        exit 0
    fi
    echo "FAIL: $name: no counterexample, though one was expected"
    exit 1
fi
if [ "$incomplete" = 1 ]; then
    echo "FAIL: $name: the search was not exhaustive"
    exit 1
fi
if [ "$found_error" = 1 ]; then
    echo "FAIL: $name: SPIN found an error"
    exit 1
fi
echo "PASS: $name: exhaustive search, no error"
