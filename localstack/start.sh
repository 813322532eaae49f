#!/usr/bin/env bash
# Starts LocalStack (S3 and SQS only) on 127.0.0.1:$LOCALSTACK_PORT in the
# background, logging to $XLPORT_HOME/logs/localstack.log; waits for health.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

# What LocalStack is started with; one started with other settings (an
# older checkout's) is restarted.
# S3_SKIP_SIGNATURE_VALIDATION=0: S3 checks SigV4 signatures and the expiry
# of presigned URLs, as AWS does (LocalStack skips both by default), so a
# broken presigned URL fails here too (issue #15).
LOCALSTACK_SETTINGS="S3_SKIP_SIGNATURE_VALIDATION=0"
settings_file="$XLPORT_HOME/run/localstack.settings"
if localstack_healthy; then
  [ "$(cat "$settings_file" 2>/dev/null)" = "$LOCALSTACK_SETTINGS" ] && exit 0
  if [ ! -f "$XLPORT_HOME/run/localstack.pid" ]; then
    warn "a LocalStack these scripts did not start answers on $LOCALSTACK_URL; using it as it is (start it with $LOCALSTACK_SETTINGS so presigned URLs are checked)"
    exit 0
  fi
  log "restarting LocalStack with $LOCALSTACK_SETTINGS"
fi
"$XLPORT_ROOT/localstack/install.sh"
logfile="$XLPORT_HOME/logs/localstack.log"
stop_pid localstack
log "starting LocalStack on $LOCALSTACK_URL (log: $logfile)"
mkdir -p "$XLPORT_HOME/localstack-data"
: > "$logfile"
start_bg localstack "$logfile" env \
  GATEWAY_LISTEN="127.0.0.1:$LOCALSTACK_PORT" \
  SERVICES=s3,sqs \
  EAGER_SERVICE_LOADING=1 \
  DNS_ADDRESS=0 \
  SQS_ENDPOINT_STRATEGY=path \
  LOCALSTACK_HOST="127.0.0.1:$LOCALSTACK_PORT" \
  LOCALSTACK_VOLUME_DIR="$XLPORT_HOME/localstack-data" \
  DISABLE_EVENTS=1 \
  SKIP_SSL_CERT_DOWNLOAD=1 \
  $LOCALSTACK_SETTINGS \
  "$XLPORT_HOME/localstack-venv/bin/python" -m localstack.runtime.main
for _ in $(seq 1 90); do
  if localstack_healthy; then echo "$LOCALSTACK_SETTINGS" > "$settings_file"; exit 0; fi
  pid_alive localstack || break
  sleep 1
done
warn "LocalStack did not become healthy; last lines of $logfile:"
tail -n 40 "$logfile" >&2
exit 1
