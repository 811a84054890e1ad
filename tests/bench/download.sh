#!/usr/bin/env bash
# Big-file download: `c41 run hello-http` of one file from a loopback HTTP
# server into the artifact store, against `curl -o` of the same URL, both as
# whole processes (start-up, policy check, streaming, sha256, fsync included
# for c41). Prints wall time, throughput, peak RSS and the ratio; with
# PERF=1 also records the c41 run with `perf record -g` and prints the top
# symbols (where the time goes). Asserts no timing: a benchmark, not a test.
#
#   tests/bench/download.sh                  # 256 MB, target/release/c41
#   MB=64 C41=target/debug/c41 tests/bench/download.sh
#   PERF=1 tests/bench/download.sh           # plus a profile (needs linux-perf)
#
# Build first: `cargo build --release -p c41` (the debug build runs wasmtime
# and hyper unoptimised: its ratio says nothing about a user's install).
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=${MB:-256}
RUNS=${RUNS:-3}
C41=${C41:-target/release/c41}
[ -x "$C41" ] || { echo "no $C41: cargo build --release -p c41 (or set C41=)" >&2; exit 2; }

source tests/bench/common.sh
head -c $((MB << 20)) /dev/urandom >"$work/www/big.bin"

export XDG_CACHE_HOME="$work/cache" XDG_STATE_HOME="$work/state" XDG_DATA_HOME="$work/data"
c41() { "$C41" --config "$work/c41.toml" run hello-http path=/big.bin >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }; }
# Warm: the component is compiled once and cached, as after `c41 install`.
"$C41" --config "$work/c41.toml" run hello-http path=/ >/dev/null 2>&1 || true

# measure NAME CMD... -> "seconds max_rss_kib" of the fastest of $RUNS runs
measure() {
  local best="" line
  for _ in $(seq "$RUNS"); do
    rm -rf "$work/out"/* "$work/dl.bin"; sync
    line=$(/usr/bin/time -f '%e %M' "$@" 2>&1 >/dev/null | tail -1)
    if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN{exit !(a<b)}'; then best=$line; fi
  done
  echo "$best"
}
export -f c41; export C41 work
curl_r=$(measure curl -s -o "$work/dl.bin" "http://127.0.0.1:$port/big.bin")
# curl plus the fsync c41 does before it calls a file stored (coreutils' sync FILE).
export port
sync_r=$(measure bash -c 'curl -s -o "$work/dl.bin" "http://127.0.0.1:$port/big.bin" && sync "$work/dl.bin"')
# The same work the store does, one step after another: download, SHA-256
# (openssl's, which uses the CPU's SHA extensions as c41's does), fsync.
hash_r=$(measure bash -c 'curl -s -o "$work/dl.bin" "http://127.0.0.1:$port/big.bin" && openssl dgst -sha256 "$work/dl.bin" >/dev/null && sync "$work/dl.bin"')
c41_r=$(measure bash -c c41)
read -r ct crss <<<"$curl_r"; read -r ft _ <<<"$sync_r"; read -r ht _ <<<"$hash_r"; read -r st srss <<<"$c41_r"
awk -v mb="$MB" -v ct="$ct" -v ft="$ft" -v ht="$ht" -v st="$st" -v crss="$crss" -v srss="$srss" -v bin="$C41" 'BEGIN{
  printf "%d MiB over loopback, best of runs, whole processes (%s)\n", mb, bin
  printf "  curl -o           %6.2f s  %7.1f MiB/s  peak RSS %6.1f MiB\n", ct, mb/ct, crss/1024
  printf "  curl -o + fsync    %6.2f s  %7.1f MiB/s\n", ft, mb/ft
  printf "  curl -o + sha256 + fsync %5.2f s  %7.1f MiB/s\n", ht, mb/ht
  printf "  c41 run hello-http %5.2f s  %7.1f MiB/s  peak RSS %6.1f MiB\n", st, mb/st, srss/1024
  printf "  c41 / curl throughput: %.2fx (vs curl + fsync: %.2fx; vs curl + sha256 + fsync: %.2fx)\n", ct/st, ft/st, ht/st }'

if [ "${PERF:-0}" = 1 ]; then
  rm -rf "$work/out"/*
  perf record -q -g -o "$work/perf.data" -- "$C41" --config "$work/c41.toml" run hello-http path=/big.bin \
    >/dev/null 2>&1
  perf report -i "$work/perf.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | sed -E 's/ {2,}/  /g' | cut -c1-150 | head -"${TOP:-30}"
fi
