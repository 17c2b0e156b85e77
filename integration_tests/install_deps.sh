#!/usr/bin/env bash
# Install what pgcqrs needs to build, test and demo on Debian 12, and only what is missing.
# Idempotent and non-interactive; both README commands call it first. Needs root for apt
# (or sudo); when every package is present it does nothing and needs no privileges.
set -euo pipefail

PACKAGES=(
  # build
  g++ cmake ninja-build pkg-config make
  # libraries (Debian 12: libpqxx 6.4, nlohmann-json 3.11, CLI11 2.1, doctest 2.4,
  # rabbitmq-c 0.11, toml++ 3.3, fmt 9, spdlog 1.10, cpp-httplib 0.11)
  libpqxx-dev libpq-dev nlohmann-json3-dev libcli11-dev doctest-dev librabbitmq-dev
  libtomlplusplus-dev libfmt-dev libspdlog-dev libcpp-httplib-dev libssl-dev
  # servers used by the tests and the demo (started by integration_tests/servers/*.sh)
  postgresql-15 postgresql-client-15 rabbitmq-server
  # tools the scripts use
  procps util-linux curl ca-certificates git clang-format
)

missing=()
for p in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "install_deps: all ${#PACKAGES[@]} packages present"; exit 0; }

echo "install_deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install_deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# the packages' postinst scripts would try to start system-wide servers; the tests start their
# own private ones, so forbid service starts during this install (policy-rc.d exit 101)
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy"
  created_policy=1
fi
cleanup() { [ "$created_policy" = 1 ] && $SUDO rm -f "$policy"; return 0; }
trap cleanup EXIT
for attempt in 1 2 3; do
  if $SUDO apt-get update -qq && \
     $SUDO apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"; then
    echo "install_deps: done"
    exit 0
  fi
  echo "install_deps: apt failed (attempt $attempt), retrying in 5 s" >&2
  sleep 5
done
echo "install_deps: could not install ${missing[*]}" >&2
exit 1
