#!/usr/bin/env bash
# Installs, only when missing, what the tests use besides Rust:
# PostgreSQL 15 (server for the differential tests, psql for the client tests).
# Safe to run any number of times.
set -euo pipefail

need_postgres=0
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_postgres=1
command -v psql >/dev/null 2>&1 || need_postgres=1

if [ "$need_postgres" = 1 ]; then
    echo "installing PostgreSQL 15 (server and client) for the tests" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql-15 postgresql-client-15 >/dev/null
fi
