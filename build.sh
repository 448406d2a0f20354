#!/usr/bin/env bash
# shmkit build driver: installs what is missing, then builds and runs.
#
#   ./build.sh demo    build and run the crash-recovery demo
#   ./build.sh test    build and run every test suite: release, debug with
#                      ASan+UBSan, and ThreadSanitizer for the threaded suites
#   ./build.sh bench   build and run the benchmarks
#
# Needs Debian 12 (or a derivative) with apt-get; uses sudo when not root.
# Environment: JOBS (parallel jobs, default: number of CPUs).
set -euo pipefail
cd "$(dirname "$0")"

packages=(g++ libboost1.81-dev libboost1.81-tools-dev libboost-test1.81-dev libboost-program-options1.81-dev)
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

# Test results are markers under bin/; removing them makes b2 run every
# suite again without recompiling anything.
forget_test_results() {
    find bin -path '*.test/*' \( -name '*.test' -o -name '*.run' -o -name '*.output' \) -delete 2>/dev/null || true
}

passed=0
failed=0

# Runs one b2 pass over test targets and adds its results to the totals.
test_pass() {
    local title=$1; shift
    echo
    echo "=== $title: b2 $* ==="
    local log
    log=$(mktemp)
    local rc=0
    b2 -j"$jobs" "$@" 2>&1 | tee "$log" | grep -vE '^(gcc|clang)\.(compile|link|archive)|^common\.|^testing\.|^    ' || true
    rc=${PIPESTATUS[0]}
    local p f
    p=$(grep -c '^\*\*passed\*\*' "$log" || true)
    f=$(grep -cE '^\.\.\.failed (testing\.capture-output|[a-z]+\.(compile|link))' "$log" || true)
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    rm -f "$log"
}

run_tests() {
    forget_test_results
    test_pass "release" test example
    test_pass "debug, AddressSanitizer + UndefinedBehaviorSanitizer" \
        variant=debug address-sanitizer=norecover undefined-sanitizer=norecover test
    test_pass "debug, ThreadSanitizer (suites where threads share a segment)" \
        variant=debug thread-sanitizer=norecover test//threaded
    echo
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

run_demo() {
    b2 -j"$jobs" example//stage >/dev/null || b2 -j"$jobs" example//stage
    echo
    bin/stage/recovery_demo
}

case "${1:-}" in
    demo) install_missing; run_demo ;;
    test) install_missing; run_tests ;;
    bench) install_missing; b2 -j"$jobs" bench ;;
    *) echo "usage: $0 demo|test|bench" >&2; exit 2 ;;
esac
