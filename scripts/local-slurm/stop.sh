#!/usr/bin/env bash
# scripts/local-slurm/stop.sh -- stop the daemons started by start.sh (same directory).
#   stop.sh                  cancel all jobs, then stop slurmd, slurmctld, slurmdbd, mariadbd, munged
#   stop.sh slurmd slurmctld only these (e.g. the names start.sh wrote to LOCAL_SLURM_STARTED_FILE);
#                            jobs are cancelled only when slurmctld is among them
# Each daemon is stopped by the pid in its pid file (checked against /proc/PID/comm, so a
# stale pid file never kills an unrelated process). Safe to run when nothing runs.
#   LOCAL_SLURM_KEEP_BASE=1  stop only the slurm daemons (keep munge + mariadb)
set -uo pipefail
ONLY=" $* "
want() { [ "$ONLY" = "  " ] || [[ "$ONLY" == *" $1 "* ]]; }
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }

log() { echo "[local-slurm stop] $*" >&2; }

stop_pidfile() {  # stop_pidfile PIDFILE COMM
  local pf=$1 comm=$2 pid i
  [ -s "$pf" ] || return 0
  pid=$(tr -dc '0-9' < "$pf")
  if [ -z "$pid" ] || [ ! -r "/proc/$pid/comm" ] || [ "$(cat "/proc/$pid/comm")" != "$comm" ]; then
    rm -f "$pf"; return 0          # stale pid file
  fi
  log "stopping $comm (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 60); do         # up to 30 s
    [ -d "/proc/$pid" ] || break
    # a zombie counts as stopped
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
    sleep 0.5
  done
  if [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
    log "$comm (pid $pid) ignored SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
}

# cancel jobs first so no slurmstepd/job processes outlive slurmd
if want slurmctld && command -v scontrol >/dev/null && timeout 5 scontrol ping 2>/dev/null | grep -q UP; then
  jobs=$(squeue -h -o %i 2>/dev/null || true)
  if [ -n "$jobs" ]; then
    log "cancelling jobs: $(echo $jobs)"
    scancel $jobs 2>/dev/null || true
    for i in $(seq 1 40); do
      [ -z "$(squeue -h -t PD,R,CG -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
fi

want slurmd && stop_pidfile /run/slurmd.pid slurmd
want slurmctld && stop_pidfile /run/slurmctld.pid slurmctld
want slurmdbd && stop_pidfile /run/slurmdbd.pid slurmdbd
if [ "${LOCAL_SLURM_KEEP_BASE:-0}" != 1 ]; then
  want mariadbd && stop_pidfile /run/mysqld/mysqld.pid mariadbd
  want munged && stop_pidfile /run/munge/munged.pid munged
fi

# With the cluster down, drop the configuration start.sh wrote (it writes it again at start):
# a slurm.conf naming a controller that is not running makes every `scontrol` wait ~9 s, and
# the Snakemake SLURM plugin runs `scontrol show config` whenever Snakemake starts.
if want slurmctld && [ "${LOCAL_SLURM_KEEP_BASE:-0}" != 1 ]; then
  for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf /etc/slurm/slurmdbd.conf; do
    [ -f "$f" ] && grep -qF "# managed-by: start-local-slurm.sh" "$f" && rm -f "$f"
  done
fi

# report (never kill by name) anything slurm-ish still running
pat='slurmctld|slurmd|slurmdbd|slurmstepd'
[ "${LOCAL_SLURM_KEEP_BASE:-0}" = 1 ] || pat="$pat|munged|mariadbd"
left=$(ps -eo pid=,stat=,comm= | awk -v re="^($pat)\$" '$3 ~ re && $2 !~ /^Z/')
if [ -n "$left" ] && [ "$ONLY" = "  " ]; then
  log "still running (not started via our pid files?):"; echo "$left" >&2
fi
log "done"
