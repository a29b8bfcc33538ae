#!/usr/bin/env bash
# Rehearse a three-machine run on one machine: three network namespaces (coordinator and two
# workers) joined by veth links, the coordinator binding tcp on its own address and each worker
# connecting across its link, encrypted and authenticated with CURVE keys made for the rehearsal.
# Each namespace stands for a machine of its own: weights and gradients cross the links as
# frames, as between real machines (shared memory is only for workers in the same namespace).
#
# Usage (root, iproute2): cluster/netns-demo.sh CONFIG RUN_DIR [extra cohort train options]
# Exit codes: 0 trained, 1 failed, 3 namespaces unavailable here (not root, no iproute2, ...).
set -uo pipefail
config=${1:?config}; run_dir=${2:?run dir}; shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
cohort=${COHORT:-$here/.build/release/cohort}
tag=ch$$
ns_c=$tag-coord; ns_1=$tag-w1; ns_2=$tag-w2

cleanup() {
  for ns in "$ns_c" "$ns_1" "$ns_2"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null; ip netns del "$ns" 2>/dev/null; done
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "netns-demo: needs root" >&2; exit 3; }
command -v ip >/dev/null || { echo "netns-demo: needs iproute2 (ip)" >&2; exit 3; }
ip netns add "$ns_c" 2>/dev/null || { echo "netns-demo: cannot create network namespaces here" >&2; exit 3; }
ip netns add "$ns_1" && ip netns add "$ns_2" || exit 3

# coordinator <-> worker 1 on 10.77.1.0/24, coordinator <-> worker 2 on 10.77.2.0/24
for i in 1 2; do
  ns_w=$tag-w$i
  ip link add "$tag-c$i" type veth peer name "$tag-w$i" || exit 3
  ip link set "$tag-c$i" netns "$ns_c" && ip link set "$tag-w$i" netns "$ns_w" || exit 3
  ip -n "$ns_c" addr add "10.77.$i.1/24" dev "$tag-c$i"
  ip -n "$ns_w" addr add "10.77.$i.2/24" dev "$tag-w$i"
  ip -n "$ns_c" link set "$tag-c$i" up
  ip -n "$ns_w" link set "$tag-w$i" up
  ip -n "$ns_w" link set lo up
done
ip -n "$ns_c" link set lo up

# Keys: the coordinator's pair, and one per worker whose public half the coordinator authorizes.
keys=$(mktemp -d)
trap 'cleanup; rm -rf "$keys"' EXIT
"$cohort" keygen "$keys/coordinator" >/dev/null && "$cohort" keygen "$keys/workers/w1" >/dev/null \
  && "$cohort" keygen "$keys/workers/w2" >/dev/null || exit 1

ip netns exec "$ns_c" "$cohort" train "$config" --run-dir "$run_dir" --bind tcp://0.0.0.0:5555 --workers 0 \
  --secret-key "$keys/coordinator.key_secret" --authorized-keys "$keys/workers" --set cluster.min_workers=2 "$@" &
coordinator=$!
sleep 0.5
ip netns exec "$ns_1" "$cohort" worker --connect tcp://10.77.1.1:5555 --config "$config" --timeout 30 \
  --server-key "$keys/coordinator.key" --secret-key "$keys/workers/w1.key_secret" &
ip netns exec "$ns_2" "$cohort" worker --connect tcp://10.77.2.1:5555 --timeout 30 \
  --server-key "$keys/coordinator.key" --secret-key "$keys/workers/w2.key_secret" &
wait "$coordinator"
status=$?
wait
exit $status
