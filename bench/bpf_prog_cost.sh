#!/usr/bin/env bash
# Breaks the agent's per-syscall cost down by BPF program: runs `causeway watch`
# with kernel.bpf_stats_enabled=1 while a loop makes 50k HTTP-like
# request/response exchanges over loopback TCP (send/recv = sendto/recvfrom),
# then prints each program's mean run time from bpftool. Needs root, bpftool.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build -q --release -p causeway
command -v bpftool >/dev/null || { echo "needs bpftool (apt-get install bpftool)" >&2; exit 1; }
old=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
"$target/release/causeway" watch --format json >/dev/null 2>/tmp/causeway-bpf-cost.err &
agent=$!
trap 'kill -INT $agent 2>/dev/null || true; sysctl -qw kernel.bpf_stats_enabled="$old"' EXIT
until grep -q watching /tmp/causeway-bpf-cost.err; do sleep 0.1; done
python3 - <<'PY'
import socket
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
req = b"GET /x HTTP/1.1\r\nHost: bench\r\n\r\n"
resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
for _ in range(50000):
    c.send(req); s.recv(256); s.send(resp); c.recv(256)
PY
echo "program        ns/run   runs"
bpftool prog show | grep -A1 -E "name (enter|exit)_(sendto|recvfrom)\b" \
  | grep -oE "name [a-z_0-9]+|run_time_ns [0-9]+ run_cnt [0-9]+" | paste - - \
  | awk '{printf "%-14s %6.0f %6d\n", $2, $4/$6, $6}'
