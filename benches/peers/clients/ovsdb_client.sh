#!/usr/bin/env bash
# ovsdb-client, the C command-line client (no IDL, no cache).
#   W3: ovsdb-client dump of Logical_Switch_Port, printed to /dev/null.
#   W4: ovsdb-client --format=json monitor, read by ovsdb_client_monitor.py.
set -euo pipefail
: "${OVSDB_REMOTE:?}" "${BENCH_WORKLOAD:?}"
case $BENCH_WORKLOAD in
W3)
  ovsdb-client dump "$OVSDB_REMOTE" "${BENCH_DB:-OVN_Northbound}" Logical_Switch_Port > /dev/null
  ;;
W4)
  exec "${PEERS_PYTHON:-python3}" "$(dirname "$0")/ovsdb_client_monitor.py"
  ;;
*)
  echo "ovsdb-client does not run $BENCH_WORKLOAD" >&2
  exit 3
  ;;
esac
