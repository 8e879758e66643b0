#!/usr/bin/env bash
# Runs tempora's whole test suite: unit, property, sqllogictest, client,
# differential (against PostgreSQL 15) and crash tests.
# Installs what the tests need first, when it is missing (see ensure-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/ensure-test-deps.sh

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --profile ci
else
    cargo test --workspace --no-fail-fast
fi
