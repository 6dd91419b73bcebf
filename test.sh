#!/usr/bin/env bash
# Runs every test: the library's, the analyzers' and the reference service's. The service's page test drives a real
# headless Chromium, and its PostgreSQL tests a real PostgreSQL server: Debian's packages, installed here when they are
# missing. Unless CHAT_TEST_POSTGRES already names a server, a throwaway one is started on a free port of 127.0.0.1
# for the run, and deleted after it.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
apt_updated=""
install_packages() {
  if [ -z "$apt_updated" ]; then
    $sudo apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! command -v chromium >/dev/null 2>&1; then
  echo "Installing Chromium for the page test..."
  install_packages chromium
fi

# The newest PostgreSQL server installed, as Debian lays it out.
postgres_bin() {
  find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/pg_ctl' 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname
}

# Starts a throwaway server and exports CHAT_TEST_POSTGRES, the connection string of its superuser "chat".
start_postgres() {
  local bin
  bin=$(postgres_bin)
  if [ -z "$bin" ]; then
    echo "Installing PostgreSQL for the service's PostgreSQL tests..."
    install_packages postgresql
    bin=$(postgres_bin)
  fi

  # PostgreSQL refuses to run as root: as root, the server runs as the postgres user the package created.
  local as=()
  pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/chat-tests-postgres.XXXXXX")
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$pg_dir"
    as=(runuser -u postgres --)
  fi

  local password
  password=$(head -c 18 /dev/urandom | base64 | tr -d '+/=')
  printf '%s\n' "$password" >"$pg_dir/password"
  [ "$(id -u)" -ne 0 ] || chown postgres "$pg_dir/password"
  "${as[@]}" "$bin/initdb" -D "$pg_dir/data" -U chat --pwfile="$pg_dir/password" --auth=scram-sha-256 \
    -E UTF8 --locale=C >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log" >&2; return 1; }
  rm -f "$pg_dir/password"

  # A port nobody listens on; should another process take it first, the start fails and the next one is tried.
  # Durability is off: the server and its data live only as long as this run.
  local port attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      continue
    fi
    if "${as[@]}" "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 start -o \
      "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$pg_dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      >/dev/null; then
      pg_as=("${as[@]}")
      pg_bin=$bin
      export CHAT_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=chat;Password=$password;Database=postgres"
      echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') for the tests on 127.0.0.1:$port."
      return 0
    fi
  done

  cat "$pg_dir/server.log" >&2
  return 1
}

stop_postgres() {
  if [ -n "${pg_bin:-}" ]; then
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "${pg_dir:-}" ]; then
    rm -rf "$pg_dir"
  fi
}

if [ -z "${CHAT_TEST_POSTGRES:-}" ]; then
  trap stop_postgres EXIT
  trap 'exit 130' INT TERM
  start_postgres
fi

dotnet test "$@"
