#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the tests and for trying the replay scripts:
# Debian's munged, slurmctld and slurmd (tools/setup.sh installs them), started as root
# without systemd, every file of theirs in one folder.
#
#   tools/slurm/local-cluster.sh up     start it (idempotent) and wait until the node is idle
#   tools/slurm/local-cluster.sh down   stop what `up` started
#   tools/slurm/local-cluster.sh env    print the line that points Slurm's commands at it
#
# SAFED_SLURM_DIR: its folder (default /tmp/safed-slurm). Ports: SAFED_SLURM_PORT (slurmctld;
# slurmd takes the next one), else two free loopback ports chosen at the first `up`.
# Slurm's commands (sbatch, squeue, scontrol) find this cluster through SLURM_CONF, which
# `up` prints: `eval "$(tools/slurm/local-cluster.sh env)"`.
set -euo pipefail

dir="${SAFED_SLURM_DIR:-/tmp/safed-slurm}"
conf="$dir/slurm.conf"
say() { printf 'local-cluster: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# alive PIDFILE: the daemon that wrote it is running.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

write_config() {
    local node cpus mem ctld_port
    node=$(hostname -s)
    cpus=$(nproc)
    # Slurm refuses a node reporting less memory than configured: leave it a margin.
    mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    ctld_port="${SAFED_SLURM_PORT:-$(free_port)}"
    mkdir -p "$dir"/{state,spool,log,munge}
    cat >"$conf" <<EOF
# Written by tools/slurm/local-cluster.sh: a one-node cluster in $dir.
ClusterName=safed-local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# cred_expire: a requeued job waits this long before it runs again (Slurm's default: 120 s).
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=${SAFED_SLURM_CRED_EXPIRE:-10}
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
# No cgroups, no accounting: nothing of the host's systemd is needed.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# A requeued job may run again at once (tests requeue tasks while they run).
JobRequeue=1
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=60
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

node_state() { SLURM_CONF="$conf" sinfo -h -N -o '%T' 2>/dev/null | head -n1; }

up() {
    for cmd in munged slurmctld slurmd sinfo; do
        command -v "$cmd" >/dev/null || die "$cmd not found: run tools/setup.sh (installs slurm-wlm and munge)"
    done
    [ -f "$conf" ] || write_config
    if ! alive "$dir/munge/munged.pid"; then
        [ -f "$dir/munge/munge.key" ] ||
            { dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none && chmod 400 "$dir/munge/munge.key"; }
        chmod 700 "$dir/munge"
        # --force: munged refuses a socket folder it cannot vouch for (a temp folder's parent).
        munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
            --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
    fi
    alive "$dir/slurmctld.pid" || slurmctld -f "$conf"
    alive "$dir/slurmd.pid" || slurmd -f "$conf"
    local until=$((SECONDS + ${SAFED_SLURM_WAIT:-60})) state=""
    while :; do
        state=$(node_state || true)
        case "$state" in
            idle | mixed | allocated) break ;;
            down* | drain* | fail*) SLURM_CONF="$conf" scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;;
        esac
        if [ $SECONDS -ge $until ]; then
            tail -n 5 "$dir"/log/*.log >&2 || true
            die "the node is not idle after ${SAFED_SLURM_WAIT:-60} s (state: ${state:-none}); logs in $dir/log"
        fi
        sleep 0.5
    done
    say "up: node $(hostname -s) $state, $(nproc) CPUs; $(env_line)"
}

# stop PIDFILE NAME: SIGTERM, then SIGKILL after 10 s.
stop() {
    local pidfile="$1" name="$2" pid
    alive "$pidfile" || { rm -f "$pidfile"; return 0; }
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
        sleep 0.1
    done
    say "$name did not stop on SIGTERM: killed"
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

down() {
    # Jobs first, so that no task outlives the cluster.
    if alive "$dir/slurmctld.pid"; then
        SLURM_CONF="$conf" scancel --full --quiet --user=root 2>/dev/null || true
    fi
    stop "$dir/slurmd.pid" slurmd
    stop "$dir/slurmctld.pid" slurmctld
    stop "$dir/munge/munged.pid" munged
    say "down: $dir stopped"
}

env_line() { printf 'export SLURM_CONF=%q\n' "$conf"; }

case "${1:-}" in
    up) up ;;
    down) down ;;
    env) env_line ;;
    *) echo "usage: tools/slurm/local-cluster.sh up|down|env" >&2; exit 2 ;;
esac
