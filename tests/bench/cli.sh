#!/usr/bin/env bash
# Cold start of the CLI, whole processes, warm component cache: `c41 list`
# and `c41 run hello-http` of a small file from a loopback server, against
# baselines run in the same loop: `c41 --version` (the process floor: a
# start that loads no skill) and `curl -o` of the same small file. Medians
# of RUNS (default 30). Asserts no timing: a benchmark, not a test.
#
#   cargo build --release -p c41 && tests/bench/cli.sh
#   C41=target/debug/c41 RUNS=10 tests/bench/cli.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-30}
C41=${C41:-target/release/c41}
[ -x "$C41" ] || { echo "no $C41: cargo build --release -p c41 (or set C41=)" >&2; exit 2; }

source tests/bench/common.sh
head -c 4096 /dev/urandom >"$work/www/small.bin"
export C41_CACHE_DIR="$work/cache" C41_STATE_DIR="$work/state"
# Warm: hello-http compiled and cached once, as after a first run.
"$C41" --config "$work/c41.toml" run hello-http path=/small.bin >/dev/null 2>&1

python3 - "$RUNS" "$C41" "$work" "$port" <<'PY'
import statistics, subprocess, sys, time
runs, c41, work, port = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cfg = ["--config", f"{work}/c41.toml"]
cmds = {
    "c41 --version": [c41, "--version"],
    "c41 list": [c41, *cfg, "list"],
    "curl -o (4 KiB)": ["curl", "-s", "-o", f"{work}/dl.bin", f"http://127.0.0.1:{port}/small.bin"],
    "c41 run hello-http (4 KiB)": [c41, *cfg, "run", "hello-http", "path=/small.bin"],
}
times = {k: [] for k in cmds}
for _ in range(runs):  # interleaved, so load changes hit every command alike
    for name, cmd in cmds.items():
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times[name].append(time.perf_counter() - t)
med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
print(f"whole processes, medians of {runs} ({c41})")
for k, v in med.items():
    print(f"  {k:<28} {v:7.1f} ms")
print(f"  c41 list / c41 --version:         {med['c41 list'] / med['c41 --version']:.2f}x")
print(f"  c41 run hello-http / curl -o:     {med['c41 run hello-http (4 KiB)'] / med['curl -o (4 KiB)']:.2f}x")
PY
