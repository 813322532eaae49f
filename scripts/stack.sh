# Starting and stopping one xlport stack: Postgres database, LocalStack
# resources, `cargo lambda watch` serving the functions, and the local
# event-source mapping. Sourced by scripts/up and scripts/test.

# stack_start NAME PORT DB BUCKET QUEUE_PREFIX [init.py options...]
# XLPORT_WATCH_FLAGS adds flags to cargo lambda watch (tests pass
# --ignore-changes: a test run must not reload functions under its feet).
stack_start() {
  local name="$1" port="$2" db="$3" bucket="$4" prefix="$5"; shift 5
  ensure_postgres

  # LocalStack (installed on first use, then started and given its bucket
  # and queues) and cargo-lambda (installed on first use) get ready in the
  # background while cargo builds: on a fresh machine the downloads overlap
  # the compile instead of coming before it.
  local prep_log="$XLPORT_HOME/logs/$name-prepare.log"
  : > "$prep_log"
  (
    ensure_cargo_lambda
    "$XLPORT_ROOT/localstack/start.sh"
    # The bucket's CORS allows the page's origins only (issue #15).
    "$XLPORT_ROOT/localstack/init.sh" "$bucket" "$prefix" \
      --cors-origin "http://127.0.0.1:$port" --cors-origin "http://localhost:$port" "$@"
  ) >"$prep_log" 2>&1 &
  local prep=$!

  local env_file="$XLPORT_HOME/$name.env"
  write_env_file "$env_file" "$db" "$bucket" "$prefix"

  # One build of every binary (functions, mapping, admin tool, CLI) in one
  # profile, so each dependency compiles once. cargo's own progress shows
  # (a bar on a terminal, a line per crate otherwise): a cold build takes minutes.
  log "building xlport ($XLPORT_PROFILE profile, into ${XLPORT_BIN#"$XLPORT_ROOT"/}): a first build takes several minutes"
  # (Not the benchmarks' binary: bench/ builds it when it runs.)
  if ! (cd "$XLPORT_ROOT" && cargo build "${CARGO_PROFILE_FLAGS[@]}" --workspace --exclude xlport-bench --bins); then
    wait "$prep" || true
    die "the build failed"
  fi
  log "waiting for LocalStack and cargo-lambda (log: $prep_log)"
  if ! wait "$prep"; then
    tail -n 30 "$prep_log" >&2
    die "LocalStack or cargo-lambda could not be made ready (log: $prep_log)"
  fi
  log "migrating database $db"
  (set -a; source "$env_file"; "$XLPORT_BIN/xlport-admin" migrate)

  # Restart the function host so it picks up the env file; cargo lambda
  # watch itself rebuilds a function when its code changes.
  stop_pid "$name-watch"
  local watch_log="$XLPORT_HOME/logs/$name-watch.log"
  : > "$watch_log"
  log "starting cargo lambda watch on 127.0.0.1:$port (log: $watch_log)"
  (cd "$XLPORT_ROOT" && start_bg "$name-watch" "$watch_log" \
    cargo lambda watch "${CARGO_PROFILE_FLAGS[@]}" --invoke-address 127.0.0.1 --invoke-port "$port" \
      --env-file "$env_file" --concurrency "${XLPORT_WATCH_CONCURRENCY:-8}" \
      --timeout "${XLPORT_INVOKE_TIMEOUT:-900}" ${XLPORT_WATCH_FLAGS:-})
  wait_http "http://127.0.0.1:$port/lambda-url/api/health" 600 "$watch_log" "$name-watch"

  stop_pid "$name-esm"
  local esm_log="$XLPORT_HOME/logs/$name-esm.log"
  : > "$esm_log"
  log "starting the local event-source mapping (log: $esm_log)"
  (set -a; source "$env_file"; start_bg "$name-esm" "$esm_log" \
    "$XLPORT_BIN/xlport-local-esm" \
      --invoke-endpoint "http://127.0.0.1:$port" \
      --map "${prefix}imports=import-worker" --map "${prefix}exports=export-worker" \
      --batch-size 1 --max-concurrency "${XLPORT_ESM_CONCURRENCY:-8}" \
      --invoke-timeout-secs "${XLPORT_INVOKE_TIMEOUT:-900}")
  sleep 1
  pid_alive "$name-esm" || { tail -n 20 "$esm_log" >&2; die "the event-source mapping exited"; }
}

stack_stop() {
  stop_pid "$1-esm"
  stop_pid "$1-watch"
}
