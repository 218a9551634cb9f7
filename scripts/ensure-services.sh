#!/usr/bin/env bash
# shellcheck shell=bash
# Sourced by scripts/test.sh, or run on its own: makes sure the services the tests use answer.
#
#   PostgreSQL  ${PGHOST:-127.0.0.1}:${PGPORT:-5432}, reachable over TCP as superuser `postgres`
#               without a password; exported as TEST_DATABASE_URL
#               (default postgres://postgres@127.0.0.1:5432/postgres, the tests' own default).
#   Redis       127.0.0.1:6379 (or TEST_REDIS_URL when set).
#   PgBouncer   the binary only (test/e2e/pgbouncer.e2e-spec.ts starts its own on a free port);
#               installed when missing. If it cannot be, the rest runs and that test fails saying so.
#
# Installed but stopped: started (the Debian cluster via pg_ctlcluster, else a cluster of our own in
# /var/tmp/strata-pg run as the `postgres` user). Not installed: `apt-get install` (needs root).
# A TEST_DATABASE_URL / TEST_REDIS_URL set by the caller is only checked, never started or changed.
# Waits are bounded; a service that never answers is reported and the script fails (exit 1).

_strata_log() { echo "strata: $*" >&2; }

_strata_wait() { # name seconds command... -> 0 as soon as the command succeeds (deadline-bounded)
  local name=$1 secs=$2 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      _strata_log "$name did not answer within ${secs}s"
      return 1
    fi
    sleep 1
  done
}

_strata_apt_updated=
_strata_apt_install() { # packages... (quiet; prints apt's output only when it fails)
  local log
  if [ "$(id -u)" != 0 ]; then
    _strata_log "$* missing and not root: install them (apt-get install $*) or start the services yourself"
    return 1
  fi
  _strata_log "installing $* with apt-get"
  log="$(mktemp)"
  if { [ -n "$_strata_apt_updated" ] || apt-get update -qq; } >"$log" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" </dev/null >>"$log" 2>&1; then
    _strata_apt_updated=1
    rm -f "$log"
    return 0
  fi
  _strata_log "apt-get install $* failed:"
  tail -n 30 "$log" >&2
  rm -f "$log"
  return 1
}

# Debian puts versioned server binaries in /usr/lib/postgresql/<v>/bin; psql and pg_isready usually
# have wrappers in /usr/bin, but not when only the server package is there.
_strata_pg_bindir() { find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1; }
_strata_pg_path() {
  local bin
  bin="$(_strata_pg_bindir)"
  if [ -n "$bin" ] && { ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1; }; then
    PATH="$PATH:$bin"
    export PATH
  fi
}

_strata_pg_superuser() { # url -> 0 when it connects (without a password) as a superuser
  [ "$(PGCONNECT_TIMEOUT=5 psql "$1" -wXAtqc 'select rolsuper from pg_roles where rolname = current_user' 2>/dev/null)" = t ]
}

_strata_pg_wants_password() { # host port -> 0 when loopback logins of other roles need a password
  # The tests connect as roles they create, without passwords. Probe with a role that does not
  # exist: trust answers "role ... does not exist", password methods ask for a password.
  PGCONNECT_TIMEOUT=5 psql -wX -h "$1" -p "$2" -U strata_probe_no_such_role -d postgres -c 'select 1' 2>&1 |
    grep -qiE 'password|authentication failed'
}

_strata_pg_admin() { # port sql -> run as a local administrator over the Unix socket (peer/trust)
  local port=$1 sql=$2 sock
  psql -wX -p "$port" -d postgres -v ON_ERROR_STOP=1 -Atqc "$sql" 2>/dev/null && return 0
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
    (cd / && runuser -u postgres -- psql -wX -p "$port" -d postgres -v ON_ERROR_STOP=1 -Atqc "$sql") 2>/dev/null && return 0
  fi
  for sock in /var/run/postgresql /tmp; do
    psql -wX -h "$sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -Atqc "$sql" 2>/dev/null && return 0
    psql -wX -h "$sock" -p "$port" -d postgres -v ON_ERROR_STOP=1 -Atqc "$sql" 2>/dev/null && return 0
  done
  return 1
}

_strata_pg_start_local() { # port -> start some local server on that port
  local port=$1 ver cluster cport _rest bin data
  # A Debian cluster configured for this port.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r ver cluster cport _rest; do
      [ "$cport" = "$port" ] || continue
      _strata_log "starting PostgreSQL cluster $ver/$cluster"
      # pg_ctlcluster waits for the server itself; when it fails, do not wait long for it.
      if pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start >/dev/null 2>&1; then
        _strata_wait "PostgreSQL $ver/$cluster" 30 pg_isready -h 127.0.0.1 -p "$port" && return 0
      else
        _strata_wait "PostgreSQL $ver/$cluster" 3 pg_isready -h 127.0.0.1 -p "$port" && return 0
      fi
    done < <(pg_lsclusters -h 2>/dev/null)
  fi
  # Otherwise a cluster of our own. initdb and pg_ctl refuse root: run them as `postgres`.
  bin="$(_strata_pg_bindir)"
  [ -x "$bin/initdb" ] || { _strata_log "no initdb under /usr/lib/postgresql"; return 1; }
  data=/var/tmp/strata-pg
  local -a as=()
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/tmp --shell /usr/sbin/nologin postgres || return 1
    as=(runuser -u postgres --)
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    _strata_log "creating a PostgreSQL cluster in $data"
    rm -rf "$data" || return 1
    mkdir -p "$data" || return 1
    chmod 700 "$data" || return 1
    if [ "$(id -u)" = 0 ]; then chown postgres: "$data" || return 1; fi
    if ! (cd / && "${as[@]}" "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 >"/tmp/strata-initdb.log" 2>&1); then
      _strata_log "initdb failed:"
      cat /tmp/strata-initdb.log >&2
      return 1
    fi
  fi
  _strata_log "starting PostgreSQL from $data on 127.0.0.1:$port"
  if ! (cd / && "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k /tmp" start >/dev/null 2>&1); then
    _strata_log "pg_ctl start failed; last lines of $data/server.log:"
    tail -n 20 "$data/server.log" >&2
    return 1
  fi
}

_strata_ensure_postgres() {
  local host="${PGHOST:-127.0.0.1}" port="${PGPORT:-5432}" url hba local_host=
  case "$host" in 127.0.0.1 | localhost | ::1) local_host=1 ;; esac

  if ! command -v psql >/dev/null 2>&1 || ! command -v pg_isready >/dev/null 2>&1; then _strata_pg_path; fi

  if [ -n "${TEST_DATABASE_URL:-}" ]; then
    # The caller chose the server: check it, do not touch it.
    command -v psql >/dev/null 2>&1 || _strata_apt_install postgresql-client || return 1
    if ! _strata_wait "PostgreSQL at TEST_DATABASE_URL" 30 _strata_pg_superuser "$TEST_DATABASE_URL"; then
      _strata_log "TEST_DATABASE_URL must connect, without a password prompt, as a superuser"
      return 1
    fi
    return 0
  fi

  if ! pg_isready -h "$host" -p "$port" -q 2>/dev/null; then
    if [ -z "$local_host" ]; then
      # Not ours to start.
      _strata_wait "PostgreSQL at $host:$port" 30 pg_isready -h "$host" -p "$port" || return 1
    else
      if [ -z "$(_strata_pg_bindir)" ] || ! command -v psql >/dev/null 2>&1; then
        _strata_apt_install postgresql || return 1
        _strata_pg_path
      fi
      # A freshly installed package may have started its cluster already.
      if ! pg_isready -h "$host" -p "$port" -q 2>/dev/null; then
        _strata_pg_start_local "$port" || return 1
      fi
      _strata_wait "PostgreSQL at $host:$port" 60 pg_isready -h "$host" -p "$port" || return 1
    fi
  fi

  url="postgres://postgres@${host}:${port}/postgres"
  [ "$host" != ::1 ] || url="postgres://postgres@[::1]:${port}/postgres"
  if [ -n "$local_host" ]; then
    # Up, but `postgres` may be missing or no superuser, and loopback logins may need passwords
    # (Debian's default pg_hba.conf): fix both as the local administrator. This is for machines
    # that run the tests; each change is reported.
    if _strata_pg_wants_password "$host" "$port"; then
      hba="$(_strata_pg_admin "$port" 'show hba_file')" || hba=
      if [ -n "$hba" ] && [ -w "$hba" ]; then
        _strata_log "adding 'host all all 127.0.0.1/32 trust' (and ::1/128) at the top of $hba"
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
        _strata_pg_admin "$port" 'select pg_reload_conf()' >/dev/null || true
        sleep 1
      fi
    fi
    if ! _strata_pg_superuser "$url"; then
      _strata_log "creating/altering role postgres: SUPERUSER LOGIN"
      _strata_pg_admin "$port" "do \$\$ begin
          if not exists (select from pg_roles where rolname = 'postgres') then create role postgres; end if;
        end \$\$; alter role postgres with superuser login" >/dev/null || true
    fi
  fi
  if ! _strata_wait "PostgreSQL superuser postgres at $host:$port" 10 _strata_pg_superuser "$url"; then
    _strata_log "cannot connect to $url as a superuser without a password; fix the server or set TEST_DATABASE_URL"
    return 1
  fi
  if _strata_pg_wants_password "$host" "$port"; then
    _strata_log "PostgreSQL at $host:$port asks roles other than postgres for a password on the loopback; the tests connect as roles they create, without one: trust 127.0.0.1 in pg_hba.conf"
    return 1
  fi
  export TEST_DATABASE_URL="$url"
}

_strata_redis_ok() { [ "$("$@" ping 2>/dev/null)" = PONG ]; } # redis-cli args...

_strata_ensure_redis() {
  local -a cli=(redis-cli -h 127.0.0.1 -p 6379)
  if [ -n "${TEST_REDIS_URL:-}" ]; then
    # The caller chose the server: check it, do not touch it.
    cli=(redis-cli -u "$TEST_REDIS_URL")
    command -v redis-cli >/dev/null 2>&1 || _strata_apt_install redis-tools || return 1
    _strata_wait "Redis at TEST_REDIS_URL" 20 _strata_redis_ok "${cli[@]}" || return 1
  elif ! _strata_redis_ok "${cli[@]}"; then
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
      _strata_apt_install redis-server || return 1
    fi
    # A freshly installed package may have started its own server already.
    if ! _strata_redis_ok "${cli[@]}"; then
      _strata_log "starting Redis on 127.0.0.1:6379"
      mkdir -p /var/lib/redis /var/log/redis || return 1
      if ! redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null; then
        _strata_log "redis-server failed to start; see /var/log/redis/ci.log"
        return 1
      fi
    fi
    if ! _strata_wait "Redis at 127.0.0.1:6379" 20 _strata_redis_ok "${cli[@]}"; then
      tail -n 20 /var/log/redis/ci.log >&2 2>/dev/null
      return 1
    fi
  fi
  _strata_redis_version="$("${cli[@]}" info server 2>/dev/null | tr -d '\r' | sed -n 's/^redis_version://p')"
}

_strata_has_pgbouncer() {
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || [ -x /usr/local/sbin/pgbouncer ]
}

_strata_ensure_pgbouncer() {
  _strata_has_pgbouncer && return 0
  # The Debian package enables a pgbouncer service on 6432 where systemd runs; the test does not use it.
  if _strata_apt_install pgbouncer && _strata_has_pgbouncer; then return 0; fi
  _strata_log "pgbouncer is missing and could not be installed: test/e2e/pgbouncer.e2e-spec.ts will fail (apt-get install pgbouncer)"
  return 0
}

_strata_ensure_services() {
  _strata_ensure_postgres || return 1
  _strata_ensure_redis || return 1
  _strata_ensure_pgbouncer
  local pg_version where
  pg_version="$(PGCONNECT_TIMEOUT=5 psql "$TEST_DATABASE_URL" -wXAtqc 'show server_version' 2>/dev/null | cut -d' ' -f1)"
  where="$(printf '%s' "$TEST_DATABASE_URL" | sed -E 's#//([^:@/]*):[^@/]*@#//\1:***@#; s#\?.*##')" # no password in logs
  _strata_log "PostgreSQL ${pg_version:-?} at $where, Redis ${_strata_redis_version:-?} at ${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
}

if ! _strata_ensure_services; then
  _strata_log "PostgreSQL and Redis are needed by the tests; see the messages above"
  # shellcheck disable=SC2317 # `exit` is reached when this file is executed instead of sourced
  return 1 2>/dev/null || exit 1
fi
