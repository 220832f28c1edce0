#!/usr/bin/env bash
# Gets docker-cri running against the local Docker on a Debian/Ubuntu host,
# as root: installs and starts Docker when missing, builds and installs
# docker-cri, builds the pause image offline when it is missing, starts
# docker-cri, and prints how to point crictl at it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

SOCKET=${DOCKER_CRI_SOCKET:-/run/docker-cri.sock}
LOG=${DOCKER_CRI_LOG:-/var/log/docker-cri.log}

ensure_dockerd
cargo build --locked --release
install -m 0755 target/release/docker-cri /usr/local/bin/docker-cri

pause_image=${DOCKER_CRI_PAUSE_IMAGE:-registry.k8s.io/pause:3.10}
if ! curl -fsS --unix-socket /var/run/docker.sock "http://docker/images/${pause_image}/json" >/dev/null 2>&1; then
    echo "building the pause image ${pause_image} (offline)"
    docker-cri --pod-infra-container-image "$pause_image" pause-image
fi

if [ -S "$SOCKET" ] && curl -s --max-time 1 --unix-socket "$SOCKET" http://x/ >/dev/null 2>&1; then
    echo "docker-cri already listens on $SOCKET"
else
    nohup docker-cri --container-runtime-endpoint "unix://$SOCKET" \
        --pod-infra-container-image "$pause_image" >"$LOG" 2>&1 &
    for _ in $(seq 1 50); do [ -S "$SOCKET" ] && break; sleep 0.2; done
    [ -S "$SOCKET" ] || { echo "docker-cri did not start; see $LOG" >&2; exit 1; }
    echo "docker-cri started (pid $!, log $LOG)"
fi

cat <<EOT

Point crictl at it:
  export CONTAINER_RUNTIME_ENDPOINT=unix://$SOCKET IMAGE_SERVICE_ENDPOINT=unix://$SOCKET
or write /etc/crictl.yaml:
  runtime-endpoint: unix://$SOCKET
  image-endpoint: unix://$SOCKET
then: crictl version; crictl info; crictl images
kubelet: --container-runtime-endpoint=unix://$SOCKET
EOT
