# Throwaway PostgreSQL for tests and benchmarks. Source this file, then:
#   pg_start [fast] # sets KEEL_PG_URL (admin URL, database "postgres");
#                   # `fast` turns fsync off (tests only, never benchmarks)
#   pg_stop         # stops the cluster this shell started and removes it
# The cluster lives in a temp dir, listens on 127.0.0.1 only, and trusts
# local connections; it is never the system's own cluster.
# Safe under `set -euo pipefail`; pg_stop is idempotent and also cleans up
# after a pg_start that failed or was interrupted half way.

# Newest installed server's bin dir (Debian layout).
pg_bin_dir() {
    local d best=""
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && best="$d"
    done
    [ -n "$best" ] && { echo "$best"; return 0; }
    return 1
}

pg_ensure_installed() {
    if ! pg_bin_dir >/dev/null; then
        echo "==> installing postgresql (Debian package)" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends postgresql >/dev/null
        pg_bin_dir >/dev/null || { echo "pg.sh: postgresql installed but no initdb found" >&2; return 1; }
    fi
}

pg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Runs a server binary as the cluster's owner, from / (the caller's cwd may
# not be readable by `postgres`).
_pg_run() {
    (cd / && ${PG_RUN[@]+"${PG_RUN[@]}"} "$@")
}

pg_start() {
    pg_ensure_installed
    local bin; bin="$(pg_bin_dir)"
    local extra=""
    if [ "${1:-}" = fast ]; then
        extra="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    # Record everything pg_stop needs before anything can be left behind.
    PG_BIN="$bin"
    PG_RUN=()
    PG_DIR="$(mktemp -d /tmp/keel-pg.XXXXXX)"
    PG_PORT="$(pg_free_port)"
    # initdb refuses to run as root: the cluster belongs to `postgres`.
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
        chown postgres "$PG_DIR"
        PG_RUN=(runuser -u postgres --)
    fi
    _pg_run "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null || {
        echo "pg.sh: initdb failed" >&2; return 1; }
    # The free port is only free until someone else takes it: retry a taken one.
    local attempt
    for attempt in 1 2 3; do
        _pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DIR -c max_connections=400 $extra" \
            start >/dev/null 2>&1 && break
        if [ "$attempt" -lt 3 ] && grep -q 'Address already in use' "$PG_DIR/log" 2>/dev/null; then
            PG_PORT="$(pg_free_port)"
            continue
        fi
        echo "pg.sh: PostgreSQL failed to start; log:" >&2
        tail -n 20 "$PG_DIR/log" >&2 2>/dev/null || true
        return 1
    done
    export KEEL_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "==> throwaway PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR)" >&2
}

pg_stop() {
    local dir="${PG_DIR:-}"
    PG_DIR=""
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    if [ -n "${PG_BIN:-}" ] && [ -f "$dir/data/postmaster.pid" ]; then
        local pid; pid="$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)"
        _pg_run "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            _pg_run "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
        # Last resort, only for the postmaster of this very data dir.
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/data"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -rf "$dir"
    unset KEEL_PG_URL
}
