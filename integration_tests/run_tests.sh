#!/usr/bin/env bash
# The README's test command (and what .ci/run calls): install what is missing, build with
# warnings as errors, run the unit tests, the unit tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer, then every integration test against a private PostgreSQL and
# RabbitMQ. Ends with one summary line; exit status is non-zero on any failure.
#
# env: PGCQRS_BUILD_DIR (default ./build-ci), PGCQRS_SKIP_ASAN=1, PGCQRS_SKIP_INTEGRATION=1,
#      PGCQRS_JOBS (parallel compile jobs; default nproc)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${PGCQRS_BUILD_DIR:-$ROOT/build-ci}"
ASAN_BUILD="$BUILD-asan"
start=$SECONDS
results=()
failed=0

stage() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
record() {  # record NAME STATUS
  results+=("$1: $([ "$2" = 0 ] && echo passed || echo "FAILED ($2)")")
  [ "$2" = 0 ] || failed=1
}

stage "dependencies"
"$HERE/install_deps.sh"

stage "build (warnings are errors) in $BUILD"
"$HERE/build.sh" "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPGCQRS_WERROR=ON

stage "format check (clang-format --dry-run)"
set +e
(cd "$ROOT" && git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run -Werror)
record "clang-format" $?
set -e

stage "unit tests"
set +e
(cd "$BUILD" && ctest -L unit --output-on-failure)
record "unit tests" $?
set -e

if [ "${PGCQRS_SKIP_ASAN:-0}" != 1 ]; then
  stage "unit tests under AddressSanitizer + UBSan in $ASAN_BUILD"
  "$HERE/build.sh" "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=Debug -DPGCQRS_WERROR=ON \
    -DPGCQRS_SANITIZE=ON -DPGCQRS_INTEGRATION=OFF -- pgcqrs_unit_tests
  set +e
  (cd "$ASAN_BUILD" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -L unit --output-on-failure)
  record "unit tests (ASan+UBSan)" $?
  set -e
fi

if [ "${PGCQRS_SKIP_INTEGRATION:-0}" != 1 ]; then
  stage "integration tests against private PostgreSQL 15 and RabbitMQ"
  set +e
  "$HERE/with_servers.sh" bash -c "cd '$BUILD' && ctest -L integration --output-on-failure"
  record "integration tests" $?
  set -e
fi

stage "summary"
for r in "${results[@]}"; do echo "  $r"; done
elapsed=$((SECONDS - start))
if [ "$failed" = 0 ]; then
  echo "pgcqrs tests: ALL PASSED in ${elapsed}s"
else
  echo "pgcqrs tests: FAILURES (see above) after ${elapsed}s"
fi
exit "$failed"
