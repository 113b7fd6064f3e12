#!/usr/bin/env bash
# Installs what benches/peers/run.py needs and is missing, and says what it installs:
#   - Debian packages: ovsdb-server and its tools, ovn-nbctl, the OVN_Northbound schema, the
#     official Python IDL (python3-openvswitch, with its C JSON parser), python3-venv, and
#     GNU time (the runner's measure of a client's CPU time and peak RSS).
#     Package init scripts are kept from starting system daemons (policy-rc.d), as the runner
#     starts its own servers.
#   - Two Python virtual environments in the work directory (PEERS_WORK, default
#     ~/.cache/ovnkit-peers), with ovsdbapp from PyPI:
#       venv-deb  sees Debian's python3-openvswitch (C JSON): ovsdbapp+cjson
#       venv-pip  has the `ovs` package from PyPI (pure-Python JSON): ovs-idl, ovsdbapp
# Versions: PEERS_OVSDBAPP (default ovsdbapp==3.0.0), PEERS_OVS (default ovs==4.0.0).
# Nothing is installed system-wide through pip. Without root, the apt-get line is printed.
set -euo pipefail

work=${PEERS_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/ovnkit-peers}
ovsdbapp_spec=${PEERS_OVSDBAPP:-ovsdbapp==3.0.0}
ovs_spec=${PEERS_OVS:-ovs==4.0.0}
py=/usr/bin/python3

have() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 ]]; }

missing=()
for tool in ovsdb-server ovsdb-tool ovsdb-client ovs-appctl; do
  have "$tool" || { missing+=(openvswitch-common); break; }
done
have ovn-nbctl || missing+=(ovn-common)
[[ -f /usr/share/ovn/ovn-nb.ovsschema ]] || missing+=(ovn-central)
[[ -x /usr/bin/time ]] || missing+=(time)
if [[ ! -x $py ]]; then
  missing+=(python3 python3-openvswitch python3-venv)
else
  "$py" -c 'import ovs.db.idl' 2>/dev/null || missing+=(python3-openvswitch)
  "$py" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
fi

if ((${#missing[@]})); then
  line="apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ $(id -u) != 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}. As root, run:" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive $line" >&2
    exit 1
  fi
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    echo "setup: writing /usr/sbin/policy-rc.d (exit 101) so that package init scripts start no daemon"
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $line -qq
else
  echo "setup: Debian packages present (openvswitch-common, ovn-common, ovn-central, python3-openvswitch, python3-venv, time)"
fi

mkdir -p "$work"

# venv_with NAME SYSTEM_SITE(yes|no) SPEC...: a venv under $work holding SPEC (installed when
# `import ovsdbapp` fails there).
venv_with() {
  local name=$1 system=$2
  shift 2
  local dir=$work/$name
  if [[ ! -x $dir/bin/python ]]; then
    local flags=()
    [[ $system == yes ]] && flags+=(--system-site-packages)
    echo "setup: creating the virtual environment $dir${flags:+ (${flags[*]})}"
    "$py" -m venv "${flags[@]}" "$dir"
  fi
  if "$dir/bin/python" -c 'import ovsdbapp' 2>/dev/null; then
    echo "setup: $name already has ovsdbapp"
  else
    echo "setup: pip install into $name: $*"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
  fi
}

venv_with venv-deb yes "$ovsdbapp_spec"
# ovsdbapp+cjson is only meaningful with Debian's ovs (and its C JSON parser) underneath.
if ! "$work/venv-deb/bin/python" -c 'import ovs._json' 2>/dev/null; then
  echo "setup: venv-deb does not use Debian's ovs with its C JSON parser" >&2
  exit 1
fi
venv_with venv-pip no "$ovsdbapp_spec" "$ovs_spec"

report='import sys, importlib.metadata as m
try:
    import ovs._json
    j = "C JSON"
except ImportError:
    j = "pure-Python JSON"
print("Python", sys.version.split()[0], "ovs", m.version("ovs"), "(" + j + ")", "ovsdbapp", m.version("ovsdbapp"))'
echo "setup: venv-deb: $("$work/venv-deb/bin/python" -c "$report")"
echo "setup: venv-pip: $("$work/venv-pip/bin/python" -c "$report")"
echo "setup: $(ovsdb-server --version | head -1); $(ovn-nbctl --version | head -1)"

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release/ovsdb-bench-client
if [[ ! -x $bin ]]; then
  echo "setup: ovnkit's client is not built yet: cargo build --release -p benches --bin ovsdb-bench-client"
fi
echo "setup: done (work directory $work)"
