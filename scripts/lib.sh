# Shared helpers for scripts/*.sh (sourced, not run). Debian/Ubuntu, as root.

apt_updated=0

# Installs the Debian packages that are not installed yet.
ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "need root to install: ${missing[*]}" >&2
        return 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    echo "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

docker_answers() {
    curl -fsS --max-time 5 --unix-socket /var/run/docker.sock http://docker/_ping >/dev/null 2>&1
}

# Starts dockerd when no daemon answers on /var/run/docker.sock, and waits.
ensure_dockerd() {
    ensure_packages docker.io curl
    docker_answers && return 0
    echo "starting dockerd (log: /var/log/docker-cri-dockerd.log)"
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl start docker || true
    fi
    if ! docker_answers; then
        nohup dockerd >/var/log/docker-cri-dockerd.log 2>&1 &
    fi
    for _ in $(seq 1 120); do
        docker_answers && return 0
        sleep 0.5
    done
    echo "dockerd did not come up; see /var/log/docker-cri-dockerd.log" >&2
    tail -n 30 /var/log/docker-cri-dockerd.log >&2 || true
    return 1
}
