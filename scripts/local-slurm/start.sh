#!/usr/bin/env bash
# scripts/local-slurm/start.sh -- bring up a single-node SLURM cluster on localhost
# (munge + [mariadb + slurmdbd] + slurmctld + slurmd) WITHOUT systemd, with fake GPUs.
# Used by the `slurm` tests (tests/test_slurm.py) and CI (.ci/run); see README,
# "Running on your cluster".
#
# For CI / dev machines running Debian 12 as root. Idempotent: re-running it
# while the cluster is up only re-checks it (and restarts the slurm daemons if
# the generated config changed). Installs the Debian packages it needs.
#
# Environment knobs (all optional):
#   LOCAL_SLURM_ACCOUNTING=1   1: mariadb + slurmdbd, so `sacct` works (default)
#                              0: AccountingStorageType=none (no sacct; then the
#                                 snakemake slurm plugin MUST be run with
#                                 status_command=squeue, or it hangs)
#   LOCAL_SLURM_GPUS=1         number of fake GPUs (GRES gpu) on the node (0 = none)
#   LOCAL_SLURM_GPU_TYPE=      optional GPU type name, e.g. "a100" -> Gres=gpu:a100:N
#   LOCAL_SLURM_SMOKE=1        submit a CPU and a GPU test job and wait for them
#   LOCAL_SLURM_TIMEOUT=120    seconds to wait for the node to become idle
#   LOCAL_SLURM_CRED_EXPIRE=10 AuthInfo cred_expire: also how long a requeued job waits before it
#                              may start again (SLURM's default, 120 s, would slow the requeue tests)
#   LOCAL_SLURM_FORCE=0        1: overwrite an /etc/slurm/slurm.conf we did not write
#   LOCAL_SLURM_STARTED_FILE=  a file to which the names of the daemons THIS run started are
#                              appended (one a line), so that a caller can stop exactly those:
#                              stop.sh $(cat FILE)
#   LOCAL_SLURM_INSTALL_ONLY=0 1: install the packages and exit (CI image preparation)
#
# Stop with: stop.sh (same directory).
set -euo pipefail

ACCOUNTING="${LOCAL_SLURM_ACCOUNTING:-1}"
NGPUS="${LOCAL_SLURM_GPUS:-1}"
GPU_TYPE="${LOCAL_SLURM_GPU_TYPE:-}"
SMOKE="${LOCAL_SLURM_SMOKE:-1}"
TIMEOUT="${LOCAL_SLURM_TIMEOUT:-120}"
FORCE="${LOCAL_SLURM_FORCE:-0}"
CRED_EXPIRE="${LOCAL_SLURM_CRED_EXPIRE:-10}"

MARKER="# managed-by: start-local-slurm.sh"
CONF_DIR=/etc/slurm
RUN_DIR=/run/local-slurm
LOG_DIR=/var/log/slurm
CLUSTER=localcluster
DB_PASS=local-slurm-db-pass   # local-only MariaDB account, bound to 127.0.0.1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STARTED_FILE="${LOCAL_SLURM_STARTED_FILE:-}"
started() { [ -z "$STARTED_FILE" ] || echo "$1" >> "$STARTED_FILE"; }
T0=$(date +%s)

log() { echo "[local-slurm +$(( $(date +%s) - T0 ))s] $*" >&2; }
die() { log "ERROR: $*"; dump_logs; exit 1; }
dump_logs() {
  for f in "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd.log "$LOG_DIR"/slurmdbd.log \
           /var/log/munge/munged.log "$LOG_DIR"/mariadb.log; do
    [ -f "$f" ] && { echo "----- tail $f" >&2; tail -n 25 "$f" >&2 || true; }
  done
}
pid_alive() {  # pid_alive PIDFILE COMM -> 0 if the pid in PIDFILE runs COMM
  local pf=$1 comm=$2 pid
  [ -s "$pf" ] || return 1
  pid=$(tr -dc '0-9' < "$pf")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$comm" ]
}
wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local secs=$1 what=$2; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out after ${secs}s waiting for: $what"
    sleep 0.5
  done
}

[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------- packages
pkgs=(slurm-wlm slurmctld slurmd slurm-client munge)
[ "$ACCOUNTING" = 1 ] && pkgs+=(slurmdbd mariadb-server)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  for attempt in 1 2 3; do
    if apt-get -o DPkg::Lock::Timeout=300 update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
      break
    fi
    [ "$attempt" = 3 ] && die "apt-get install failed"
    log "apt-get failed (attempt $attempt), retrying in 5s"; sleep 5
  done
fi
[ "${LOCAL_SLURM_INSTALL_ONLY:-0}" = 1 ] && { log "packages installed"; exit 0; }

# ---------------------------------------------------------------- config
NODE=$(hostname -s)
[ -n "$NODE" ] || die "empty hostname"
mkdir -p "$CONF_DIR" "$RUN_DIR" "$LOG_DIR" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd

# hardware as slurmd sees it (RealMemory rounded down 5% for headroom)
HW=$(slurmd -C | head -n1)
getf() { sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$HW"; }
CPUS=$(getf CPUs); BOARDS=$(getf Boards); SPB=$(getf SocketsPerBoard)
CPS=$(getf CoresPerSocket); TPC=$(getf ThreadsPerCore); MEM=$(getf RealMemory)
[ -n "$CPUS" ] && [ -n "$MEM" ] || die "could not parse 'slurmd -C': $HW"
MEM=$(( MEM * 95 / 100 ))

# fake GPU devices: slurm only needs existing character devices in gres.conf
GRES_NODE=""; GRES_CONF=""
if [ "$NGPUS" -gt 0 ]; then
  gspec="gpu${GPU_TYPE:+:$GPU_TYPE}:$NGPUS"
  GRES_NODE="Gres=$gspec"
  devs=()
  mkdir -p "$RUN_DIR/dev"
  for i in $(seq 0 $(( NGPUS - 1 ))); do
    d="$RUN_DIR/dev/fakegpu$i"
    [ -c "$d" ] || mknod "$d" c 1 3 2>/dev/null || true   # same major/minor as /dev/null
    devs+=("$d")
  done
  if [ ! -c "${devs[0]}" ]; then   # mknod not permitted: fall back to existing char devices
    fallback=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom)
    [ "$NGPUS" -le "${#fallback[@]}" ] || die "mknod not permitted and LOCAL_SLURM_GPUS>5"
    devs=("${fallback[@]:0:$NGPUS}")
  fi
  for d in "${devs[@]}"; do
    GRES_CONF+="NodeName=$NODE Name=gpu${GPU_TYPE:+ Type=$GPU_TYPE} File=$d"$'\n'
  done
fi

if [ "$ACCOUNTING" = 1 ]; then
  ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux"
else
  ACCT_LINES="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

NEW_CONF=$(cat <<EOF
$MARKER
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=$CRED_EXPIRE
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# no cgroups: works in containers/VMs without systemd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# keep finished jobs visible to squeue for 5 min (the snakemake plugin's
# squeue status mode needs MinJobAge >= 3 * init_seconds_before_status_checks)
MinJobAge=300
KillWait=5
$ACCT_LINES
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS Boards=$BOARDS SocketsPerBoard=$SPB CoresPerSocket=$CPS ThreadsPerCore=$TPC RealMemory=$MEM $GRES_NODE State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
EOF
)
NEW_GRES=$(printf '%s\n%s' "$MARKER" "$GRES_CONF")
NEW_DBD=$(cat <<EOF
$MARKER
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
DebugLevel=info
LogFile=$LOG_DIR/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$DB_PASS
EOF
)

if [ -f "$CONF_DIR/slurm.conf" ] && ! grep -qF "$MARKER" "$CONF_DIR/slurm.conf" && [ "$FORCE" != 1 ]; then
  die "$CONF_DIR/slurm.conf exists and was not written by this script (set LOCAL_SLURM_FORCE=1 to overwrite)"
fi
changed=0
write_if_changed() {  # write_if_changed FILE CONTENT MODE
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then
    printf '%s\n' "$2" > "$1.tmp"; chmod "$3" "$1.tmp"; mv "$1.tmp" "$1"; changed=1
    log "wrote $1"
  fi
}
write_if_changed "$CONF_DIR/slurm.conf" "$NEW_CONF" 644
write_if_changed "$CONF_DIR/gres.conf" "$NEW_GRES" 644
[ "$ACCOUNTING" = 1 ] && write_if_changed "$CONF_DIR/slurmdbd.conf" "$NEW_DBD" 600

if [ "$changed" = 1 ] && { pid_alive /run/slurmctld.pid slurmctld || pid_alive /run/slurmd.pid slurmd || pid_alive /run/slurmdbd.pid slurmdbd; }; then
  log "config changed: restarting slurm daemons"
  LOCAL_SLURM_KEEP_BASE=1 "$HERE/stop.sh"
fi

# ---------------------------------------------------------------- munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating munge key"; mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge; chmod 0755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "starting munged"
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1
  started munged
  wait_for 30 "munge" bash -c 'munge -n | unmunge'
fi

# ---------------------------------------------------------------- mariadb + slurmdbd
if [ "$ACCOUNTING" = 1 ]; then
  mkdir -p /run/mysqld; chown mysql:mysql /run/mysqld
  MYSQL_ADMIN=(mariadb-admin --socket=/run/mysqld/mysqld.sock)
  if ! "${MYSQL_ADMIN[@]}" ping >/dev/null 2>&1; then
    if [ ! -d /var/lib/mysql/mysql ]; then
      log "initialising mariadb datadir"
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$LOG_DIR/mariadb.log" 2>&1
    fi
    log "starting mariadbd"
    setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
      --pid-file=/run/mysqld/mysqld.pid --socket=/run/mysqld/mysqld.sock \
      --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 \
      </dev/null >>"$LOG_DIR/mariadb.log" 2>&1 &
    started mariadbd
    wait_for 60 "mariadb" "${MYSQL_ADMIN[@]}" ping
  fi
  mariadb --socket=/run/mysqld/mysqld.sock -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  if ! pid_alive /run/slurmdbd.pid slurmdbd; then
    log "starting slurmdbd"
    /usr/sbin/slurmdbd </dev/null >/dev/null 2>&1
    started slurmdbd
  fi
  wait_for 60 "slurmdbd on 127.0.0.1:6819" bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819'
fi

# ---------------------------------------------------------------- slurmctld + slurmd
if ! pid_alive /run/slurmctld.pid slurmctld; then
  log "starting slurmctld"
  /usr/sbin/slurmctld </dev/null >/dev/null 2>&1
  started slurmctld
fi
wait_for 60 "slurmctld (scontrol ping)" bash -c 'scontrol ping | grep -q UP'
if ! pid_alive /run/slurmd.pid slurmd; then
  log "starting slurmd"
  /usr/sbin/slurmd </dev/null >/dev/null 2>&1
  started slurmd
fi

end=$(( $(date +%s) + TIMEOUT ))
while :; do
  state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1 || true)
  case "$state" in
    idle|mixed|allocated) break ;;
    drained|draining|drain|down|inval|"down*"|"idle*"|"drained*")
      # stale DRAIN/INVAL from an earlier config: try to resume it
      scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
  esac
  [ "$(date +%s)" -lt "$end" ] || { scontrol show node "$NODE" >&2 || true; die "node $NODE not idle after ${TIMEOUT}s (state: '$state')"; }
  sleep 0.5
done
log "node $NODE is $state"

if [ "$ACCOUNTING" = 1 ]; then
  wait_for 60 "cluster $CLUSTER registered in slurmdbd" bash -c "sacctmgr -n -P list cluster format=cluster | grep -qx $CLUSTER"
fi

# ---------------------------------------------------------------- smoke test
job_state() { squeue -h -t all -j "$1" -o %T 2>/dev/null | head -n1; }
wait_job() {  # wait_job JOBID DESCRIPTION -> polls squeue (faster than sbatch --wait)
  local end=$(( $(date +%s) + 60 )) st
  while :; do
    st=$(job_state "$1")
    case "$st" in
      COMPLETED) return 0 ;;
      FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)
        die "$2 (job $1) ended $st" ;;
    esac
    [ "$(date +%s)" -lt "$end" ] || die "$2 (job $1) not done after 60s (state '$st')"
    sleep 0.3
  done
}
if [ "$SMOKE" = 1 ]; then
  cpu_jid=$(sbatch --parsable -p cpu -t 1 -o /dev/null --wrap 'true') || die "sbatch (cpu) failed"
  if [ "$NGPUS" -gt 0 ]; then
    gpu_jid=$(sbatch --parsable -p gpu -t 1 --gpus=1 -o /dev/null \
              --wrap 'test -n "$CUDA_VISIBLE_DEVICES"') || die "sbatch (gpu) failed"
  fi
  wait_job "$cpu_jid" "CPU smoke job"; log "CPU smoke job $cpu_jid ok"
  if [ "$NGPUS" -gt 0 ]; then
    wait_job "$gpu_jid" "GPU smoke job"; log "GPU smoke job $gpu_jid ok (CUDA_VISIBLE_DEVICES was set)"
  fi
  if [ "$ACCOUNTING" = 1 ]; then
    wait_for 30 "sacct to report job $cpu_jid" bash -c "sacct -X -n -P -j $cpu_jid -o State | grep -q COMPLETED"
    log "sacct sees job $cpu_jid"
  fi
fi

sinfo
log "local SLURM cluster '$CLUSTER' is up (accounting=$ACCOUNTING, gpus=$NGPUS${GPU_TYPE:+ type=$GPU_TYPE})."
log "stop it with: $HERE/stop.sh"
