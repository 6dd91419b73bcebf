# A throwaway PostgreSQL server for the service's tests (test.sh) and its load on PostgreSQL (bench/load-postgres.sh):
# Debian's packages, installed when missing. Source it, then call start_postgres [fast] and, on exit, stop_postgres.
# shellcheck shell=bash

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
apt_updated=""
install_packages() {
  if [ -z "$apt_updated" ]; then
    $sudo apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# The newest PostgreSQL server installed, as Debian lays it out.
postgres_bin() {
  find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/pg_ctl' 2>/dev/null | sort -V | tail -n 1 | xargs -r dirname
}

# Starts a throwaway server on a free port of 127.0.0.1 and sets postgres_connection, the connection string of its
# superuser "chat"; stop_postgres stops it and deletes its files. With "fast", durability is off (fsync, synchronous
# commits and full-page writes), for tests whose data lives only as long as the run; without it, the server keeps
# PostgreSQL's defaults, as a service's database would.
start_postgres() {
  local durability=()
  if [ "${1:-}" = "fast" ]; then
    durability=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off)
  fi

  local bin
  bin=$(postgres_bin)
  if [ -z "$bin" ]; then
    echo "Installing PostgreSQL..."
    install_packages postgresql
    bin=$(postgres_bin)
  fi

  # PostgreSQL refuses to run as root: as root, the server runs as the postgres user the package created.
  local as=()
  pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/chat-postgres.XXXXXX")
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
  local port attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      continue
    fi
    if "${as[@]}" "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 start -o \
      "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$pg_dir ${durability[*]}" \
      >/dev/null; then
      pg_as=("${as[@]}")
      pg_bin=$bin
      postgres_connection="Host=127.0.0.1;Port=$port;Username=chat;Password=$password;Database=postgres"
      echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port${1:+ ($1)}."
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

