#!/usr/bin/env bash
# Rebuilds closes.bpf.o from closes.bpf.c (clang, Debian 12's clang 14). The object is
# committed, so building kovenant needs no clang; tests/it/bpf_object.rs checks that this
# script still makes the committed bytes.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-closes.bpf.o}
# The checkout's path would be in BTF's line info: mapped away, so any checkout builds the
# same bytes.
clang -O2 -g -target bpf -mcpu=v3 -fdebug-prefix-map="$PWD"=. -c closes.bpf.c -o "$out.tmp"
# Keeps BTF and BTF.ext (CO-RE needs them), drops DWARF.
llvm-strip -g "$out.tmp"
mv "$out.tmp" "$out"
