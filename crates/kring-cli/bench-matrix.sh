#!/usr/bin/env bash
# Runs the whole side-by-side benchmark matrix of BENCHMARKS.md: every cell
# runs kring and librdkafka alternately (median of 3 runs of 5 s each)
# against a kring-mock sink and against tansu, and appends markdown tables to
# the output file (raw runs to OUT.runs). Takes about an hour on 2 cores;
# run it in the background:
#
#   crates/kring-cli/bench-matrix.sh bench-matrix.md > bench-matrix.log 2>&1 &
#
# Extra arguments go to `kring perf matrix` (see its --help), e.g. to run
# one cell: --broker sink --value-size 100 --compression none --acks 1 --layout 16/16
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-bench-matrix.md}"
shift || true
cargo build --release -q -p kring-cli
{
  echo "<!-- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ) -->"
} >> "$out"
exec target/release/kring perf matrix --out "$out" "$@"
