#!/usr/bin/env bash
# Start the services the integration tests use, if they are not already listening.
# Exits non-zero if one cannot be brought up: in CI a missing service is a failure.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_up() {
  for _ in $(seq 1 60); do up "$2" && return 0; sleep 0.5; done
  echo "services: $1 did not come up on port $2" >&2; return 1
}
start() {  # name port command...
  local name=$1 port=$2; shift 2
  if up "$port"; then return 0; fi
  echo "services: starting $name"
  "$@" >/dev/null 2>&1 || true
  wait_up "$name" "$port"
}
status=0
start postgresql 5432 pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql 2>/dev/null | head -1)" main start || status=1
start redis 6379 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || status=1
start nats 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || status=1
exit $status
