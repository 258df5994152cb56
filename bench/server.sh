#!/usr/bin/env bash
# The server benches, one after the other (about 20 minutes on the 2-core
# machine when it is quiet): ingest throughput and bytes per span, SmartEncoding
# side by side, DuckDB's checkpoint threshold, API latency over 10 M spans.
# Each report goes to stdout and to bench/raw/server-<bench>-<date><suffix>.txt
# (CAUSEWAY_BENCH_SUFFIX, e.g. -after, keeps an earlier report of the same day);
# bench/server.md explains them. Sizes: see the CAUSEWAY_BENCH_* knobs at the
# top of each crates/causeway-server/benches/*.rs (e.g. CAUSEWAY_BENCH_SPANS=1000000
# for a quicker API run). Needs clickhouse-server (scripts/setup installs it);
# without it the ClickHouse parts are skipped with a loud message.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=$(date -u +%Y-%m-%d)
mkdir -p bench/raw
cargo bench -p causeway-server --no-run
for b in ${CAUSEWAY_BENCHES:-ingest smart_encoding duckdb_checkpoint api}; do
  echo "== cargo bench -p causeway-server --bench $b ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  cargo bench -p causeway-server --bench "$b" | tee "bench/raw/server-$b-$stamp${CAUSEWAY_BENCH_SUFFIX:-}.txt"
done
