#!/usr/bin/env bash
# Installs shmkit into temporary prefixes and builds projects outside the
# source tree against it, the ways a user would:
#
#   b2-install          b2 install --prefix=P1: headers, libshmkit.a and .so,
#                       the tool, shmkit.pc, the CMake package files
#   cmake-b2-prefix     CMake find_package(shmkit) against P1 (shared library)
#   cmake-b2-prefix-static          the same with SHMKIT_USE_STATIC_LIBS=ON
#   b2-installed        a b2 project using the library installed in P1 (link=shared)
#   b2-installed-static             the same, link=static
#   b2-use-project      a b2 project using the source tree (use-project)
#   pkg-config          g++ $(pkg-config --cflags --libs shmkit) against P1
#   cmake-install       cmake -S . -B B && cmake --build B && cmake --install B --prefix P2
#   cmake-cmake-prefix  CMake find_package(shmkit) against P2
#   pkg-config-cmake-prefix         pkg-config against P2
#   cmake-subdirectory  add_subdirectory(shmkit) in a project (BUILD_SHARED_LIBS=ON):
#                       only the library is built
#
# Each step says "consumer: NAME: passed" or "consumer: NAME: FAILED" (with
# the end of its log); the exit status is 1 if any failed. Every consumer
# runs test/consumer/consumer.cpp, which must print "consumer ok".
#
# Environment: JOBS (parallel jobs, default 2); SHMKIT_CONSUMER_KEEP=1 keeps
# the temporary directory (its path is printed).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
jobs=${JOBS:-2}

version=$(sed -nE 's/^#define SHMKIT_VERSION_STRING "([0-9]+\.[0-9]+\.[0-9]+)".*/\1/p' "$root/include/shmkit/config.hpp")
if [ -z "$version" ]; then
    echo "consumer: version: FAILED (no SHMKIT_VERSION_STRING in include/shmkit/config.hpp)"
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shmkit-consumers.XXXXXX")
cleanup() {
    if [ "${SHMKIT_CONSUMER_KEEP:-0}" = 1 ]; then
        echo "consumer: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The consumer projects are copied out of the source tree: nothing in them
# may reach back into it (except the add_subdirectory and use-project ones,
# which are given its path).
cp -r "$here" "$tmp/consumer"
rm -f "$tmp/consumer/run.sh"
mkdir -p "$tmp/logs" "$tmp/scratch"

p1=$tmp/b2-prefix
p2=$tmp/cmake-prefix
passed=0
failed=0
declare -A ok=()

# step NAME COMMAND...: runs COMMAND (a shell function, in a subshell) with
# its output in a log; prints the verdict, and the end of the log when it
# failed.
step() {
    local name=$1; shift
    local log="$tmp/logs/$name.log" start=$SECONDS
    if ( "$@" ) >"$log" 2>&1; then
        ok[$name]=1
        passed=$((passed + 1))
        echo "consumer: $name: passed ($((SECONDS - start)) s)"
    else
        failed=$((failed + 1))
        echo "consumer: $name: FAILED ($((SECONDS - start)) s)"
        tail -n 40 "$log" | sed 's/^/    | /'
    fi
}

# needs STEP: fails (with a word why) unless STEP passed.
needs() {
    [ -n "${ok[$1]:-}" ] && return 0
    echo "skipped: $1 failed"
    return 1
}

# run_consumer EXE [ENV...]: runs a consumer with its own scratch directory;
# it must print "consumer ok".
run_consumer() {
    local exe=$1; shift
    local dir out
    dir=$(mktemp -d "$tmp/scratch/run.XXXXXX")
    out=$(env "$@" "$exe" "$dir" 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    grep -q '^consumer ok' <<<"$out"
}

# expect_files PREFIX: what an install must hold.
expect_files() {
    local p=$1 f missing=0
    for f in include/shmkit.hpp include/shmkit/config.hpp include/shmkit/detail/header.hpp \
             include/shmkit/sync/detail/token_word.hpp bin/shmkit \
             lib/pkgconfig/shmkit.pc lib/cmake/shmkit/shmkitConfig.cmake \
             lib/cmake/shmkit/shmkitConfigVersion.cmake; do
        [ -e "$p/$f" ] || { echo "missing: $p/$f"; missing=1; }
    done
    # Every header of include/, no more, no fewer.
    if ! diff <(cd "$root/include" && find . -name '*.hpp' | sort) \
              <(cd "$p/include" && find . -type f | sort); then
        echo "the installed headers differ from include/"
        missing=1
    fi
    [ "$missing" -eq 0 ] || return 1
    "$p/bin/shmkit" --version
    "$p/bin/shmkit" --version | grep -qF "$version"
}

# ---- b2 install ------------------------------------------------------------------

b2_install() {
    cd "$root" || return 1
    # The tree's own build directory (bin/): after `b2 test` the static
    # library and the tool are built already; only the shared one is new.
    b2 -j"$jobs" install --prefix="$p1" || return 1
    expect_files "$p1" || return 1
    local f
    for f in libshmkit.a libshmkit.so "libshmkit.so.$version"; do
        [ -e "$p1/lib/$f" ] || { echo "missing: $p1/lib/$f"; return 1; }
    done
    readelf -d "$p1/lib/libshmkit.so.$version" | grep -F "Library soname: [libshmkit.so.$version]"
}
step b2-install b2_install

# ---- CMake find_package against the b2 install ------------------------------------

cmake_consumer() { # PREFIX BUILD_DIR [CMAKE ARGS...]
    local prefix=$1 build=$2; shift 2
    cmake -S "$tmp/consumer/cmake" -B "$build" -DCMAKE_PREFIX_PATH="$prefix" "$@" &&
        cmake --build "$build" -j "$jobs" &&
        run_consumer "$build/consumer"
}

cmake_b2_prefix() {
    needs b2-install || return 1
    cmake_consumer "$p1" "$tmp/cmake-b2" || return 1
    # The shared library, found at run time through the build's RUNPATH.
    readelf -d "$tmp/cmake-b2/consumer" | grep -F "[libshmkit.so.$version]"
}
step cmake-b2-prefix cmake_b2_prefix

cmake_b2_prefix_static() {
    needs b2-install || return 1
    cmake_consumer "$p1" "$tmp/cmake-b2-static" -DSHMKIT_USE_STATIC_LIBS=ON || return 1
    ! readelf -d "$tmp/cmake-b2-static/consumer" | grep -F libshmkit
}
step cmake-b2-prefix-static cmake_b2_prefix_static

# ---- b2 projects --------------------------------------------------------------------

b2_installed() { # LINK
    needs b2-install || return 1
    cd "$tmp/consumer/b2" || return 1
    rm -rf stage
    b2 -j"$jobs" --build-dir="$tmp/b2-consumer-build" link="$1" stage-consumer --shmkit-prefix="$p1" &&
        run_consumer stage/consumer || return 1
    if [ "$1" = shared ]; then
        readelf -d stage/consumer | grep -F "[libshmkit.so.$version]"
    else
        ! readelf -d stage/consumer | grep -F libshmkit
    fi
}
step b2-installed b2_installed shared
step b2-installed-static b2_installed static

b2_use_project() {
    cd "$tmp/consumer/b2" || return 1
    rm -rf stage
    # The library is built already, in the tree's bin/ (the b2 install).
    b2 -j"$jobs" stage-consumer-source --shmkit-source="$root" &&
        run_consumer stage/consumer-from-source
}
step b2-use-project b2_use_project

# ---- pkg-config -----------------------------------------------------------------------

pkg_config_consumer() { # PREFIX OUT
    local prefix=$1 out=$2 flags
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    pkg-config --exists --print-errors "shmkit = $version" || return 1
    flags=$(pkg-config --cflags --libs shmkit) || return 1
    echo "pkg-config --cflags --libs shmkit: $flags"
    # shellcheck disable=SC2086 # the flags are words
    g++ -std=c++17 -o "$out" "$tmp/consumer/consumer.cpp" $flags &&
        run_consumer "$out" LD_LIBRARY_PATH="$prefix/lib"
}

pkg_config_b2_prefix() {
    needs b2-install || return 1
    pkg_config_consumer "$p1" "$tmp/pkg-config-b2"
}
step pkg-config pkg_config_b2_prefix

# ---- CMake install -------------------------------------------------------------------

# The CMake builds below check the build and its packaging, not the code
# (b2 test does): they compile without optimisation, to keep the run short.
quick=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0)

cmake_install() {
    cmake -S "$root" -B "$tmp/cmake-build" "${quick[@]}" &&
        cmake --build "$tmp/cmake-build" -j "$jobs" &&
        cmake --install "$tmp/cmake-build" --prefix "$p2" &&
        expect_files "$p2" &&
        [ -e "$p2/lib/cmake/shmkit/shmkitTargets.cmake" ]
}
step cmake-install cmake_install

cmake_cmake_prefix() {
    needs cmake-install || return 1
    cmake_consumer "$p2" "$tmp/cmake-cmake"
}
step cmake-cmake-prefix cmake_cmake_prefix

pkg_config_cmake_prefix() {
    needs cmake-install || return 1
    pkg_config_consumer "$p2" "$tmp/pkg-config-cmake"
}
step pkg-config-cmake-prefix pkg_config_cmake_prefix

# ---- add_subdirectory ------------------------------------------------------------------

cmake_subdirectory() {
    local build=$tmp/cmake-subdir
    cmake -S "$tmp/consumer/subdir" -B "$build" -DSHMKIT_SOURCE_DIR="$root" -DBUILD_SHARED_LIBS=ON "${quick[@]}" &&
        cmake --build "$build" -j "$jobs" &&
        run_consumer "$build/consumer" || return 1
    # BUILD_SHARED_LIBS is followed; the tool is not built inside a parent.
    [ -e "$build/shmkit/libshmkit.so.$version" ] || { echo "no shared library in $build/shmkit"; return 1; }
    [ ! -e "$build/shmkit/shmkit" ] || { echo "the tool was built inside a parent project"; return 1; }
    # No install rules unless asked for (SHMKIT_INSTALL).
    ! grep -q 'shmkitTargets' "$build/shmkit/cmake_install.cmake"
}
step cmake-subdirectory cmake_subdirectory

echo "consumers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
