#!/usr/bin/env bash
# Three icaze nodes on one Redis Cluster (3 primaries + 3 replicas), all on this machine,
# driven by one loadgen whose binds are spread over the three nodes and whose oracle spans
# them (issue 15 point 4). Prints loadgen's report and the CPU of every process.
#
#   simulators/cluster3.sh [RATE] [SECONDS] [SEED]      # defaults: 20000 MO/s, 30 s, 1701
#
# NODE_EXTRA is TOML appended to every node's config (e.g. $'[redis]\nreplicas = 1').
# KILL_PRIMARY_AT=N kills (-9) the primary of the first slot range N seconds into the run,
# so the cluster fails over under load (cluster-node-timeout 5 s). Needs redis-server and
# redis-cli. Everything it starts is stopped at exit; its files are in a temp directory.
# Node N's admin API (and /metrics) listens on 127.0.0.1:SMPP_BASE_PORT+10+N (2821-2823);
# SAMPLE=FILE writes every node's MO counters there once a second.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-20000}
secs=${2:-30}
seed=${3:-1701}
base=${REDIS_BASE_PORT:-7100}
smpp_base=${SMPP_BASE_PORT:-2810}

cargo build --release -p icaze -p icaze-sim >&2
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap "cat $work/node*.log >&2; cleanup" EXIT

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "cluster3.sh: nothing listens on $1" >&2
  exit 1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Six cluster-enabled servers, AOF on (fsync every second, Redis's default).
declare -A redis_pid
for i in 0 1 2 3 4 5; do
  port=$((base + i))
  mkdir -p "$work/redis-$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$work/redis-$port" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
    --cluster-require-full-coverage no \
    --appendonly yes --save "" --daemonize no --logfile "$work/redis-$port/log" &
  redis_pid[$port]=$!
  pids+=($!)
done
for i in 0 1 2 3 4 5; do wait_port $((base + i)); done
nodes=()
for i in 0 1 2 3 4 5; do nodes+=("127.0.0.1:$((base + i))"); done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$work/create.log"
for _ in $(seq 100); do
  redis-cli -p "$base" cluster info | grep -q 'cluster_state:ok' && break
  sleep 0.1
done

# Three gateway nodes, each with its own node_id, data directory and SMPP port.
store="[$(printf '"redis://%s",' "${nodes[@]:0:3}" | sed 's/,$//')]"
targets=()
declare -A gw_pid
for n in 1 2 3; do
  port=$((smpp_base + n))
  sed -e "s|^rules = .*|rules = \"$PWD/config/rules.toml\"|" \
    -e "s|^data_dir = .*|data_dir = \"$work/node$n\"|" \
    -e "s|^store = .*|store = $store|" \
    -e "s|^node_id = [0-9]*|node_id = $n|" \
    config/icaze.toml >"$work/node$n.toml"
  # NODE_EXTRA: TOML appended to each node's config, e.g. $'[redis]\nreplicas = 1'.
  [ -n "${NODE_EXTRA:-}" ] && printf '\n%s\n' "$NODE_EXTRA" >>"$work/node$n.toml"
  RUST_LOG=${NODE_LOG:-info} "$bin/icaze" --config "$work/node$n.toml" serve --listen "127.0.0.1:$port" \
    --admin-listen "127.0.0.1:$((smpp_base + 10 + n))" 2>"$work/node$n.log" &
  gw_pid[$n]=$!
  pids+=($!)
  targets+=("127.0.0.1:$port")
done
for n in 1 2 3; do wait_port $((smpp_base + n)); done

declare -A before
for n in 1 2 3; do before[gw$n]=$(ticks "${gw_pid[$n]}"); done
for p in "${!redis_pid[@]}"; do before[r$p]=$(ticks "${redis_pid[$p]}"); done
if [ -n "${KILL_PRIMARY_AT:-}" ]; then
  (sleep "$KILL_PRIMARY_AT"; kill -9 "${redis_pid[$base]}"; echo "killed the primary on $base at ${KILL_PRIMARY_AT}s" >&2) &
fi
# SAMPLE=FILE: every second, each node's MOs answered so far by outcome (from /metrics).
if [ -n "${SAMPLE:-}" ]; then
  (t=0; while sleep 1; do t=$((t + 1)); for n in 1 2 3; do
    curl -s "127.0.0.1:$((smpp_base + 10 + n))/metrics" | grep -E '^icaze_(mos_total|store|redis)' |
      sed "s/^/$t node$n /"; done; done >"$SAMPLE") &
  pids+=($!)
fi
start=$(date +%s.%N)
set +e
"$bin/icaze-sim" loadgen --target "$(IFS=,; echo "${targets[*]}")" --binds 12 \
  --rate "$rate" --duration "${secs}s" --population 1000000 --seed "$seed" \
  --rules config/rules.toml --gateway-pid "${gw_pid[1]}" --quiet ${LOADGEN_ARGS:-}
rc=$?
set -e
took=$(echo "$(date +%s.%N) - $start" | bc -l)
echo "cpu per process over ${took%.*} s (cores):"
for n in 1 2 3; do
  t=$(ticks "${gw_pid[$n]}")
  printf '  icaze node %s    %.2f\n' "$n" "$(echo "($t - ${before[gw$n]}) / 100 / $took" | bc -l)"
done
for p in $(echo "${!redis_pid[@]}" | tr ' ' '\n' | sort); do
  t=$(ticks "${redis_pid[$p]}")
  role=$(redis-cli -p "$p" role 2>/dev/null | head -1 || echo gone)
  printf '  redis %s %-7s %.2f\n' "$p" "${role:-gone}" "$(echo "($t - ${before[r$p]}) / 100 / $took" | bc -l)"
done
grep -h "redis" "$work"/node*.log | grep -iE "warn|error" | cut -c1-200 | sort | uniq -c | sort -rn | head -5 >&2 || true
exit $rc
