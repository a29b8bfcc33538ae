#!/usr/bin/env bash
# A simulated LAN for the benchmarks: N hosts (network namespaces) plugged into one switch (a
# bridge in a namespace of its own). Each host has one link, eth0, limited with tc tbf to RATE in
# both directions (on the host's end for what it sends, on the switch's end for what it receives),
# as a NIC of that speed would be. netem is not available on every kernel; tbf is.
#
#   bench/lan.sh up NAME N [RATE]   hosts NAME-h1 … NAME-hN, host i at 10.79.0.i/24 on eth0
#   bench/lan.sh down NAME          removes them (and kills what still runs in them)
#
# Run a command on host i with `ip netns exec NAME-hi COMMAND`. All hosts share this machine's
# cores: compare systems on the same setup, side by side. Exit 3 when namespaces cannot be made
# here (not root, no iproute2).
set -uo pipefail
command=${1:-}; name=${2:-}
[ -n "$command" ] && [ -n "$name" ] || { echo "usage: bench/lan.sh up NAME HOSTS [RATE] | down NAME" >&2; exit 2; }

down() {
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$name-(switch|h[0-9]+)$"); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns"
  done
}

case $command in
down) down ;;
up)
  hosts=${3:-}; rate=${4:-1gbit}
  [[ $hosts =~ ^[0-9]+$ ]] && [ "$hosts" -ge 1 ] && [ "$hosts" -le 200 ] || { echo "lan.sh: HOSTS must be 1 to 200" >&2; exit 2; }
  [ ${#name} -le 10 ] || { echo "lan.sh: NAME must be at most 10 characters (interface names)" >&2; exit 2; }
  [ "$(id -u)" = 0 ] || { echo "lan.sh: needs root" >&2; exit 3; }
  command -v ip >/dev/null && command -v tc >/dev/null || { echo "lan.sh: needs iproute2 (ip, tc)" >&2; exit 3; }
  down
  ip netns add "$name-switch" 2>/dev/null || { echo "lan.sh: cannot create network namespaces here" >&2; exit 3; }
  ip -n "$name-switch" link add br0 type bridge && ip -n "$name-switch" link set br0 up || exit 3
  for i in $(seq 1 "$hosts"); do
    host=$name-h$i port=$name-p$i
    ip netns add "$host" \
      && ip link add "$port" type veth peer name "$name-e$i" \
      && ip link set "$port" netns "$name-switch" && ip link set "$name-e$i" netns "$host" \
      && ip -n "$host" link set "$name-e$i" name eth0 \
      && ip -n "$host" addr add "10.79.0.$i/24" dev eth0 \
      && ip -n "$host" link set eth0 up && ip -n "$host" link set lo up \
      && ip -n "$name-switch" link set "$port" master br0 up \
      && ip netns exec "$host" tc qdisc add dev eth0 root tbf rate "$rate" burst 512kb latency 50ms \
      && ip netns exec "$name-switch" tc qdisc add dev "$port" root tbf rate "$rate" burst 512kb latency 50ms \
      || { echo "lan.sh: could not set up host $i" >&2; down; exit 3; }
  done
  ;;
*) echo "usage: bench/lan.sh up NAME HOSTS [RATE] | down NAME" >&2; exit 2 ;;
esac
