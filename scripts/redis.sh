#!/usr/bin/env bash
# Installs redis-server (used by reference-server/tests/redis_store.rs and the multi-replica tests).
# Idempotent and quiet: does nothing when redis-server is already on PATH. The package's own
# service is not started here; the tests start their own server on a free loopback port.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "redis.sh: redis-server is missing and neither root nor sudo is available" >&2
        exit 1
    fi
    SUDO="sudo"
fi

# `env` because sudo drops the caller's environment.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null

if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis.sh: redis-server still not on PATH after installing" >&2
    exit 1
fi
