#!/usr/bin/env bash
# A throw-away PostgreSQL server on localhost, for the tests and benchmarks of
# sweeps on a shared storage (and for trying `simloss sweep --storage` by hand).
#
#   bash scripts/postgres.sh start DIR     # create DIR/data (once), start it on a free port, print its URL
#   bash scripts/postgres.sh restart DIR   # pg_ctl restart (the tests' server-restart check)
#   bash scripts/postgres.sh stop DIR      # stop it (DIR stays; rm -r DIR removes everything)
#   bash scripts/postgres.sh url DIR       # print the URL again
#
# The server runs as the calling user, or as the `postgres` system user when
# called as root (PostgreSQL refuses to run as root; SIMLOSS_PG_USER names
# another). It listens on 127.0.0.1 only, on a free port, with its socket in
# DIR; its superuser `simloss` has a random password, written into the URL
# (also in DIR/url, mode 600). It needs PostgreSQL's server programs (initdb,
# pg_ctl): on Debian/Ubuntu `apt-get install -y postgresql`; they are looked
# for in /usr/lib/postgresql/*/bin, then on PATH.
#
# The tests read the URL from SIMLOSS_TEST_POSTGRES_URL and the folder from
# SIMLOSS_TEST_POSTGRES_DIR (only the restart test needs it):
#
#   dir=$(mktemp -d)
#   export SIMLOSS_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start "$dir") SIMLOSS_TEST_POSTGRES_DIR=$dir
#   .venv/bin/python -m pytest tests/experiments/test_sweep_postgres.py
#   bash scripts/postgres.sh stop "$dir" && rm -r "$dir"
set -euo pipefail

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

[ $# -eq 2 ] || die "usage: bash scripts/postgres.sh start|restart|stop|url DIR"
action=$1
dir=$(cd "$2" 2>/dev/null && pwd) || die "Expected DIR to be an existing folder, found '$2'"
data=$dir/data

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  initdb_path=$(command -v initdb || true)
  [ -n "$initdb_path" ] || die "PostgreSQL's server programs (initdb, pg_ctl) are not installed; on Debian/Ubuntu: apt-get install -y postgresql"
  bindir=$(dirname "$initdb_path")
fi

if [ "$(id -u)" -eq 0 ]; then
  user=${SIMLOSS_PG_USER:-postgres}
  id -u "$user" >/dev/null 2>&1 || die "running as root needs an unprivileged user to run the server, but user '$user' does not exist (set SIMLOSS_PG_USER)"
  as_user() { runuser -u "$user" -- "$@"; }
else
  user=$(id -un)
  as_user() { "$@"; }
fi

pg_ctl() { as_user "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" "$@"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ready() { # the server answers a query with the URL's credentials
  PGPASSWORD=$(cat "$dir/password") "$bindir/psql" -X -q -At -h 127.0.0.1 -p "$(cat "$dir/port")" \
    -U simloss -d postgres -c 'SELECT 1' >/dev/null 2>&1
}

fail_with_log() {
  echo "postgres.sh: $1; the end of $dir/server.log:" >&2
  tail -n 20 "$dir/server.log" >&2 2>/dev/null || true
  exit 1
}

case $action in
  start)
    if [ -d "$data" ]; then # a stopped server of this DIR: start it again, same port
      as_user "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1 ||
        pg_ctl -w -t 60 start >/dev/null || fail_with_log "the server did not start"
    else
      chown "$user" "$dir" 2>/dev/null || true
      password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
      (umask 077 && printf '%s\n' "$password" >"$dir/password")
      chown "$user" "$dir/password" 2>/dev/null || true
      as_user "$bindir/initdb" -D "$data" -U simloss --pwfile="$dir/password" \
        --auth=scram-sha-256 --no-locale -E UTF8 >"$dir/initdb.log" 2>&1 || {
        tail -n 20 "$dir/initdb.log" >&2
        die "initdb failed in $data (as user $user)"
      }
      for attempt in 1 2 3; do
        port=$(free_port)
        echo "$port" >"$dir/port"
        # In the configuration file, so that a plain `pg_ctl restart` keeps them.
        as_user tee -a "$data/postgresql.conf" >/dev/null <<EOF
# scripts/postgres.sh (attempt $attempt)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
EOF
        if pg_ctl -w -t 60 start >/dev/null 2>&1; then
          break
        fi
        grep -q "could not bind\|already in use" "$dir/server.log" 2>/dev/null &&
          [ "$attempt" -lt 3 ] || fail_with_log "the server did not start (port $port)"
      done
      (umask 077 && echo "postgresql://simloss:$password@127.0.0.1:$port/postgres" >"$dir/url")
    fi
    port=$(cat "$dir/port")
    for _ in $(seq 1 50); do
      ready && break
      sleep 0.2
    done
    ready || fail_with_log "the server started but does not answer on 127.0.0.1:$port"
    cat "$dir/url"
    ;;
  restart)
    [ -d "$data" ] || die "no server in $dir (start one first)"
    pg_ctl -w -t 60 -m fast restart >/dev/null || fail_with_log "the server did not restart"
    ready || fail_with_log "the server restarted but does not answer"
    ;;
  stop)
    [ -d "$data" ] || die "no server in $dir"
    if as_user "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      pg_ctl -w -t 60 -m fast stop >/dev/null || fail_with_log "the server did not stop"
    fi
    ;;
  url)
    [ -f "$dir/url" ] || die "no server in $dir (start one first)"
    cat "$dir/url"
    ;;
  *)
    die "unknown action '$action' (start, restart, stop or url)"
    ;;
esac
