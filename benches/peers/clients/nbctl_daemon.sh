#!/usr/bin/env bash
# ovn-nbctl in daemon mode (W2): `ovn-nbctl --detach` keeps one connection and one copy of the
# database; every port is then one thin `ovn-nbctl` process that hands its commands to the
# daemon through OVN_NB_DAEMON. The daemon is started inside the timed window.
#
# The daemon leaves the process tree the runner waits for, so its CPU time and peak RSS are
# read from /proc before it is stopped and reported as extra_cpu_s and extra_maxrss_kb.
set -euo pipefail
: "${OVSDB_REMOTE:?}" "${BENCH_WORKLOAD:?}" "${BENCH_N:?}" "${BENCH_TMPDIR:?}"
if [[ $BENCH_WORKLOAD != W2 ]]; then
  echo "ovn-nbctl-daemon does not run $BENCH_WORKLOAD" >&2
  exit 3
fi
switch=${BENCH_SWITCH:-ls0}
prefix=${BENCH_PREFIX:-p}
pidfile=$BENCH_TMPDIR/nbctl-daemon.pid

ctl=$(ovn-nbctl --db="$OVSDB_REMOTE" --detach --no-chdir --pidfile="$pidfile" \
  --log-file="$BENCH_TMPDIR/nbctl-daemon.log" --unixctl="$BENCH_TMPDIR/nbctl-daemon.ctl")
daemon=$(<"$pidfile")

# True while $daemon is alive, not a zombie, and still the process of our pidfile.
ours() {
  local stat args
  stat=$(cat "/proc/$daemon/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]] || return 1
  args=$(tr '\0' '\n' <"/proc/$daemon/cmdline" 2>/dev/null) || return 1
  grep -qxF -- "--pidfile=$pidfile" <<<"$args"
}
stop_daemon() {
  ours || return 0
  kill -TERM "$daemon"
  for _ in $(seq 200); do
    ours || return 0
    sleep 0.01
  done
  if ours; then kill -KILL "$daemon"; fi
}
trap stop_daemon EXIT

export OVN_NB_DAEMON=$ctl
for ((i = 1; i <= BENCH_N; i++)); do
  name=$prefix$i
  printf -v address '0a:00:00:%02x:%02x:%02x 10.%d.%d.%d' \
    $(((i >> 16) & 255)) $(((i >> 8) & 255)) $((i & 255)) \
    $((16 + (i >> 16))) $(((i >> 8) & 255)) $((i & 255))
  ovn-nbctl lsp-add "$switch" "$name" -- lsp-set-addresses "$name" "$address" \
    -- set Logical_Switch_Port "$name" "external_ids:pod=$name"
done

if [[ -n ${BENCH_RESULT_FILE:-} ]]; then
  read -r -a fields <<<"$(sed 's/.*) //' "/proc/$daemon/stat")"
  ticks=$((fields[11] + fields[12]))
  hwm=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$daemon/status")
  printf '{"extra_cpu_s": %s, "extra_maxrss_kb": %s}\n' \
    "$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}')" \
    "$hwm" >"$BENCH_RESULT_FILE"
fi
