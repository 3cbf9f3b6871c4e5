#!/usr/bin/env bash
# Installs a local Slurm (slurmctld, slurmd, clients) and munge so that
# scripts/slurm_cluster.sh can start a throwaway single-node cluster for the
# tests. Debian/Ubuntu only. Idempotent: exits at once when all is present.
# Starts no daemon and enables no service: slurm_cluster.sh runs its own
# daemons with their own config, key and sockets.
set -euo pipefail

log() { echo "[install_slurm] $*" >&2; }

# True when every tool is on PATH or in /usr/sbin (not always on a user PATH).
have_all() {
  local t
  for t in slurmctld slurmd sbatch munged; do
    command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || return 1
  done
}

if have_all; then
  echo "[install_slurm] slurm and munge already installed" >&2
  exit 0
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
command -v apt-get >/dev/null || { log "apt-get not found: install slurm-wlm and munge by hand"; exit 1; }

# Which pids of these daemons existed before we install, so that we only stop
# what the package scripts may have started (never a pre-existing daemon).
daemons="slurmctld slurmd slurmdbd munged"
before=""
for d in $daemons; do before+=" $(pgrep -x "$d" 2>/dev/null | tr '\n' ' ' || true)"; done

# policy-rc.d exit 101 tells invoke-rc.d in postinst scripts not to start
# services (matters on hosts with sysvinit/systemd; harmless otherwise).
# Only installed if none exists, and removed afterwards.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  own_policy=1
fi
cleanup() { [ "$own_policy" = 1 ] && $sudo rm -f "$policy"; true; }
trap cleanup EXIT

# apt-get update only when the package lists do not know the packages yet.
if ! apt-cache show slurm-wlm munge >/dev/null 2>&1; then
  log "apt-get update"
  $sudo apt-get update -q >/dev/null
fi
log "installing slurm-wlm munge"
# slurm-wlm pulls in slurmctld, slurmd and slurm-client (sbatch, squeue, ...).
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
  slurm-wlm slurm-client munge >/dev/null

# Stop any daemon the package scripts started anyway (pids new since before).
for d in $daemons; do
  for pid in $(pgrep -x "$d" 2>/dev/null || true); do
    case " $before " in *" $pid "*) continue ;; esac
    log "stopping $d ($pid) started by the package"
    $sudo kill "$pid" 2>/dev/null || true
  done
done

have_all || { log "install finished but slurm/munge tools are still missing"; exit 1; }
echo "[install_slurm] installed slurm ($(/usr/sbin/slurmctld -V 2>/dev/null || slurmctld -V)) and munge" >&2
