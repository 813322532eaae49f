#!/usr/bin/env bash
# Checks infra/ without an AWS account:
#
#   1. terraform fmt -check -recursive infra
#   2. infra/tests/test_wiring.py: parses the HCL (python-hcl2) and asserts the
#      wiring; runs everywhere, needs only python3 and PyPI once
#   3. terraform validate + terraform test (infra/tests/*.tftest.hcl, mocked
#      provider) when the AWS provider is available locally: a filesystem
#      mirror at $XLPORT_TF_PLUGIN_DIR or /opt/tf-plugins. Providers are never
#      downloaded; without a mirror this step is skipped, not failed.
#
# Idempotent: the venv is reused until the pins below change. Nothing is
# written inside the source tree (no .terraform/, no .pytest_cache).
set -euo pipefail

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$INFRA_DIR")"
XLPORT_HOME="${XLPORT_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/xlport}"
VENV="$XLPORT_HOME/infra-venv"
PINS="python-hcl2==8.1.4 pytest==9.2.0"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v terraform >/dev/null || die "terraform not found (>= 1.5 is needed for fmt; https://developer.hashicorp.com/terraform/install)"
# A TF_CLI_CONFIG_FILE pointing at a missing file only produces a warning on
# every command; drop it rather than print noise.
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -e "$TF_CLI_CONFIG_FILE" ]; then
  unset TF_CLI_CONFIG_FILE
fi

log "terraform fmt -check -recursive infra"
(cd "$ROOT" && terraform fmt -check -recursive infra) ||
  die "infra/ is not formatted: run 'terraform fmt -recursive infra'"

if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.xlport-pins" 2>/dev/null)" != "$PINS" ]; then
  log "installing $PINS into $VENV"
  command -v python3 >/dev/null || die "python3 is needed for the infra tests"
  mkdir -p "$XLPORT_HOME"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" ||
    die "cannot create a venv: install python3-venv (Debian/Ubuntu) and retry"
  # shellcheck disable=SC2086 # PINS is a list of words
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check $PINS
  echo "$PINS" > "$VENV/.xlport-pins"
fi

log "pytest infra/tests"
(cd "$ROOT" && PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider infra/tests)

# --- terraform validate + test, when a provider mirror exists ------------------

plugin_dir="${XLPORT_TF_PLUGIN_DIR:-}"
if [ -z "$plugin_dir" ] && [ -d /opt/tf-plugins/registry.terraform.io/hashicorp/aws ]; then
  plugin_dir=/opt/tf-plugins
fi
if [ -z "$plugin_dir" ]; then
  log "terraform validate/test: skipped (no local AWS provider; set XLPORT_TF_PLUGIN_DIR to a filesystem mirror to run them)"
  exit 0
fi

# A copy, so .terraform/ and the lock file never land in the source tree.
work="$(mktemp -d "${TMPDIR:-/tmp}/xlport-infra.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -R "$INFRA_DIR/." "$work/"
rm -rf "$work/.terraform" "$work/.terraform.lock.hcl"

if ! (cd "$work" && terraform init -input=false -backend=false -plugin-dir="$plugin_dir" >"$work/init.log" 2>&1); then
  # Most likely the mirror holds a provider version outside versions.tf's pin.
  log "terraform validate/test: skipped (terraform init with $plugin_dir failed; see below)"
  tail -n 15 "$work/init.log" >&2
  exit 0
fi
log "terraform validate (provider from $plugin_dir)"
(cd "$work" && terraform validate -no-color)
log "terraform test (mocked provider)"
(cd "$work" && terraform test -no-color)
