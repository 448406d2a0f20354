#!/usr/bin/env bash
# shmkit build driver: installs what is missing, then builds and runs.
#
#   ./build.sh demo    build the shmkit tool and run `shmkit demo`
#   ./build.sh test    build and run every test suite: release, debug with
#                      ASan+UBSan, ThreadSanitizer for the threaded suites,
#                      and the fuzz targets for a short budget
#   ./build.sh bench   build and run the benchmarks
#
# Needs Debian 12 (or a derivative) with apt-get; uses sudo when not root.
# Environment: JOBS (parallel jobs, default: number of CPUs).
set -euo pipefail
cd "$(dirname "$0")"

packages=(g++ clang libclang-rt-14-dev libboost1.81-dev libboost1.81-tools-dev libboost-test1.81-dev libboost-program-options1.81-dev perl libipc-sharelite-perl libcache-fastmmap-perl spin valgrind asciidoctor ruby-rouge cmake pkg-config)
jobs=${JOBS:-$(nproc)}

install_missing() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Test results are markers under bin/ (and the SPIN checks' logs);
# removing them makes b2 run every suite and check every model again
# without recompiling anything.
forget_test_results() {
    find bin -path '*.test/*' \( -name '*.test' -o -name '*.run' -o -name '*.output' \) -delete 2>/dev/null || true
    find bin/test/spin -name '*.log' -delete 2>/dev/null || true
}

passed=0
failed=0

# tally TITLE LOG RC PASSED_RE FAILED_RE: adds a pass's results to the
# totals: lines matching PASSED_RE pass, lines matching FAILED_RE fail (and
# are kept for report_failures), and a non-zero exit status with no failed
# line counts as one failure.
tally() {
    local title=$1 log=$2 rc=$3 p f
    p=$(grep -cE "$4" "$log" || true)
    f=$(grep -cE "$5" "$log" || true)
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    grep -E "$5" "$log" | sed "s/^/[$title] /" >> "$failures" || true
    rm -f "$log"
}

# Runs one b2 pass over test targets and adds its results to the totals.
# Test suites say **passed**; a fuzz run that passed says "TARGET: Done N
# runs"; the documentation says "doc: built PATH".
test_pass() {
    local title=$1; shift
    echo
    echo "=== $title: b2 $* ==="
    local log rc
    log=$(mktemp)
    # b2's status goes through a file: read from PIPESTATUS after a
    # `|| true` it would be true's. The filter hides the lines of actions.
    { rc=0; b2 -j"$jobs" "$@" 2>&1 || rc=$?; echo "$rc" > "$log.rc"; } | tee "$log" |
        { grep -vE '^(gcc|clang-linux|clang)\.(compile|link|archive)|^common\.|^testing\.|^    ' || true; }
    rc=$(cat "$log.rc"); rm -f "$log.rc"
    # Failed: a test, or any action (gcc.* and clang-linux.* compiles and
    # links, archives, copies, a Jamfile's own actions).
    tally "$title" "$log" "$rc" '^\*\*passed\*\*|^fuzz_[a-z_]+: Done [0-9]+ runs|^doc: built ' \
        '^\.\.\.failed (testing\.capture-output|[a-z0-9_-]+\.(compile|link|archive)[a-z0-9_.+-]*|common\.|Jamfile<)'
}

# Repeats what failed, with the tail of each failed suite's output, just
# before the count: a long log's end then says what went wrong.
report_failures() {
    [ -s "$failures" ] || return 0
    echo
    echo "=== failures ==="
    local line target out
    while IFS= read -r line; do
        echo "$line"
        target=$(sed -nE 's/.*testing\.capture-output ([^ ]+)\.run.*/\1/p' <<<"$line")
        out="$target.output"
        if [ -n "$target" ] && [ -f "$out" ]; then
            tail -n 30 "$out" | sed 's/^/    | /'
        fi
    done < "$failures"
}

# Installs the library (b2 and CMake) into temporary prefixes and builds
# small outside projects against it: CMake find_package, b2, pkg-config,
# add_subdirectory. Each says "consumer: NAME: passed" or "...: FAILED".
consumer_pass() {
    echo
    echo "=== consumers of the installed library: test/consumer/run.sh ==="
    local log rc
    log=$(mktemp)
    { rc=0; JOBS=$jobs bash test/consumer/run.sh 2>&1 || rc=$?; echo "$rc" > "$log.rc"; } | tee "$log"
    rc=$(cat "$log.rc"); rm -f "$log.rc"
    tally consumers "$log" "$rc" '^consumer: .*: passed( |$)' '^consumer: .*: FAILED'
}

run_tests() {
    failures=$(mktemp)
    forget_test_results
    test_pass "release" test example
    test_pass "debug, AddressSanitizer + UndefinedBehaviorSanitizer" \
        variant=debug address-sanitizer=norecover undefined-sanitizer=norecover test
    test_pass "debug, ThreadSanitizer (suites where threads share a segment)" \
        variant=debug thread-sanitizer=norecover test//threaded
    test_pass "libFuzzer targets, short budget (clang, ASan+UBSan)" toolset=clang fuzz
    test_pass "documentation (Asciidoctor; warnings and broken references fail it)" doc
    consumer_pass
    report_failures
    rm -f "$failures"
    echo
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

run_demo() {
    b2 -j"$jobs" tools/shmkit//stage >/dev/null || b2 -j"$jobs" tools/shmkit//stage
    echo
    bin/stage/shmkit demo
}

case "${1:-}" in
    demo) install_missing; run_demo ;;
    test) install_missing; run_tests ;;
    bench) install_missing; b2 -j"$jobs" bench ;;
    *) echo "usage: $0 demo|test|bench" >&2; exit 2 ;;
esac
