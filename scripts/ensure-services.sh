# shellcheck shell=bash
# Sourced by scripts/test.sh: makes sure PostgreSQL (127.0.0.1:5432, superuser `postgres` over TCP
# without a password) and Redis (127.0.0.1:6379) answer; starts them, or installs them from
# Debian's packages, when they do not.
_pg_ok() { psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; }
_wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 "$secs"); do "$@" && return 0; sleep 1; done
  echo "strata: $name did not come up within ${secs}s" >&2
  return 1
}

if ! _pg_ok; then
  if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    echo "strata: installing PostgreSQL from Debian's packages" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
    _ver="$(ls /etc/postgresql | sort -V | tail -n 1)"
    _hba="/etc/postgresql/$_ver/main/pg_hba.conf"
    # Tests connect over TCP as several roles without passwords: trust loopback (local machines only).
    if [ -w "$_hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$_hba"; then
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$_hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$_ver" main start >/dev/null 2>&1 || pg_ctlcluster --skip-systemctl-redirect "$_ver" main reload >/dev/null 2>&1 || true
  fi
  _wait_for PostgreSQL 30 pg_isready -h 127.0.0.1 -p 5432 -q || true
  if ! _pg_ok; then
    # No Debian cluster to use: our own, run as the postgres user (initdb refuses root).
    _pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    _pgdata=/var/tmp/strata-pg
    id postgres >/dev/null 2>&1 || useradd --system --home /var/tmp postgres
    if [ ! -f "$_pgdata/PG_VERSION" ]; then
      mkdir -p "$_pgdata" && chown postgres "$_pgdata"
      runuser -u postgres -- "$_pgbin/initdb" -D "$_pgdata" -U postgres -A trust >/dev/null
    fi
    runuser -u postgres -- "$_pgbin/pg_ctl" -D "$_pgdata" -l "$_pgdata/log" -w \
      -o "-p 5432 -c listen_addresses=127.0.0.1 -k /tmp" start >/dev/null
  fi
  _wait_for "PostgreSQL (superuser postgres over 127.0.0.1:5432)" 30 _pg_ok
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "strata: installing Redis from Debian's packages" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null
  _wait_for Redis 20 redis-cli -h 127.0.0.1 -p 6379 ping
fi

echo "strata: $(psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'show server_version' | cut -d' ' -f1 | sed 's/^/PostgreSQL /'), $(redis-cli -h 127.0.0.1 info server | grep -m1 redis_version | tr -d '\r')" >&2
