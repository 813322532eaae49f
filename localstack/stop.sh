#!/usr/bin/env bash
# Stops the LocalStack started by start.sh.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
stop_pid localstack
