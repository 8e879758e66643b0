#!/usr/bin/env bash
# Installs, only when missing, what the tests use besides Rust:
# - PostgreSQL 15 (server for the differential tests; psql and pgbench),
# - the PostgreSQL JDBC driver (and a JDK if javac is missing),
# - the Python drivers of tests/clients/requirements.txt in ./.venv,
# - node-postgres in tests/clients/node/node_modules.
# Safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi
packages=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || packages+=(postgresql-15)
command -v psql >/dev/null 2>&1 || packages+=(postgresql-client-15)
[ -f /usr/share/java/postgresql.jar ] || packages+=(libpostgresql-jdbc-java)
command -v javac >/dev/null 2>&1 || packages+=(default-jdk-headless)
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
if [ "${#packages[@]}" -gt 0 ]; then
    echo "installing ${packages[*]} for the tests" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

# Python drivers, in a virtualenv of the project's own.
if ! .venv/bin/python -c "import psycopg, asyncpg, sqlalchemy" >/dev/null 2>&1; then
    echo "installing the Python drivers into .venv" >&2
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/clients/requirements.txt
fi

# node-postgres, at the version package-lock.json names.
if [ ! -d tests/clients/node/node_modules/pg ]; then
    echo "installing node-postgres into tests/clients/node" >&2
    (cd tests/clients/node && npm ci --silent --no-audit --no-fund)
fi
