#!/usr/bin/env bash
# The service on PostgreSQL under load, against the in-memory baselines: a throwaway PostgreSQL server on this machine
# at PostgreSQL's default durability (scripts/postgres.sh; deleted after the run), a fresh database on it for each run
# of the service, and bench/Chat.Load with the arguments given.
#
#   bench/load-postgres.sh --targets raw,signalr,service --clients 500 --rooms 10 --each 20 --in-flight 4
#   bench/load-postgres.sh --targets service --nodes 2 --clients 500 --rooms 10 --each 20 --in-flight 4
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=../scripts/postgres.sh
source scripts/postgres.sh
trap stop_postgres EXIT
trap 'exit 130' INT TERM
start_postgres

echo "Building the load generator, the baselines and the service (Release)..."
dotnet build -c Release bench/Chat.Load -nologo -v quiet >/dev/null
dotnet bench/Chat.Load/bin/Release/net10.0/Chat.Load.dll --postgres "$postgres_connection" "$@"
