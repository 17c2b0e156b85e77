#!/usr/bin/env bash
# Configure and build pgcqrs into a build folder (default ./build); extra args go to cmake.
# usage: integration_tests/build.sh [BUILD_DIR] [CMAKE_ARGS...] [-- TARGETS...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"; [ $# -gt 0 ] && shift
cmake_args=(); targets=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; targets=("$@"); break; fi
  cmake_args+=("$1"); shift
done
jobs="${PGCQRS_JOBS:-$(nproc)}"
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" -G Ninja "${cmake_args[@]}" >"$BUILD/configure.log" 2>&1 \
  || { cat "$BUILD/configure.log" >&2; exit 1; }
if [ ${#targets[@]} -gt 0 ]; then
  cmake --build "$BUILD" -j "$jobs" --target "${targets[@]}"
else
  cmake --build "$BUILD" -j "$jobs"
fi
