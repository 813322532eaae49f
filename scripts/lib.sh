# Shared helpers for xlport's scripts. Source it; don't run it.
#
# Everything that changes at run time (venvs, logs, pid files, the local API
# key) lives in $XLPORT_HOME, outside the source tree, so `cargo lambda watch`
# never sees it change.

set -euo pipefail

XLPORT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
XLPORT_HOME="${XLPORT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/xlport}"
mkdir -p "$XLPORT_HOME/logs" "$XLPORT_HOME/run"
export XLPORT_ROOT XLPORT_HOME

# Pinned tool versions.
CARGO_LAMBDA_VERSION="1.9.2"
ZIGLANG_VERSION="0.15.1"
CARGO_NEXTEST_VERSION="0.9.143"
PLAYWRIGHT_CORE_VERSION="1.64.1"

LOCALSTACK_PORT="${LOCALSTACK_PORT:-4566}"
LOCALSTACK_URL="http://127.0.0.1:${LOCALSTACK_PORT}"
PGHOST_ADDR="127.0.0.1"
PGPORT_NUM="5432"
# A password is harmless under the trust auth of a dev server, and needed
# under the scram auth of a freshly installed Debian one (see ensure_postgres).
PG_ADMIN_URL="postgres://postgres:postgres@${PGHOST_ADDR}:${PGPORT_NUM}"

# The cargo profile the stack (functions, mapping, admin tool, CLI) and the
# tests are built with. release (the default): one optimized build in
# target/release, dependencies compiled once and shared by everything, the
# speed users will see. dev (`scripts/up --dev`, or XLPORT_PROFILE=dev): the
# unoptimized target/debug build, which rebuilds faster after a code change.
XLPORT_PROFILE="${XLPORT_PROFILE:-release}"
case "$XLPORT_PROFILE" in
  release) CARGO_PROFILE_FLAGS=(--release) XLPORT_BIN="$XLPORT_ROOT/target/release" ;;
  dev | debug) XLPORT_PROFILE=dev CARGO_PROFILE_FLAGS=() XLPORT_BIN="$XLPORT_ROOT/target/debug" ;;
  *) printf 'error: XLPORT_PROFILE=%s: use release or dev\n' "$XLPORT_PROFILE" >&2; exit 2 ;;
esac
export XLPORT_PROFILE

export PATH="$XLPORT_HOME/tools-venv/bin:$HOME/.cargo/bin:$PATH"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root for: $* (no sudo)"; fi
}

apt_install() {
  log "installing Debian packages: $*"
  if [ ! -f "$XLPORT_HOME/run/apt-updated" ] || [ -n "$(find "$XLPORT_HOME/run/apt-updated" -mmin +1440 2>/dev/null)" ]; then
    as_root apt-get update -qq && touch "$XLPORT_HOME/run/apt-updated"
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# A Python >= 3.12 for LocalStack: $XLPORT_PYTHON, then PATH, then pyenv.
find_python312() {
  local c
  for c in "${XLPORT_PYTHON:-}" python3.13 python3.12 python3; do
    [ -n "$c" ] || continue
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  if command -v pyenv >/dev/null; then
    local root v
    root="$(pyenv root)"
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])\.[0-9]+$' | sort -V -r); do
      if [ -x "$root/versions/$v/bin/python3" ]; then echo "$root/versions/$v/bin/python3"; return 0; fi
    done
  fi
  return 1
}

ensure_rust_tools() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  if command -v rustup >/dev/null; then
    rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
    rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  fi
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest $CARGO_NEXTEST_VERSION"
    cargo install --locked "cargo-nextest@$CARGO_NEXTEST_VERSION"
  fi
}

# A venv of our own under $XLPORT_HOME with exactly these PyPI pins; reused
# until the pins change. ensure_pinned_venv NAME "PINS" FOR-WHAT (stdout: nothing).
ensure_pinned_venv() {
  local venv="$XLPORT_HOME/$1" want="$2"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.xlport-pins" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "installing $want into $venv"
  local py; py="$(command -v python3 || true)"
  [ -n "$py" ] || die "python3 is needed for $3"
  [ -x "$venv/bin/pip" ] || "$py" -m venv "$venv" || { apt_install python3-venv && "$py" -m venv "$venv"; } >&2
  # shellcheck disable=SC2086 # a list of pins
  "$venv/bin/pip" install -q --disable-pip-version-check $want >&2
  echo "$want" > "$venv/.xlport-pins"
}

# cargo-lambda (and Zig for cross builds) from PyPI, pinned.
ensure_cargo_lambda() {
  ensure_pinned_venv tools-venv "cargo-lambda==$CARGO_LAMBDA_VERSION ziglang==$ZIGLANG_VERSION" "cargo-lambda"
}

# Other spreadsheet readers the tests open xlport's exports with (openpyxl,
# as Python users read them), pinned; prints the venv's python.
OPENPYXL_VERSION=3.1.5
# API fuzzing against docs/openapi.json (scripts/test).
SCHEMATHESIS_VERSION=4.32.5
ensure_readers_venv() {
  ensure_pinned_venv readers-venv "openpyxl==$OPENPYXL_VERSION" "the export reader tests"
  echo "$XLPORT_HOME/readers-venv/bin/python"
}

# LibreOffice for the reader tests (`soffice --headless --convert-to`): Debian's
# Calc without a GUI (7.4 on bookworm). Installed once; nothing when soffice is there.
ensure_libreoffice() {
  command -v soffice >/dev/null 2>&1 && return 0
  apt_install libreoffice-calc-nogui >&2
  command -v soffice >/dev/null 2>&1 || die "libreoffice-calc-nogui installed no soffice"
}

pg_ready() { pg_isready -q -h "$PGHOST_ADDR" -p "$PGPORT_NUM" 2>/dev/null; }

# The local Postgres: use it when it runs, start it when installed, install
# Debian's when absent.
ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_ready; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
    local fresh=1
  fi
  local version; version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  log "starting Postgres $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do pg_ready && break; sleep 1; done
  pg_ready || die "Postgres did not start on $PGHOST_ADDR:$PGPORT_NUM (see /var/log/postgresql/)"
  if [ "${fresh:-0}" = 1 ]; then
    as_root su postgres -c "psql -q -c \"alter user postgres password 'postgres'\""
  fi
}

# database_url NAME
database_url() { echo "${PG_ADMIN_URL}/$1"; }

localstack_healthy() {
  curl -fsS --max-time 2 "$LOCALSTACK_URL/_localstack/health" 2>/dev/null | grep -q '"s3": "\(running\|available\)"' &&
    curl -fsS --max-time 2 "$LOCALSTACK_URL/_localstack/health" 2>/dev/null | grep -q '"sqs": "\(running\|available\)"'
}

# pid_alive NAME: whether the process recorded in run/NAME.pid is running.
pid_alive() {
  local f="$XLPORT_HOME/run/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# stop_pid NAME: stops the process group recorded in run/NAME.pid.
stop_pid() {
  local f="$XLPORT_HOME/run/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# start_bg NAME LOGFILE CMD...: runs CMD in its own process group, in the background.
start_bg() {
  local name="$1" logfile="$2"; shift 2
  setsid "$@" >>"$logfile" 2>&1 < /dev/null &
  echo $! > "$XLPORT_HOME/run/$name.pid"
}

# wait_http URL SECONDS [LOGFILE] [PIDNAME]: waits for URL to answer 2xx,
# giving up early when the process recorded as PIDNAME has exited.
wait_http() {
  local url="$1" secs="$2" logfile="${3:-}" pidname="${4:-}"
  for _ in $(seq 1 "$secs"); do
    curl -fsS --max-time 2 "$url" >/dev/null 2>&1 && return 0
    if [ -n "$pidname" ] && ! pid_alive "$pidname"; then break; fi
    sleep 1
  done
  [ -n "$logfile" ] && { warn "last lines of $logfile:"; tail -n 40 "$logfile" >&2; }
  die "$url did not answer within ${secs}s"
}

# A fixed random API key for the local stack, made once per machine.
local_api_key() {
  local f="$XLPORT_HOME/local-api-key"
  if [ ! -s "$f" ]; then
    (umask 077; echo "xlp_local_$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" > "$f")
  fi
  cat "$f"
}

# write_env_file FILE DB BUCKET PREFIX: the functions' environment for one stack.
write_env_file() {
  local file="$1" db="$2" bucket="$3" prefix="$4"
  cat > "$file" <<EOF
XLPORT_PROFILE=local
XLPORT_LOCAL_RUNTIME=1
DATABASE_URL=$(database_url "$db")
AWS_ENDPOINT_URL=$LOCALSTACK_URL
AWS_REGION=$AWS_REGION
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
XLPORT_BUCKET=$bucket
XLPORT_IMPORTS_QUEUE_URL=$LOCALSTACK_URL/queue/$AWS_REGION/000000000000/${prefix}imports
XLPORT_EXPORTS_QUEUE_URL=$LOCALSTACK_URL/queue/$AWS_REGION/000000000000/${prefix}exports
XLPORT_TMP_DIR=$XLPORT_HOME/tmp
XLPORT_STALL_SECS=${XLPORT_STALL_SECS:-30}
EOF
  # Extra KEY=VALUE words for one stack, e.g. the tests' small multipart threshold.
  local kv
  for kv in ${XLPORT_EXTRA_ENV:-}; do echo "$kv" >> "$file"; done
  mkdir -p "$XLPORT_HOME/tmp"
}
