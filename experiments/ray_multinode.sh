#!/usr/bin/env bash
# A darts_snn x asic_template search on a multi-node Ray cluster.
#
# Every node needs the same nasco environment (bash scripts/setup.sh) at the same path.
# The data travel with the evaluator (the driver loads them once and Ray ships them to
# the workers), so only the driver's machine needs --dataset's files.
#
#   1. head node:      bash experiments/ray_multinode.sh head
#   2. every worker:   bash experiments/ray_multinode.sh worker HEAD_IP
#      (first copy the head's ~/.ray/auth_token to the worker's ~/.ray/auth_token: Ray 2.60
#      clusters use token authentication, and the worker must present the head's token)
#   3. head node:      bash experiments/ray_multinode.sh search [extra nasco search flags]
#      (killed or interrupted? run the same command with --resume: the ledger on the shared
#      storage is the run's state, and the evaluations it lacks are run again)
#   4. everywhere:     bash experiments/ray_multinode.sh stop
#
#   One-machine rehearsal (head bound to 127.0.0.1, the search, then stop):
#                      bash experiments/ray_multinode.sh local
#
# Environment: PORT (GCS port, default 6380), STORAGE (a directory all nodes mount, e.g.
# NFS; default runs/), BUDGET (default 40), CPUS (CPUs a node offers; default all),
# VENV (default .venv of this checkout).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-$PWD/.venv}"
PORT="${PORT:-6380}"
STORAGE="${STORAGE:-runs}"
BUDGET="${BUDGET:-40}"
export OMP_NUM_THREADS=1 RAY_USAGE_STATS_ENABLED=0
cpus=(); [[ -n "${CPUS:-}" ]] && cpus=(--num-cpus "$CPUS")

search() {
    # One evaluation per CPU; each trains its candidate with one torch thread. The ledger,
    # the front and Ray's logs of the driver land in $STORAGE/darts_snn-asic-ray.
    "$VENV/bin/nasco" search --space darts_snn --hw asic_template --budget "$BUDGET" \
        --executor ray --ray-address "$1" --cpus-per-trial 1 --max-retries 2 --trial-timeout 1800 \
        --storage "$STORAGE" --out darts_snn-asic-ray "${@:2}"
}

case "${1:-}" in
    head)
        # Listens on the node's network address so that workers can join: run it inside a
        # trusted network only (Ray's ports give code execution to whoever holds the token).
        "$VENV/bin/ray" start --head --port "$PORT" --include-dashboard=false "${cpus[@]}"
        echo "head started; on each worker: bash experiments/ray_multinode.sh worker $(hostname -I | awk '{print $1}')"
        ;;
    worker)
        [[ -n "${2:-}" ]] || { echo "usage: $0 worker HEAD_IP" >&2; exit 2; }
        "$VENV/bin/ray" start --address "$2:$PORT" "${cpus[@]}"
        ;;
    search)
        RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}" search auto "${@:2}"
        ;;
    stop)
        "$VENV/bin/ray" stop
        ;;
    local)
        # Loopback only: nothing outside this machine can reach the services.
        export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
        "$VENV/bin/ray" start --head --port "$PORT" --include-dashboard=false "${cpus[@]}" >/dev/null
        trap '"$VENV/bin/ray" stop >/dev/null' EXIT
        RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}" search "127.0.0.1:$PORT" "${@:2}"
        ;;
    *)
        sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
