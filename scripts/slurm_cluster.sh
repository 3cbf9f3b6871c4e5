#!/usr/bin/env bash
# Starts, checks and stops a throwaway single-node Slurm cluster on the
# loopback, for tests that need a real sbatch/squeue/scancel.
#
#   scripts/slurm_cluster.sh start DIR   # DIR absolute; prints DIR/env.sh
#   source DIR/env.sh                    # exports SLURM_CONF for the clients
#   scripts/slurm_cluster.sh check DIR   # self-test: array, dependency, cancel
#   scripts/slurm_cluster.sh stop DIR    # idempotent
#
# Everything lives under DIR: munge key and socket, slurm.conf, state, spool,
# pid files and logs, so two clusters in two DIRs do not collide and nothing
# touches /etc/slurm or /etc/munge. Needs root (slurmd runs jobs as any user)
# and scripts/install_slurm.sh. Slurm 22.05 (Debian 12) is what it is tested on.
set -euo pipefail

# Daemons live in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

CLUSTER_NAME=melxai-test
START_TIMEOUT=${SLURM_CLUSTER_START_TIMEOUT:-60}   # seconds until the node is idle
CHECK_TIMEOUT=${SLURM_CLUSTER_CHECK_TIMEOUT:-60}   # seconds per wait in `check`
STOP_TIMEOUT=${SLURM_CLUSTER_STOP_TIMEOUT:-15}     # seconds per daemon in `stop`

log() { echo "[slurm_cluster] $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  echo "usage: $0 {start|stop|check} DIR   (DIR an absolute path)" >&2
  exit 2
}

# ---------------------------------------------------------------- helpers

# True when PID runs. A zombie counts as gone: daemonized processes are
# reparented to pid 1, which in some containers reaps them only late.
alive() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# Pid from a pid file when that process is still alive, else nothing.
live_pid() {
  local f=$1 pid
  [ -s "$f" ] || return 0
  pid=$(tr -dc '0-9' <"$f")
  [ -n "$pid" ] && alive "$pid" && echo "$pid"
  return 0
}

# Pids of processes named NAME whose command line contains STRING (a fixed
# string, not a regex: DIR may hold regex characters). Fallback for when a
# pid file is missing.
pids_matching() {
  local name=$1 string=$2 pid
  for pid in $(pgrep -x "$name" 2>/dev/null || true); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$string" && echo "$pid"
  done
  return 0
}

# slurmstepd processes of this cluster: they log to DIR's slurmd.log, so
# they hold it open (their command line does not name DIR).
stepd_pids() {
  local dir=$1 pid fd
  for pid in $(pgrep -x slurmstepd 2>/dev/null || true); do
    for fd in /proc/"$pid"/fd/*; do
      case "$(readlink "$fd" 2>/dev/null)" in
        "$dir"/log/*) echo "$pid"; break ;;
      esac
    done
  done
  return 0
}

# All descendants of PID, children first listed before their own children.
descendants() {
  local kid
  for kid in $(pgrep -P "$1" 2>/dev/null || true); do
    echo "$kid"
    descendants "$kid"
  done
}

# Sends TERM to the pids, waits up to STOP_TIMEOUT for them to go, then KILL.
# Pid lists are split on purpose (pids are plain numbers).
# shellcheck disable=SC2086,SC2048
kill_wait() {
  local what=$1; shift
  local pids pid left i
  # Deduplicated: pid file and command line match usually name the same pid.
  pids=$(printf '%s\n' $* | sort -un | tr '\n' ' ')
  [ -n "${pids// /}" ] || return 0
  log "stopping $what (pid $pids)"
  kill -TERM $pids 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    left=""
    for pid in $pids; do alive "$pid" && left+=" $pid"; done
    [ -z "$left" ] && return 0
    sleep 0.1
  done
  log "$what did not exit on TERM within ${STOP_TIMEOUT}s, sending KILL to$left"
  kill -KILL $left 2>/dev/null || true
  sleep 0.2
}

# True when nothing listens on 127.0.0.1:PORT (bind test with python3 when it
# works, else a connect probe through bash's /dev/tcp).
port_free() {
  local port=$1
  if python3 -c 'pass' 2>/dev/null; then
    python3 - "$port" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
  else
    if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
      return 1
    fi
  fi
}

# Two distinct free ports in 20000-40000, printed as "CTLD SLURMD".
pick_ports() {
  local a b tries
  for ((tries = 0; tries < 200; tries++)); do
    a=$((20000 + RANDOM % 20000)); b=$((a + 1))
    port_free "$a" && port_free "$b" && { echo "$a $b"; return 0; }
  done
  die "no free pair of TCP ports found in 20000-40000"
}

# Last lines of the daemon logs, for a failed start or check.
show_logs() {
  local dir=$1 f
  for f in "$dir"/log/munged.log "$dir"/log/slurmctld.log "$dir"/log/slurmd.log; do
    [ -f "$f" ] || continue
    echo "----- tail $f" >&2
    tail -n 25 "$f" >&2
  done
}

# Strips the optional ";cluster" suffix of `sbatch --parsable`.
job_id() { echo "${1%%;*}"; }

# ------------------------------------------------------------------- stop

cmd_stop() {
  local dir=$1
  [ -d "$dir" ] || { log "nothing to stop in $dir"; return 0; }
  export SLURM_CONF="$dir/slurm.conf"

  # Cancel jobs while slurmctld still runs, so that slurmstepd kills the job
  # processes itself (stepd survives a slurmd stop by design).
  if [ -n "$(live_pid "$dir/run/slurmctld.pid")" ] && [ -f "$SLURM_CONF" ]; then
    local jobs i
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      log "cancelling running jobs"
      # shellcheck disable=SC2086 # one job id per word
      timeout 10 scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        [ -z "$(stepd_pids "$dir")" ] && break
        sleep 0.1
      done
    fi
  fi

  # Any stepd left (cancel failed, slurmctld dead): SIGKILL it together with
  # all its job processes, collected first (they would be orphaned otherwise).
  # A stepd ignores SIGTERM, hence no TERM round.
  local pid stepds tree=""
  stepds=$(stepd_pids "$dir" | tr '\n' ' ')
  if [ -n "${stepds// /}" ]; then
    for pid in $stepds; do tree+=" $pid $(descendants "$pid" | tr '\n' ' ')"; done
    log "killing leftover slurmstepd and job processes (pid$tree)"
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $tree 2>/dev/null || true
  fi

  # slurmd before slurmctld before munged: each needs the next one to exit
  # cleanly. Pid file first, command line match as a fallback.
  kill_wait slurmd "$(live_pid "$dir/run/slurmd.pid") $(pids_matching slurmd "$dir/slurm.conf")"
  kill_wait slurmctld "$(live_pid "$dir/run/slurmctld.pid") $(pids_matching slurmctld "$dir/slurm.conf")"
  kill_wait munged "$(live_pid "$dir/munge/munged.pid") $(pids_matching munged "$dir/munge/")"
  rm -f "$dir"/run/*.pid "$dir/munge/munged.pid"
  log "stopped cluster in $dir"
}

# ------------------------------------------------------------------ start

write_conf() {
  local dir=$1 ctld_port=$2 slurmd_port=$3 host cpus mem comm=""
  host=$(hostname -s)
  cpus=$(nproc)
  # RealMemory a bit (5%) under the real total: a node that reports less
  # memory than configured is drained by slurmctld.
  mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo)
  # Bind to the loopback instead of all interfaces, but only when the short
  # hostname resolves to a loopback address (the daemons bind to what it
  # resolves to; anything else would break NodeAddr=127.0.0.1).
  case "$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 { print $1 }')" in
    127.*) comm="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny" ;;
  esac

  : >"$dir/plugstack.conf"   # no SPANK plugins, and not /etc/slurm's
  cat >"$dir/slurm.conf" <<EOF
# Generated by scripts/slurm_cluster.sh: single-node test cluster in $dir.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
$comm

# Own munge daemon: clients and daemons read the socket from AuthInfo.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket

# Tests run as root; slurmd must be root anyway to run jobs.
SlurmUser=root
SlurmdUser=root

# All state, spool, pid and log files under $dir.
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/plugstack.conf
MailProg=/bin/true

# No cgroups (containers often lack a writable cgroup tree): plain /proc
# process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none

# One CPU per task whatever the core/thread layout, so that two 1-CPU array
# tasks run side by side on a 2-CPU machine.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Short scheduler and backfill periods so that dependent jobs start within a
# second or two of their dependency finishing.
SchedulerParameters=sched_interval=1,bf_interval=1,sched_min_interval=100000

# A test cluster: fail and recover fast.
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=30
Waittime=0

NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munged() {
  local dir=$1 m=$1/munge i
  # Own key: 1 KiB of random bytes, root-only as munged demands.
  if [ ! -s "$m/munge.key" ]; then
    dd if=/dev/urandom of="$m/munge.key" bs=1024 count=1 status=none
  fi
  chmod 0400 "$m/munge.key"
  rm -f "$m/munge.socket" "$m/munge.socket.lock"
  # --force: munged refuses some setups as root or with a stale socket
  # otherwise. It daemonizes itself and writes its pid file.
  munged --force \
    --socket="$m/munge.socket" \
    --key-file="$m/munge.key" \
    --pid-file="$m/munged.pid" \
    --log-file="$dir/log/munged.log" \
    --seed-file="$m/munged.seed" \
    || { show_logs "$dir"; die "munged failed to start"; }
  for ((i = 0; i < 100; i++)); do
    munge -n -S "$m/munge.socket" 2>/dev/null | unmunge -S "$m/munge.socket" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  show_logs "$dir"
  die "munged does not answer on $m/munge.socket"
}

# Starts slurmctld and waits until it answers `scontrol ping`. Returns 1 when
# it failed to bind its port (the caller then retries with other ports).
start_slurmctld() {
  local dir=$1 i
  : >"$dir/log/slurmctld.log"
  # -c: clear any saved state, every start is a fresh cluster. Without -D it
  # daemonizes, so the caller's stdout pipe is not held open.
  slurmctld -c -f "$dir/slurm.conf" </dev/null >>"$dir/log/slurmctld.out" 2>&1 \
    || { show_logs "$dir"; die "slurmctld failed to start"; }
  for ((i = 0; i < 200; i++)); do
    timeout 5 scontrol ping 2>/dev/null | grep -q 'is UP' && return 0
    if grep -q 'Address already in use' "$dir/log/slurmctld.log" 2>/dev/null; then
      return 1
    fi
    if [ $i -gt 10 ] && [ -z "$(live_pid "$dir/run/slurmctld.pid")" ]; then
      show_logs "$dir"; die "slurmctld exited"
    fi
    sleep 0.1
  done
  show_logs "$dir"
  die "slurmctld does not answer scontrol ping"
}

cmd_start() {
  local dir=$1 host ctld_port slurmd_port attempt deadline state
  [ "$(id -u)" = 0 ] || die "must run as root (slurmd runs jobs as their users)"
  for t in munged munge unmunge slurmctld slurmd sbatch squeue sinfo scontrol; do
    command -v "$t" >/dev/null || die "$t not found: run scripts/install_slurm.sh"
  done
  host=$(hostname -s)
  [ -n "$host" ] || die "hostname -s is empty"

  # A cluster already running here is restarted from scratch.
  cmd_stop "$dir" 2>/dev/null
  mkdir -p "$dir"/{munge,state,spool,run,log}
  chmod 0755 "$dir/munge"   # not group/world writable (munged checks); traversable so non-root clients reach the socket
  rm -rf "$dir/state"/* "$dir/spool"/*
  rm -f "$dir"/log/*.log "$dir"/log/*.out

  export SLURM_CONF="$dir/slurm.conf"
  start_munged "$dir"

  # Ports are probed, not reserved: retry with fresh ones if someone else
  # took them between the probe and slurmctld's bind.
  for attempt in 1 2 3; do
    read -r ctld_port slurmd_port < <(pick_ports)
    write_conf "$dir" "$ctld_port" "$slurmd_port"
    start_slurmctld "$dir" && break
    log "port $ctld_port taken, retrying with other ports"
    kill_wait slurmctld "$(live_pid "$dir/run/slurmctld.pid")"
    [ $attempt = 3 ] && { show_logs "$dir"; die "slurmctld could not bind a port"; }
  done

  # -N: the node name, in case gethostname differs from the short name.
  : >"$dir/log/slurmd.log"
  slurmd -f "$dir/slurm.conf" -N "$host" </dev/null >>"$dir/log/slurmd.out" 2>&1 \
    || { show_logs "$dir"; die "slurmd failed to start"; }

  deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    state=$(timeout 5 sinfo -h -o %T 2>/dev/null | head -n 1 || true)
    [ "$state" = idle ] && break
    if [ $SECONDS -ge $deadline ]; then
      log "node state is '${state:-?}' after ${START_TIMEOUT}s, not idle"
      timeout 5 sinfo -R >&2 || true
      show_logs "$dir"
      cmd_stop "$dir" || true
      die "cluster in $dir did not come up"
    fi
    sleep 0.2
  done

  # What a test sources to use sbatch/squeue/scancel/sinfo on this cluster.
  # SLURM_CONF is all the clients need (it names the munge socket too).
  cat >"$dir/env.sh" <<EOF
# Generated by scripts/slurm_cluster.sh for the cluster in $dir.
export SLURM_CONF='$dir/slurm.conf'
export PATH="\$PATH:/usr/sbin"
EOF
  log "cluster up in $dir (slurmctld 127.0.0.1:$ctld_port, slurmd 127.0.0.1:$slurmd_port)"
  echo "$dir/env.sh"
}

# ------------------------------------------------------------------ check

# Waits until COMMAND succeeds, polling every 0.2 s, at most CHECK_TIMEOUT.
wait_for() {
  local what=$1 deadline=$((SECONDS + CHECK_TIMEOUT)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { log "timed out after ${CHECK_TIMEOUT}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

# State of one job or array task as squeue lists it by default (pending,
# running, completing...), empty once it is gone from that list.
task_state() {
  timeout 10 squeue -h -r -o '%i %T' 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'
}

files_exist() { local f; for f in "$@"; do [ -e "$f" ] || return 1; done; }
both_running() { [ "$(task_state "$1_0")" = RUNNING ] && [ "$(task_state "$1_1")" = RUNNING ]; }
gone() { [ -z "$(task_state "$1")" ]; }

cmd_check() {
  local dir=$1 c=$1/check arr dep long t0=$SECONDS
  [ -f "$dir/env.sh" ] || die "no cluster in $dir (run start first)"
  # shellcheck source=/dev/null
  source "$dir/env.sh"
  rm -rf "$c"; mkdir -p "$c"
  # The concurrency test below needs every CPU free.
  [ -z "$(timeout 10 squeue -h -o %i)" ] \
    || { timeout 5 squeue >&2 || true; die "check needs an empty queue on $dir"; }

  # 1. A 2-task array, each task writes its own file, and a job that only
  #    runs after the whole array succeeded.
  arr=$(job_id "$(sbatch --parsable --array=0-1 -n 1 -c 1 -o "$c/arr-%A_%a.out" \
    --wrap "echo \$SLURM_ARRAY_TASK_ID > '$c/task_'\$SLURM_ARRAY_TASK_ID")")
  dep=$(job_id "$(sbatch --parsable -n 1 -c 1 --dependency="afterok:$arr" -o "$c/dep-%j.out" \
    --wrap "touch '$c/final'")")
  log "array job $arr, dependent job $dep"
  wait_for "array task files and the dependent job's file" \
    files_exist "$c/task_0" "$c/task_1" "$c/final" \
    || { show_logs "$dir"; die "array/dependency check failed"; }
  if [ "$(cat "$c/task_0")" != 0 ] || [ "$(cat "$c/task_1")" != 1 ]; then
    die "array task files have the wrong content"
  fi

  # 2. A long 2-task array: both tasks run at once (one CPU each); cancelling
  #    task 1 removes it from squeue and leaves task 0 running.
  long=$(job_id "$(sbatch --parsable --array=0-1 -n 1 -c 1 -o /dev/null --wrap 'sleep 300')")
  log "long array job $long"
  wait_for "both tasks of $long running" both_running "$long" \
    || { timeout 5 squeue >&2 || true; show_logs "$dir"; die "the two array tasks did not run together"; }
  scancel "${long}_1"
  wait_for "task ${long}_1 leaving squeue" gone "${long}_1" \
    || { timeout 5 squeue >&2 || true; die "cancelled task ${long}_1 still in squeue"; }
  [ "$(task_state "${long}_0")" = RUNNING ] \
    || { timeout 5 squeue >&2 || true; die "task ${long}_0 stopped running after cancelling ${long}_1"; }
  scancel "$long"
  wait_for "job $long leaving squeue" gone "${long}_0" \
    || die "job $long still in squeue after scancel"

  log "check took $((SECONDS - t0))s"
  echo "slurm check: ok"
}

# ------------------------------------------------------------------- main

[ $# -eq 2 ] || usage
cmd=$1 dir=$2
case "$dir" in /*) ;; *) die "DIR must be an absolute path: $dir" ;; esac
dir=${dir%/}
case "$cmd" in
  start) cmd_start "$dir" ;;
  stop) cmd_stop "$dir" ;;
  check) cmd_check "$dir" ;;
  *) usage ;;
esac
