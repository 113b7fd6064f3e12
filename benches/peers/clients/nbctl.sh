#!/usr/bin/env bash
# ovn-nbctl as scripts use it.
#   W1: one ovn-nbctl process, one transaction: ls-add, then lsp-add, lsp-set-addresses and
#       external_ids for every port, chained with "--". The argument list for 10,000 ports is
#       about 2.4 MB, over the default limit (a quarter of the 8 MiB stack), so the stack limit
#       is raised first; PEERS_NBCTL_CHUNK=K splits it into transactions of K ports instead.
#   W2: one ovn-nbctl process per port.
#   W3: ovn-nbctl list Logical_Switch_Port, printed to /dev/null.
set -euo pipefail
: "${OVSDB_REMOTE:?}" "${BENCH_WORKLOAD:?}" "${BENCH_N:?}"
switch=${BENCH_SWITCH:-ls0}
prefix=${BENCH_PREFIX:-p}

# Sets $name and $address for port $1 (the formula of lib/workload.py).
port() {
  local i=$1
  name=$prefix$i
  printf -v address '0a:00:00:%02x:%02x:%02x 10.%d.%d.%d' \
    $(((i >> 16) & 255)) $(((i >> 8) & 255)) $((i & 255)) \
    $((16 + (i >> 16))) $(((i >> 8) & 255)) $((i & 255))
}

# Appends port $1's three commands to the array "cmds".
add_port_cmds() {
  port "$1"
  cmds+=(lsp-add "$switch" "$name" -- lsp-set-addresses "$name" "$address"
         -- set Logical_Switch_Port "$name" "external_ids:pod=$name")
}

case $BENCH_WORKLOAD in
W1)
  ulimit -s 65536
  chunk=${PEERS_NBCTL_CHUNK:-$BENCH_N}
  first=1
  while ((first <= BENCH_N)); do
    last=$((first + chunk - 1))
    if ((last > BENCH_N)); then last=$BENCH_N; fi
    cmds=()
    if ((first == 1)); then cmds+=(ls-add "$switch" --); fi
    for ((i = first; i <= last; i++)); do
      add_port_cmds "$i"
      if ((i < last)); then cmds+=(--); fi
    done
    ovn-nbctl --db="$OVSDB_REMOTE" "${cmds[@]}"
    first=$((last + 1))
  done
  ;;
W2)
  for ((i = 1; i <= BENCH_N; i++)); do
    cmds=()
    add_port_cmds "$i"
    ovn-nbctl --db="$OVSDB_REMOTE" "${cmds[@]}"
  done
  ;;
W3)
  ovn-nbctl --db="$OVSDB_REMOTE" --no-leader-only list Logical_Switch_Port > /dev/null
  ;;
*)
  echo "ovn-nbctl does not run $BENCH_WORKLOAD" >&2
  exit 3
  ;;
esac
