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

# A second Docker, Debian trixie's docker.io 26.1 (API 1.45), run side by
# side with the system's: its binaries unpacked (not installed) under
# $DOCKER26_DIR, its own socket, data root, exec root and bridge, no
# iptables rules of its own (the userland proxy serves host ports).
# bookworm's runc is used: trixie's needs a newer glibc.
DOCKER26_DIR=/var/lib/docker-cri-test/trixie
DOCKER26_SOCKET=/run/docker-cri-test-docker26/docker.sock

docker26_answers() {
    curl -fsS --max-time 5 --unix-socket "$DOCKER26_SOCKET" http://docker/_ping >/dev/null 2>&1
}

ensure_docker26() {
    ensure_packages docker.io curl iproute2
    docker26_answers && return 0
    local root="$DOCKER26_DIR/root"
    if [ ! -x "$root/usr/sbin/dockerd" ]; then
        echo "fetching Debian trixie's docker.io and containerd (unpacked under $DOCKER26_DIR)"
        mkdir -p "$DOCKER26_DIR/lists/partial" "$DOCKER26_DIR/archives/partial" "$DOCKER26_DIR/debs"
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
            >"$DOCKER26_DIR/sources.list"
        # A private apt state: the host's own package lists stay bookworm's.
        local apt_opts=(-o "Dir::Etc::sourcelist=$DOCKER26_DIR/sources.list" -o "Dir::Etc::sourceparts=-"
            -o "Dir::State::Lists=$DOCKER26_DIR/lists" -o "Dir::Cache::archives=$DOCKER26_DIR/archives"
            -o "APT::Sandbox::User=root")
        apt-get "${apt_opts[@]}" update -qq
        (cd "$DOCKER26_DIR/debs" && apt-get "${apt_opts[@]}" download docker.io containerd >/dev/null)
        rm -rf "$root" && mkdir -p "$root"
        for deb in "$DOCKER26_DIR"/debs/*.deb; do dpkg -x "$deb" "$root"; done
    fi
    # A bridge left by an earlier run may carry another address, and Docker
    # keeps the default network's subnet in its data root: start both clean.
    ip link show docker26br >/dev/null 2>&1 && ip link del docker26br
    rm -f /var/lib/docker-cri-test-docker26/network/files/local-kv.db
    {
        ip link add docker26br type bridge &&
            ip addr add 198.18.250.1/24 dev docker26br &&
            ip link set docker26br up
    }
    local run_dir
    run_dir=$(dirname "$DOCKER26_SOCKET")
    mkdir -p "$run_dir"
    # Its own (empty) daemon.json: the host's may set hosts, data-root or a
    # bridge that clash with the flags below.
    echo '{}' >"$DOCKER26_DIR/daemon.json"
    echo "starting Docker 26 (log: /var/log/docker-cri-docker26.log)"
    PATH="$root/usr/bin:$root/usr/sbin:$PATH" nohup "$root/usr/sbin/dockerd" \
        --host "unix://$DOCKER26_SOCKET" --data-root /var/lib/docker-cri-test-docker26 \
        --exec-root "$run_dir/exec" --pidfile "$run_dir/dockerd.pid" \
        --config-file "$DOCKER26_DIR/daemon.json" \
        --containerd-namespace docker26 --containerd-plugins-namespace docker26-plugins \
        --bridge docker26br --iptables=false --ip6tables=false \
        >/var/log/docker-cri-docker26.log 2>&1 &
    for _ in $(seq 1 120); do
        docker26_answers && return 0
        sleep 0.5
    done
    echo "Docker 26 did not come up; see /var/log/docker-cri-docker26.log" >&2
    tail -n 30 /var/log/docker-cri-docker26.log >&2 || true
    return 1
}
