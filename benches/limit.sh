#!/usr/bin/env bash
# The gateway beside the limit of its design (issue 15 point 1): the load generator with the
# same options against the reference server (benches/reference_server.rs: framing, rusmpp
# decode, a count, submit_sm_resp and one deliver_sm per MO, coalesced writes) and then
# against `icaze serve` on the embedded journal; prints both throughputs, both CPU-per-MO
# figures (the server process only, from /proc, as the load generator reports it) and the
# ratio.
#
#   benches/limit.sh [SECONDS] [RATE] [SEED]     # defaults: 20 s, max (closed loop), 1501
#
# Run it on a quiet machine: both servers share the 2 cores with the load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
rate=${2:-max}
seed=${3:-1501}
port_ref=2777
port_gw=2778

cargo build --release -p icaze -p icaze-sim >&2
ref_bin=$(cargo bench --bench reference_server --no-run 2>&1 |
  sed -n 's/.*Executable .* (\(.*\))$/\1/p' | tail -1)
[ -x "$ref_bin" ] || { echo "limit.sh: no reference_server binary" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "limit.sh: nothing listens on $1" >&2
  exit 1
}

loadgen() { # PORT REPORT
  extra=()
  [ "$rate" = max ] && extra=(--max-in-flight 16384)
  target/release/icaze-sim loadgen --target "127.0.0.1:$1" --binds 8 --rate "$rate" \
    --duration "${secs}s" --population 1000000 --seed "$seed" --rules config/rules.toml \
    --report "$2" --quiet "${extra[@]}" >&2 || true
}

"$ref_bin" --listen "127.0.0.1:$port_ref" 2>"$work/ref.log" &
pids+=($!)
wait_port $port_ref
loadgen $port_ref "$work/ref.json"
kill "${pids[0]}"

mkdir -p "$work/data"
sed -e "s|^rules = .*|rules = \"$PWD/config/rules.toml\"|" \
  -e "s|^data_dir = .*|data_dir = \"$work/data\"|" config/icaze.toml >"$work/icaze.toml"
target/release/icaze --config "$work/icaze.toml" serve --listen "127.0.0.1:$port_gw" \
  --admin-listen 127.0.0.1:0 2>"$work/gw.log" &
pids+=($!)
wait_port $port_gw
loadgen $port_gw "$work/gw.json"

python3 - "$work/ref.json" "$work/gw.json" <<'EOF'
import json, sys
rows = []
for name, path in (("reference server", sys.argv[1]), ("icaze (journal)", sys.argv[2])):
    r = json.load(open(path))
    rate = r["rates"]["answered"]
    cores = r["cpu"]["gateway"]
    us = cores / rate * 1e6 if rate and cores else float("nan")
    rows.append((name, rate, cores, us, r["cpu"]["loadgen"]))
print(f"{'server':<18} {'replies/s':>10} {'server cores':>13} {'CPU µs/MO':>10} {'loadgen cores':>14}")
for name, rate, cores, us, lg in rows:
    print(f"{name:<18} {rate:>10.0f} {cores:>13.2f} {us:>10.2f} {lg:>14.2f}")
(_, r_rate, _, r_us, _), (_, g_rate, _, g_us, _) = rows
print(f"ratio icaze / reference: throughput {g_rate / r_rate:.2f}, CPU per MO {g_us / r_us:.2f}")
EOF
