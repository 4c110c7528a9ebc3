#!/usr/bin/env bash
# A single-node Slurm on this machine, for the tests and the demo of the daemon's cluster mode.
#
#   scripts/local-slurm.sh start    install slurm-wlm and munge when missing, write the
#                                   configuration, start munged, slurmctld and slurmd, wait until
#                                   the node is idle (nothing happens to what already runs)
#   scripts/local-slurm.sh stop     end the daemons this script started (by their pid files)
#   scripts/local-slurm.sh status   what runs, and sinfo; exit 0 when up, 3 when down
#
# After `start`, sinfo, squeue, sbatch, scancel and `sacct -c` work in any new shell: Debian's
# Slurm reads /etc/slurm/slurm.conf, which this script writes (and refuses to overwrite when
# someone else wrote it). State, spool, pid and log files live under SCREENER_SLURM_DIR
# (default /var/lib/screener-slurm as root, else ~/.local/state/screener-slurm).
#
# On a real cluster this script is not used: the site's Slurm is configured by its admins.
set -euo pipefail

MARKER="# written by screener scripts/local-slurm.sh"
CONF=/etc/slurm/slurm.conf
WAIT_S=${SCREENER_SLURM_WAIT_S:-60}

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
  slurm_user=root
  default_dir=/var/lib/screener-slurm
else
  sudo="sudo"
  slurm_user=$(id -un)
  default_dir="${XDG_STATE_HOME:-$HOME/.local/state}/screener-slurm"
fi
DIR=${SCREENER_SLURM_DIR:-$default_dir}
RUN="$DIR/run"
LOG="$DIR/log"
NODE=$(hostname -s)

say() { echo "local-slurm: $*"; }
die() { echo "local-slurm: error: $*" >&2; exit 1; }

# pid of a pid file when that process is alive and runs the named program, else nothing
live_pid() {
  local file=$1 name=$2 pid stat
  [ -r "$file" ] || return 0
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] || return 0
  [ -r "/proc/$pid/stat" ] || return 0
  # "pid (comm) state ...": a zombie (Z) has ended, whoever reaps it
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  if [ "${stat%% *}" != Z ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
    echo "$pid"
  fi
}

munge_works() { command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

install_packages() {
  local missing=() pkg
  for pkg in slurm-wlm munge; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

start_munge() {
  if munge_works; then
    return 0
  fi
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    $sudo mungekey -c
  fi
  $sudo chown munge:munge /etc/munge/munge.key
  $sudo chmod 0600 /etc/munge/munge.key
  $sudo install -d -o munge -g munge -m 0755 /run/munge "$DIR/munge"
  $sudo runuser -u munge -- munged --pid-file="$DIR/munge/munged.pid"
  touch "$RUN/munged.ours"  # stop ends munged only when this script started it
  local i
  for i in $(seq 50); do
    munge_works && return 0
    sleep 0.1
  done
  die "munged did not answer (see /var/log/munge/munged.log)"
}

# the node line: CPUs = nproc; topology from `slurmd -C` when it agrees; memory minus a margin
node_line() {
  local cpus mem_mb margin topo="" detected sockets cores threads
  cpus=$(nproc)
  mem_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
  margin=$((mem_mb / 10 < 1024 ? mem_mb / 10 : 1024))
  detected=$(slurmd -C 2>/dev/null | head -1 || true)
  sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$detected")
  cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$detected")
  threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$detected")
  if [ -n "$sockets" ] && [ -n "$cores" ] && [ -n "$threads" ] &&
    [ $((sockets * cores * threads)) -eq "$cpus" ]; then
    topo=" Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads"
  fi
  echo "NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus$topo RealMemory=$((mem_mb - margin)) State=UNKNOWN"
}

write_config() {
  cat <<EOF
$MARKER
# A single node for tests (short timeouts); see that script. Files under $DIR.
ClusterName=screener
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=$slurm_user
SlurmdUser=$slurm_user
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
MailProg=/bin/true
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=10
Waittime=0
OverTimeLimit=0
$(node_line)
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# 0 when $CONF is ours to (over)write: absent, or written by this script
conf_is_ours() { [ ! -e "$CONF" ] || head -1 "$CONF" | grep -qxF "$MARKER"; }

node_state() { sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -1 || true; }

cmd_start() {
  install_packages
  if ! conf_is_ours; then
    die "$CONF exists and was not written by this script; move it away (or use that Slurm)"
  fi
  mkdir -p "$DIR/state" "$DIR/spool" "$RUN" "$LOG"
  chmod 0755 "$DIR"
  start_munge

  local new changed=0
  new=$(write_config)
  if [ ! -e "$CONF" ] || [ "$(cat "$CONF")" != "$new" ]; then
    changed=1
    $sudo install -d -m 0755 /etc/slurm
    printf '%s\n' "$new" >"$DIR/slurm.conf.new"
    $sudo install -m 0644 "$DIR/slurm.conf.new" "$CONF"
    rm -f "$DIR/slurm.conf.new"
    say "wrote $CONF"
  fi
  if [ "$changed" -eq 1 ] && { [ -n "$(live_pid "$RUN/slurmctld.pid" slurmctld)" ] ||
    [ -n "$(live_pid "$RUN/slurmd.pid" slurmd)" ]; }; then
    say "configuration changed: restarting slurmctld and slurmd"
    stop_slurm
  fi

  if [ -z "$(live_pid "$RUN/slurmctld.pid" slurmctld)" ]; then
    slurmctld || die "slurmctld did not start (see $LOG/slurmctld.log)"
  fi
  if [ -z "$(live_pid "$RUN/slurmd.pid" slurmd)" ]; then
    slurmd || die "slurmd did not start (see $LOG/slurmd.log)"
  fi

  local state="" waited=0 resumed=0
  while [ "$waited" -lt $((WAIT_S * 2)) ]; do
    state=$(node_state)
    case "$state" in
    idle | mixed | allocated | completing)
      say "up: node $NODE $state (slurmctld $(live_pid "$RUN/slurmctld.pid" slurmctld)," \
        "slurmd $(live_pid "$RUN/slurmd.pid" slurmd); files under $DIR)"
      return 0
      ;;
    drain* | down*)
      # a node left DOWN or drained by an earlier run: try to return it once
      if [ "$resumed" -eq 0 ] && [ "$waited" -ge 10 ]; then
        scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
        resumed=1
      fi
      ;;
    esac
    sleep 0.5
    waited=$((waited + 1))
  done
  {
    echo "local-slurm: error: node $NODE not idle after ${WAIT_S} s (state: ${state:-no answer})"
    sinfo -R 2>&1 || true
    echo "--- $LOG/slurmctld.log (tail)"
    tail -n 15 "$LOG/slurmctld.log" 2>/dev/null || true
    echo "--- $LOG/slurmd.log (tail)"
    tail -n 15 "$LOG/slurmd.log" 2>/dev/null || true
  } >&2
  exit 1
}

# end one daemon by its pid file; wait for it to exit (SIGKILL after 15 s)
stop_pid() {
  local file=$1 name=$2 pid i
  pid=$(live_pid "$file" "$name")
  if [ -z "$pid" ]; then
    rm -f "$file" 2>/dev/null || true
    return 0
  fi
  $sudo kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 150); do
    [ -z "$(live_pid "$file" "$name")" ] && break
    sleep 0.1
  done
  if [ -n "$(live_pid "$file" "$name")" ]; then
    $sudo kill -KILL "$pid" 2>/dev/null || true
  fi
  say "stopped $name (pid $pid)"
  $sudo rm -f "$file" 2>/dev/null || true
}

stop_slurm() {
  stop_pid "$RUN/slurmd.pid" slurmd
  stop_pid "$RUN/slurmctld.pid" slurmctld
}

cmd_stop() {
  stop_slurm
  if [ -e "$RUN/munged.ours" ]; then
    stop_pid "$DIR/munge/munged.pid" munged
    rm -f "$RUN/munged.ours"
  fi
}

cmd_status() {
  local ctld slurmd munged up=0
  ctld=$(live_pid "$RUN/slurmctld.pid" slurmctld)
  slurmd=$(live_pid "$RUN/slurmd.pid" slurmd)
  munged=$(live_pid "$DIR/munge/munged.pid" munged)
  echo "slurmctld: ${ctld:+running, pid $ctld}$([ -n "$ctld" ] || echo "not running")"
  echo "slurmd:    ${slurmd:+running, pid $slurmd}$([ -n "$slurmd" ] || echo "not running")"
  if [ -n "$munged" ]; then
    echo "munged:    running, pid $munged (started by this script)"
  elif munge_works; then
    echo "munged:    running (not started by this script)"
  else
    echo "munged:    not running"
  fi
  echo "files:     $DIR"
  if [ -n "$ctld" ] && [ -n "$slurmd" ] && command -v sinfo >/dev/null && sinfo 2>/dev/null; then
    up=1
  fi
  [ "$up" -eq 1 ] || exit 3
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
  echo "usage: $0 start|stop|status" >&2
  exit 2
  ;;
esac
