#!/usr/bin/env bash
# Start Cohort workers on the machines of a hosts file, over ssh (horovodrun's format):
#
#   # hosts: one machine per line, host:slots (slots = workers on that host, default 1)
#   node1:2
#   node2:4
#
# Usage: cluster/launch.sh HOSTS tcp://COORDINATOR:5555 [--threads N] [--config FILE]
#            [--server-key FILE.key --secret-key FILE.key_secret] [--token-file FILE]
#            [--ssh-config FILE] [--dry-run]
# Each host must have `cohort` on its PATH (or set COHORT=/path/to/cohort), and the files at
# the given paths. A host that cannot be reached is named, the others are still started, and
# the script exits 1. Start the coordinator first:
#   cohort train CONFIG --bind tcp://0.0.0.0:5555 --workers 0 --secret-key K.key_secret --authorized-keys DIR
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
hosts_file=$1; endpoint=$2; shift 2
threads=1; config=""; options=""; dry_run=0; ssh=(ssh -o BatchMode=yes -o ConnectTimeout=10)
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --server-key|--secret-key|--token-file) options="$options $1 $2"; shift 2 ;;
    --ssh-config) ssh+=(-F "$2"); shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    *) usage ;;
  esac
done
[ -r "$hosts_file" ] || { echo "launch.sh: cannot read hosts file $hosts_file" >&2; exit 2; }
cohort=${COHORT:-cohort}

# Read the whole file first: a command inside the loop must not read the loop's input (ssh
# without -n swallowed the rest of the hosts file, so only the first host got workers).
mapfile -t lines < "$hosts_file"
failed=()
line_no=0
for line in "${lines[@]}"; do
  line_no=$((line_no + 1))
  line=${line%%#*}; line=$(echo "$line" | tr -d '[:space:]')
  [ -n "$line" ] || continue
  host=${line%%:*}; slots=1
  [ "$host" != "$line" ] && slots=${line#*:}
  if ! [[ "$slots" =~ ^[0-9]+$ ]] || [ "$slots" -lt 1 ]; then
    echo "launch.sh: $hosts_file:$line_no: slots must be a positive integer, got '$slots'" >&2; exit 2
  fi
  commands=""
  for i in $(seq 1 "$slots"); do
    commands="$commands nohup $cohort worker --connect $endpoint --threads $threads${config:+ --config $config}$options > cohort-worker-$i.log 2>&1 < /dev/null &"
  done
  if [ "$dry_run" = 1 ]; then
    for i in $(seq 1 "$slots"); do
      echo "ssh $host 'nohup $cohort worker --connect $endpoint --threads $threads${config:+ --config $config}$options > cohort-worker-$i.log 2>&1 &'"
    done
  elif "${ssh[@]}" -n "$host" "$commands" < /dev/null; then
    echo "launch.sh: $slots worker(s) on $host" >&2
  else
    echo "launch.sh: cannot start workers on $host (ssh exit $?)" >&2
    failed+=("$host")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "launch.sh: failed on ${#failed[@]} host(s): ${failed[*]}" >&2
  exit 1
fi
