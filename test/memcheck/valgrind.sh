#!/usr/bin/env bash
# The launcher of the `memcheck` variant (see Jamfile): b2 runs every test
# program as `valgrind.sh PROGRAM [ARGS...]`, and this runs it under
# Valgrind's memcheck.
#
# A test case that cannot run under Valgrind, for a reason outside shmkit,
# is left out (Boost.Test's --run_test=!CASE) and the reason is printed at
# the top of the suite's output. Everything else in its suite still runs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
program=$1
shift
suite=$(basename "$program")

filters=()
skip() { # CASE REASON
    echo "memcheck: $suite: skipping test case $1: $2"
    filters+=("--run_test=!$1")
}

case $suite in
test_hostile_arguments)
    skip capacities_and_sizes "Valgrind's mmap answers EINVAL where Linux answers ENOMEM for an anonymous mapping larger than Valgrind can place (the 2^38-element cases expect ENOMEM)"
    ;;
test_hostile_limits)
    skip no_file_descriptor_left "Valgrind refuses to lower the hard RLIMIT_NOFILE (EPERM): it keeps descriptors above the program's limit for itself"
    ;;
test_kv)
    skip a_taker_killed_between_the_table_names_and_the_root_leaves_a_root_the_next_opener_takes_over "a kill at the nth system call (kill_point.hpp, nth > 1) lets the earlier calls through by the instruction they are made from, and under Valgrind every call is made from Valgrind's own code: the first call kills"
    ;;
test_kv_procs)
    skip killed_at_an_exact_step_of_growth/a_repair_killed_before_unlinking_the_replaced_table_is_done_again "a kill at the nth system call (kill_point.hpp, nth > 1) lets the earlier calls through by the instruction they are made from, and under Valgrind every call is made from Valgrind's own code: the first call kills"
    ;;
test_share_damage)
    skip native/a_remove_killed_before_unlinking_the_root_is_finished_by_the_next_opener "a kill at the nth system call (kill_point.hpp, nth > 1) lets the earlier calls through by the instruction they are made from, and under Valgrind every call is made from Valgrind's own code: the first call kills"
    ;;
esac

exec valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --trace-children=no --num-callers=40 \
    --suppressions="$here/system.supp" --suppressions="$here/harness.supp" \
    "$program" "${filters[@]}" "$@"
