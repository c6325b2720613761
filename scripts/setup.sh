#!/usr/bin/env bash
# Installs the Debian 12 packages taskjournal builds, tests and benchmarks with, if any is missing.
# Runs `apt-get update` once, and only when something has to be installed.
set -euo pipefail

packages=(
  g++ cmake make
  libsqlite3-dev libsqlitecpp-dev  # the journal (store/)
  libcereal-dev rapidjson-dev      # event encoding and JSON (events/)
  libboost-dev                     # Boost.Signals2 (the registry's notifications)
  libssl-dev                       # SHA-256 of the hash chain (store/)
  googletest libgtest-dev librapidcheck-dev  # tests
  libbenchmark-dev gnuplot-nox     # tools/bench (gnuplot draws its open-time/memory plot)
  clang-format                     # the formatting check run by ctest (DESIGN habit 9)
  pkgconf                          # pkg-config: the consumer tests of taskjournal.pc
  clang libclang-rt-14-dev         # libFuzzer: the event decoder's fuzz test (tests/fuzz/)
  postgresql-15 libpq-dev          # the PostgreSQL engine (store/postgres/) and its test server
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all packages present" >&2
