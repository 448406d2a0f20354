#!/usr/bin/env bash
# Compiles every complete program of the book (a [source,cpp] block that
# has a main function) against the headers of this tree, so that the book's
# examples cannot drift from the API. Syntax and types only: nothing runs.
# Part of `b2 doc`; prints the count, exits 1 on the first program that
# does not compile (with the compiler's messages).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for f in "$here"/shmkit/*.adoc; do
    awk -v base="$tmp/$(basename "$f" .adoc)" '
        /^\[source,cpp\]/ { source = 1; next }
        source && /^----$/ {
            if (inside) {
                if (has_main) { n++; out = base "_" n ".cpp"; printf "%s", text > out; close(out) }
                inside = 0; source = 0; has_main = 0; text = ""
            } else inside = 1
            next
        }
        inside { text = text $0 "\n"; if ($0 ~ /int main/) has_main = 1 }
    ' "$f"
done

count=0
for p in "$tmp"/*.cpp; do
    [ -e "$p" ] || continue
    if ! g++ -std=c++17 -fsyntax-only -I"$here/../include" "$p"; then
        echo "doc: a program of doc/shmkit/$(basename "$p" | sed -E 's/_[0-9]+\.cpp$/.adoc/') does not compile"
        exit 1
    fi
    count=$((count + 1))
done
echo "doc: the book's $count complete programs compile"
