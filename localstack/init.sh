#!/usr/bin/env bash
# Creates (idempotently) the bucket with CORS, the queues with their DLQs and
# the bucket notification, for one stack. Usage: init.sh [BUCKET] [QUEUE_PREFIX]
# Defaults: bucket `xlport`, queues `xlport-imports` and `xlport-exports`.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# The client libraries live in LocalStack's venv, which may be missing even
# when some LocalStack already answers on the port (another XLPORT_HOME's).
"$XLPORT_ROOT/localstack/install.sh"
exec "$XLPORT_HOME/localstack-venv/bin/python" "$XLPORT_ROOT/localstack/init.py" \
  --endpoint "$LOCALSTACK_URL" --bucket "${1:-xlport}" --queue-prefix "${2:-xlport-}" "${@:3}"
