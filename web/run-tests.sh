#!/usr/bin/env bash
# Browser tests of the page the API serves at GET / (web/page.html, next to
# these tests; the api embeds it at compile time): real headless Chromium
# (Debian's /usr/bin/chromium, never a downloaded browser) driven by
# playwright-core, under Node's built-in test runner.
#
#   XLPORT_TEST_API=http://127.0.0.1:9100/lambda-url/api XLPORT_TEST_TOKEN=... web/run-tests.sh
#
# Installs what it needs (Chromium via apt, the pinned npm packages via
# `npm ci`) and is safe to run again. Extra arguments go to `node --test`
# (e.g. --test-name-pattern=export).
set -euo pipefail

WEB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHROMIUM=/usr/bin/chromium
say() { printf '\033[1;34m[web]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[web] error:\033[0m %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (Node >= 20 is needed for the built-in test runner)"
command -v npm >/dev/null || die "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node >= 20 is needed, found $(node --version)"

# Chromium from Debian; playwright never downloads a browser here.
if [ ! -x "$CHROMIUM" ]; then
  say "installing chromium (apt)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "$CHROMIUM is missing and installing it needs root or sudo"
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  [ -x "$CHROMIUM" ] || die "apt installed chromium but $CHROMIUM is still missing"
fi

# npm packages, reinstalled only when package-lock.json changes.
stamp="$WEB_DIR/node_modules/.xlport-lock.sha256"
want=$(cat "$WEB_DIR/package.json" "$WEB_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ ! -d "$WEB_DIR/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "npm ci"
  (cd "$WEB_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi

[ -n "${XLPORT_TEST_API:-}" ] ||
  die "XLPORT_TEST_API is not set: point it at a running stack's API, e.g. http://127.0.0.1:9100/lambda-url/api"
[ -n "${XLPORT_TEST_TOKEN:-}" ] ||
  die "XLPORT_TEST_TOKEN is not set: an API key of that stack"

say "browser tests against $XLPORT_TEST_API"
shopt -s nullglob
tests=("$WEB_DIR"/tests/*.test.mjs)
[ ${#tests[@]} -gt 0 ] || die "no test files in $WEB_DIR/tests"
# The spec reporter ends with a summary (tests, pass, fail, duration).
exec node --test --test-reporter=spec "$@" "${tests[@]}"
