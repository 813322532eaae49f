#!/usr/bin/env bash
# Installs LocalStack (pinned, requirements.txt) into a Python >= 3.12 venv at
# $XLPORT_HOME/localstack-venv. Reuses the venv when the pins are unchanged.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

venv="$XLPORT_HOME/localstack-venv"
req="$XLPORT_ROOT/localstack/requirements.txt"
stamp="$venv/.xlport-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
py="$(find_python312)" || die "LocalStack needs Python >= 3.12: install one (pyenv install 3.12) or set XLPORT_PYTHON"
log "installing LocalStack into $venv (with $py)"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
