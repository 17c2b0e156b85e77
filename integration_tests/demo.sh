#!/usr/bin/env bash
# The README's demo command: install what is missing, build, start a private PostgreSQL and
# RabbitMQ, walk through a master and a replica, stop the servers.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="${PGCQRS_BUILD_DIR:-$ROOT/build}"

"$HERE/install_deps.sh"
echo "==> building pgcqrs in $BUILD"
"$HERE/build.sh" "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -- pgcqrs
exec "$HERE/with_servers.sh" "$HERE/demo/run.sh" "$BUILD/bin"
