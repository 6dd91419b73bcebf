#!/usr/bin/env bash
# The load runs of docs/load.md, all of them, one after the other: the service against the in-memory baselines with
# 500 clients in 10 rooms sending 20 messages each and with 200 sending 50 each, on SQLite and on PostgreSQL, and the
# service on PostgreSQL with one node and then two; each RUNS times (3 by default). Writes Chat.Load's output of each
# run to bench/results/load-<time>/, and load.md there: the tables as Chat.Load printed them, under a heading per case,
# ready to go into docs/load.md.
#
#   bench/load-runs.sh [--runs N] [--warmup W]      # W messages per client before each measured phase (20)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
warmup=20
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    *) echo "Unknown argument $1: --runs N, --warmup W" >&2; exit 2 ;;
  esac
done

# shellcheck source=../scripts/postgres.sh
source scripts/postgres.sh
trap stop_postgres EXIT
trap 'exit 130' INT TERM
start_postgres

echo "Building the load generator, the baselines and the service (Release)..."
dotnet build -c Release bench/Chat.Load -nologo -v quiet >/dev/null
out="bench/results/load-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
load() { dotnet bench/Chat.Load/bin/Release/net10.0/Chat.Load.dll --in-flight 4 --warmup "$warmup" "$@"; }

# Each case: a name, then Chat.Load's arguments; "postgres" among them stands for the throwaway server's.
cases=(
  "sqlite-500|SQLite, 500 clients, 10 rooms, 20 messages each|--targets raw,signalr,service --clients 500 --rooms 10 --each 20"
  "sqlite-200|SQLite, 200 clients, 10 rooms, 50 messages each|--targets raw,signalr,service --clients 200 --rooms 10 --each 50"
  "postgres-500|PostgreSQL, one node, 500 clients, 10 rooms, 20 messages each|--targets raw,signalr,service --clients 500 --rooms 10 --each 20 postgres"
  "postgres-200|PostgreSQL, one node, 200 clients, 10 rooms, 50 messages each|--targets raw,signalr,service --clients 200 --rooms 10 --each 50 postgres"
  "nodes-1|PostgreSQL, one node, 500/10/20 (against two, below)|--targets service --nodes 1 --clients 500 --rooms 10 --each 20 postgres"
  "nodes-2|PostgreSQL, two nodes on one database, 500/10/20|--targets service --nodes 2 --clients 500 --rooms 10 --each 20 postgres"
)

for run in $(seq 1 "$runs"); do
  for case in "${cases[@]}"; do
    IFS='|' read -r name _ arguments <<<"$case"
    read -r -a argv <<<"$arguments"
    for i in "${!argv[@]}"; do
      if [ "${argv[$i]}" = postgres ]; then argv[$i]="--postgres"; argv+=("$postgres_connection"); fi
    done
    echo "Run $run of $runs: $name"
    load "${argv[@]}" >"$out/$name-run-$run.txt"
  done
done

{
  echo "Commit \`$(git rev-parse --short=12 HEAD)\`$(git diff --quiet HEAD -- samples bench || echo ' (with uncommitted changes)'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); \`bench/load-runs.sh --runs $runs --warmup $warmup\`."
  for case in "${cases[@]}"; do
    IFS='|' read -r name title arguments <<<"$case"
    echo
    echo "### $title"
    echo
    echo "\`${arguments/ postgres/ --postgres ...} --in-flight 4 --warmup $warmup\`"
    for run in $(seq 1 "$runs"); do
      echo
      echo "Run $run:"
      echo
      grep '^|' "$out/$name-run-$run.txt"
    done
  done
} >"$out/load.md"
echo "Written to $out/ (load.md: the tables)."
