#!/usr/bin/env bash
# Where the chat servers' CPU time goes under load. bench/Chat.Load drives the raw in-memory baseline and then the
# service (on its embedded SQLite file, or PostgreSQL) with the same load, and Linux perf samples each server's processes while its
# messages flow (Chat.Load --perf: from the first send to the last delivery); then each server's samples
# are grouped by what they ran in (bench/profile-groups.awk: the SQLite engine, the kernel, the runtime's GC, Kestrel,
# WebSockets, JSON, the server's own code, ...), and each group's share is turned into microseconds of CPU per delivered
# message with the server's CPU time per delivery that Chat.Load measured in the same run.
#
#   bench/profile.sh                                   # 500 clients, 10 rooms, 100 messages each, 4 in flight
#   bench/profile.sh --clients 200 --rooms 10 --each 250 --in-flight 4
#   bench/profile.sh --on-postgres --nodes 2 --clients 500 --rooms 10 --each 40 --in-flight 4 --warmup 40
#       # the service on a throwaway PostgreSQL server (scripts/postgres.sh, default durability), its nodes profiled
#       # together
#   bench/profile.sh --service-from DIR [load arguments]   # the service as built in DIR, e.g. an earlier commit's:
#     git worktree add /tmp/before COMMIT && dotnet build -c Release /tmp/before/samples/Chat
#     bench/profile.sh --service-from /tmp/before/samples/Chat/bin/Release/net10.0
#
# Writes bench/results/profile-<time>/: Chat.Load's output, perf's data, each server's symbols (perf report) and
# profile.md, the tables. The servers run with the runtime's perf map on (DOTNET_PerfMapEnabled=1), which names the
# methods it compiles, with write-xor-execute off (DOTNET_EnableWriteXorExecute=0), so that compiled code runs at the
# addresses the map gives, and without the framework's precompiled code (DOTNET_ReadyToRun=0), which the map would
# not name: every method is compiled, and named; the compiler's own time shows as a group. All three apply to the
# load generator as well. The runtime's own native code (GC, thread pool, stubs) has no symbols in its release build: it is
# one group. Sampling costs the servers a little CPU: compare a profile's figures with each other, and throughput
# with Chat.Load's runs without a profiler.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v perf >/dev/null 2>&1; then
  echo "Installing Linux perf..."
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq linux-perf >/dev/null
fi

service_from=""
if [ "${1:-}" = "--service-from" ]; then
  [ $# -ge 2 ] && [ -f "$2/Chat.dll" ] || { echo "--service-from needs a folder holding a Release build of samples/Chat (Chat.dll)" >&2; exit 2; }
  service_from=$(cd "$2" && pwd)
  shift 2
fi

on_postgres=""
if [ "${1:-}" = "--on-postgres" ]; then
  on_postgres=1
  shift
fi

args=("$@")
# Five times the messages of the load runs in docs/load.md: seconds of samples, past the first compilations.
[ ${#args[@]} -gt 0 ] || args=(--clients 500 --rooms 10 --each 100 --in-flight 4)
# As typed, for the report: never the throwaway server's connection string, which holds its password.
command_line="${on_postgres:+--on-postgres }${args[*]}"

echo "Building the load generator, the baselines and the service (Release)..."
dotnet build -c Release bench/Chat.Load -nologo -v quiet >/dev/null

out="bench/results/profile-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
load=bench/Chat.Load/bin/Release/net10.0
if [ -n "$service_from" ]; then
  # The load generator and the baselines as built here, the service as built there (its files over theirs).
  cp -r "$load" "$out/load-bin"
  cp -r "$service_from"/. "$out/load-bin/"
  load="$out/load-bin"
fi

if [ -n "$on_postgres" ]; then
  # shellcheck source=../scripts/postgres.sh
  source scripts/postgres.sh
  trap stop_postgres EXIT
  start_postgres
  args=(--postgres "$postgres_connection" "${args[@]}")
fi

export DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0 DOTNET_ReadyToRun=0
dotnet "$load/Chat.Load.dll" --targets raw,service --perf "$out" "${args[@]}" | tee "$out/load.txt"

{
  echo "# Where the servers' CPU goes"
  echo
  echo "\`bench/profile.sh $command_line\`, commit \`$(git rev-parse --short=12 HEAD)\`$(git diff --quiet HEAD -- samples bench || echo ' (with uncommitted changes)'), $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')."
  if [ -n "$service_from" ]; then
    echo
    # Its commit, not its folder, which is this machine's.
    built=$(git -C "$service_from" rev-parse --short=12 HEAD 2>/dev/null || true)
    if [ -n "$built" ]; then
      echo "The service is the build of commit \`$built\`, through \`--service-from\`."
    else
      echo "The service is another build, through \`--service-from\`."
    fi
  fi
  echo
  echo "Chat.Load's table for this run (with the profiler sampling):"
  echo
  grep '^|' "$out/load.txt"
  for target in raw service; do
    pid=$(sed -n "s/^$target at .* (process \([0-9]*\))\$/\1/p" "$out/load.txt" | paste -sd, -)
    # The column is found by its heading, wherever the table puts it.
    us=$(awk -F'|' -v target="$target" '
      /^\| server \|/ { for (i = 1; i <= NF; i++) if ($i ~ /server CPU per delivery/) column = i }
      $2 == " " target " " { value = $column; gsub(/[^0-9.]/, "", value); print value }' "$out/load.txt")
    perf report -i "$out/$target.perf.data" -n --no-children --sort dso,sym --stdio 2>/dev/null >"$out/$target-symbols.txt"
    echo
    echo "**$target** (process $pid, $us µs of CPU per delivery):"
    echo
    awk -v us_per_delivery="$us" -f bench/profile-groups.awk "$out/$target-symbols.txt"
  done
} >"$out/profile.md"

echo
cat "$out/profile.md"
echo
echo "Written to $out/ (profile.md; each server's symbols in <target>-symbols.txt)."
