#!/usr/bin/env bash
# Make sure RabbitMQ and PostgreSQL answer on 127.0.0.1 for the integration tests, and
# that Chromium is there for the browser tests.
# Does nothing when they already run (CI machines, developer boxes). On a fresh Debian
# machine (as root) it installs them from Debian's packages, starts them, and lets local
# TCP connections in as user postgres without a password (a test machine's setting).
# The S3 server needs nothing here: the tests start SeaweedFS themselves.
set -euo pipefail

open() { (echo > "/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }
wait_for() { for _ in $(seq 1 60); do open "$1" && return 0; sleep 1; done; return 1; }
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

if ! open 5672; then
  if ! command -v rabbitmq-server >/dev/null; then
    can_install || { echo "RabbitMQ missing: apt-get install -y rabbitmq-server" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null
  fi
  rabbitmq-server -detached || true
  wait_for 5672 || { echo "RabbitMQ did not start" >&2; exit 1; }
fi

# The review app's browser tests drive Debian's Chromium through Playwright.
if ! command -v chromium >/dev/null; then
  can_install || { echo "Chromium missing: apt-get install -y chromium" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi

if ! open 5432; then
  if ! command -v pg_ctlcluster >/dev/null; then
    can_install || { echo "PostgreSQL missing: apt-get install -y postgresql" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q "bdisc tests" "$hba"; then
    sed -i '1i host all postgres 127.0.0.1/32 trust  # bdisc tests' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for 5432 || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
