#!/usr/bin/env bash
# Runs docker-cri's whole test suite on a Debian/Ubuntu host, as root:
# installs what the tests use (Docker, Debian's docker-registry, busybox-static,
# htpasswd), starts dockerd if none answers, then runs every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages docker.io docker-registry busybox-static apache2-utils curl systemd
ensure_dockerd
cargo test --locked --all-targets
