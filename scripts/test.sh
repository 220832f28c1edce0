#!/usr/bin/env bash
# Runs docker-cri's whole test suite on a Debian/Ubuntu host, as root:
# installs what the tests use (Docker, Debian's docker-registry, busybox-static,
# htpasswd, systemd-analyze), starts dockerd if none answers, then runs every
# test tier against Debian bookworm's Docker 20.10 (API 1.41) and the
# integration tests again against Debian trixie's Docker 26.1 (API 1.45),
# run side by side (DOCKER_CRI_TEST_DOCKER26=0 skips that second run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages docker.io docker-registry busybox-static apache2-utils curl systemd iproute2 \
    containernetworking-plugins iptables
ensure_dockerd
cargo test --locked --all-targets
if [ "${DOCKER_CRI_TEST_DOCKER26:-1}" != 0 ]; then
    ensure_docker26
    echo "== integration tests against Docker 26.1 (API 1.45) =="
    DOCKER_CRI_TEST_DOCKER_SOCKET="$DOCKER26_SOCKET" cargo test --locked --test '*'
fi
