#!/usr/bin/env bash
# Runs every test: the library's, the analyzers' and the reference service's. The service's page test drives a real
# headless Chromium, and its PostgreSQL tests a real PostgreSQL server: Debian's packages, installed here when they are
# missing. Unless CHAT_TEST_POSTGRES already names a server, a throwaway one is started on a free port of 127.0.0.1
# for the run, and deleted after it.
set -euo pipefail
cd "$(dirname "$0")"

# shellcheck source=scripts/postgres.sh
source scripts/postgres.sh

if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing Chromium for the page test..."
  install_packages chromium
fi

if [ -z "${CHAT_TEST_POSTGRES:-}" ]; then
  trap stop_postgres EXIT
  trap 'exit 130' INT TERM
  start_postgres fast
  export CHAT_TEST_POSTGRES="$postgres_connection"
fi

dotnet test "$@"
