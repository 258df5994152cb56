#!/usr/bin/env bash
# What Causeway's Go runtime probes cost a Go program: ns per scheduler event
# (goroutine switch, go statement, channel operation) and per request of a Go
# HTTP service, with no agent, and with `causeway watch --goroutine-tracking`
# off / spawn / channels. Also each probe program's in-kernel run time, and
# how many probe hits each operation made, from kernel.bpf_stats_enabled.
#
#   sudo bash bench/go-runtime-probes.sh        # ROUNDS=3 OPS=100000 REQUESTS=4000
#
# Needs root, bpftool and go (scripts/setup installs go; apt-get install
# bpftool). Probes are system-wide: other Go programs running at the same
# time add hits to the counts.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build -q --release -p causeway
command -v bpftool >/dev/null || { echo "needs bpftool (apt-get install bpftool)" >&2; exit 1; }
work=$(mktemp -d)
old=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled="$old"; rm -rf "$work"' EXIT
build() { GO111MODULE=off GOPROXY=off GOCACHE="$work/cache" go build -o "$work/$1" "$2"; }
build go-runtime-bench bench/go-runtime/main.go
build go_spawn crates/causeway/tests/fixtures/go_spawn/main.go
go version
CAUSEWAY="$target/release/causeway" WORK="$work" python3 - <<'PY'
import json, os, signal, socket, statistics, subprocess, time

causeway, work = os.environ["CAUSEWAY"], os.environ["WORK"]
rounds = int(os.environ.get("ROUNDS", "3"))
ops = int(os.environ.get("OPS", "100000"))
requests = int(os.environ.get("REQUESTS", "4000"))
modes = ["none", "off", "spawn", "channels"]
phases = ["switch", "spawn", "chan"]

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(p):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", p)).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on port {p}")

def prog_stats():
    out = json.loads(subprocess.check_output(["bpftool", "-j", "prog", "show"]))
    return {p["name"]: (p.get("run_time_ns", 0), p.get("run_cnt", 0))
            for p in out if p.get("name", "").startswith("go_")}

def start_watch(mode):
    if mode == "none":
        return None
    w = subprocess.Popen([causeway, "watch", "--format", "json", "--goroutine-tracking", mode],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in w.stderr:
        if "watching" in line:
            return w
    raise SystemExit("causeway watch did not start")

def stop_watch(w):
    if w:
        w.send_signal(signal.SIGINT); w.stderr.read(); w.wait()

def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])

micro = {(m, p): [] for m in modes for p in phases}   # ns per op
hits = {p: {} for p in phases}                         # probe -> [hits per op]
bpfns = {}                                             # probe -> [ns per run]
service = {m: [] for m in modes}                       # (req/s, cpu us per request)
svc_hits = {m: {} for m in modes}                      # probe -> [hits per request]
tck = os.sysconf("SC_CLK_TCK")
for r in range(rounds):
    for mode in modes:
        # Micro-benchmarks: one process per phase, started (and blocked on
        # stdin) before the watch, whose first scan probes them.
        procs = {p: subprocess.Popen([f"{work}/go-runtime-bench", p, str(ops)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env={**os.environ, "GOMAXPROCS": "2"})
                 for p in phases}
        time.sleep(0.2)
        w = start_watch(mode)
        for p, proc in procs.items():
            before = prog_stats()
            out, _ = proc.communicate("go\n")
            after = prog_stats()
            micro[(mode, p)].append(float(out.split()[1]))
            if mode == "channels":
                for name, (ns, cnt) in after.items():
                    d_ns, d_cnt = ns - before.get(name, (0, 0))[0], cnt - before.get(name, (0, 0))[1]
                    hits[p].setdefault(name, []).append(d_cnt / ops)
                    if d_cnt:
                        bpfns.setdefault(name, []).append(d_ns / d_cnt)
        # The Go HTTP service of the goroutine test under load.
        down, port = free_port(), free_port()
        d = subprocess.Popen([f"{work}/go_spawn", "downstream", str(down)])
        s = subprocess.Popen([f"{work}/go_spawn", "service", str(port), str(down)],
                             stdout=subprocess.DEVNULL, env={**os.environ, "GOMAXPROCS": "4"})
        wait_port(down); wait_port(port)
        stop_watch(w)
        w = start_watch(mode)
        before = prog_stats()
        c0, t0 = cpu_ticks(s.pid), time.monotonic()
        subprocess.run([f"{work}/go_spawn", "load", str(port), str(requests), "32"], check=True,
                       stdout=subprocess.DEVNULL)
        t1, c1 = time.monotonic(), cpu_ticks(s.pid)
        for name, (ns, cnt) in prog_stats().items():
            # All three go_spawn processes (service, downstream, load) are
            # probed: hits per request of the whole exchange.
            svc_hits[mode].setdefault(name, []).append((cnt - before.get(name, (0, 0))[1]) / requests)
        service[mode].append((requests / (t1 - t0), (c1 - c0) / tck * 1e6 / requests))
        stop_watch(w)
        for p in (s, d):
            p.terminate(); p.wait()

med = statistics.median
print(f"\nrounds {rounds}, {ops} operations per micro-benchmark, {requests} service requests; medians (min-max)")
print(f"\n{'ns per op':<10}" + "".join(f"{m:>22}" for m in modes))
for p in phases:
    cells = [micro[(m, p)] for m in modes]
    print(f"{p:<10}" + "".join(f"{med(v):>10.0f} ({min(v):.0f}-{max(v):.0f})".rjust(22) for v in cells))
print(f"\n{'service':<10}" + "".join(f"{m:>22}" for m in modes))
for i, what in enumerate(["req/s", "CPU us/req"]):
    cells = [[x[i] for x in service[m]] for m in modes]
    print(f"{what:<10}" + "".join(f"{med(v):>10.0f} ({min(v):.0f}-{max(v):.0f})".rjust(22) for v in cells))
print("\nprobe hits per op (channels mode)")
names = sorted({n for p in phases for n in hits[p]})
print(f"{'':<22}" + "".join(f"{p:>10}" for p in phases))
for n in names:
    print(f"{n:<22}" + "".join(f"{med(hits[p].get(n, [0])):>10.2f}" for p in phases))
print("\nprobe hits per service request (service, downstream and load generator together)")
print(f"{'':<22}" + "".join(f"{m:>10}" for m in ("spawn", "channels")))
for n in sorted(set(svc_hits["spawn"]) | set(svc_hits["channels"])):
    cells = [med(svc_hits[m].get(n, [0])) for m in ("spawn", "channels")]
    if any(cells):
        print(f"{n:<22}" + "".join(f"{c:>10.2f}" for c in cells))
print("\nin-kernel run time per hit (bpf_stats, channels mode, micro-benchmarks): median (min-max) over rounds")
for n in names:
    if n in bpfns:
        v = bpfns[n]
        print(f"{n:<22}{med(v):>8.0f} ns ({min(v):.0f}-{max(v):.0f})")
PY
