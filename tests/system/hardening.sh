#!/usr/bin/env bash
#
# hardening.sh - drover.service's sandbox: rated, in force, and every feature
# still works inside it.
#
# Installs the build tree into a throw-away container and checks:
#   - `systemd-analyze security drover.service` rates the unit's exposure at
#     most MAX_EXPOSURE (2.0), and the settings the unit promises are in
#     effect (systemctl show: DynamicUser=, ProtectSystem=strict,
#     CapabilityBoundingSet= empty, SystemCallFilter=, ...);
#   - drover.service, started by its socket with a handler module
#     (examples/hello, loaded with dlopen under MemoryDenyWriteExecute=yes),
#     serves static files (openat2, sendfile) and the module;
#   - the supervisor and every worker run as the system user drover (made by
#     meson install from sysusers.d/drover.conf),
#     with no capabilities, NoNewPrivs, a seccomp filter, LimitNOFILE= as set,
#     and see a read-only /usr and an empty /home;
#   - a reload (ExecReload=: kill -HUP from inside the sandbox) replaces the
#     workers, a killed worker is replaced (pidfd), both still serve;
#   - nothing drover did was refused by the sandbox: no "Operation not
#     permitted", "Permission denied", "Function not implemented", SIGSYS or
#     "Bad system call" in the journal of drover.service; in particular
#     openat2() works (RestrictSUIDSGID=yes, also implied by DynamicUser=yes,
#     would make it fail with ENOSYS: every static file would be a 500).
# socket-activation.sh, reload.sh, idle-exit*.sh and systemd-watchdog.sh run
# the same (hardened) units and check the rest of drover's behaviour in them.
#
# Skips (exit 77) unless run as root on a machine with systemd-nspawn;
# DROVER_REQUIRE_SYSTEM=1 turns the skip into a failure.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$(sys_pick_port)
URL=http://127.0.0.1:$PORT
MAX_EXPOSURE=2.0
NOFILE=16384

unit_state() { sys_run systemctl is-active "$1" 2>/dev/null || true; }
main_pid() { sys_show drover.service MainPID; }

status_ready() {
        local s
        s=$(sys_run systemctl status --no-pager --full drover.service 2>/dev/null) || return 1
        [[ $s =~ Ready:\ ([0-9]+)/([0-9]+)\ workers ]] && [[ ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]]
}

# get WHAT PATH EXPECTED: GET $URL$PATH, expect 200 and a body containing EXPECTED.
get() {
        local out code body
        out=$(curl -sS --max-time 20 -w '\n%{http_code}' "$URL$2") ||
                fail "$1: GET $2 failed (curl exit status $?)"
        code=${out##*$'\n'}
        body=${out%$'\n'*}
        assert_eq "$1: HTTP status of GET $2" "$code" 200
        assert_contains "$1: body of GET $2" "$body" "$3"
}

worker_pids() { sys_run pgrep -P "$(main_pid)" -f -- '--worker=' || true; }

# check_process WHAT PID: PID runs sandboxed.
check_process() {
        local what=$1 pid=$2 st uid limits
        st=$(sys_run cat "/proc/$pid/status") || fail "$what: cannot read /proc/$pid/status"
        [[ $st =~ Uid:[[:space:]]+([0-9]+) ]] || fail "$what: no Uid: in /proc/$pid/status"
        uid=${BASH_REMATCH[1]}
        assert_eq "$what (pid $pid): user" "$(sys_run id -nu "$uid")" drover
        [[ $st =~ CapEff:[[:space:]]+0+$'\n' ]] || fail "$what (pid $pid) has capabilities:"$'\n'"$st"
        [[ $st =~ CapBnd:[[:space:]]+0+$'\n' ]] || fail "$what (pid $pid) has a capability bounding set:"$'\n'"$st"
        ok "$what (pid $pid) has no capabilities, none in its bounding set"
        [[ $st =~ NoNewPrivs:[[:space:]]+1 ]] || fail "$what (pid $pid) lacks NoNewPrivs"
        [[ $st =~ Seccomp:[[:space:]]+2 ]] || fail "$what (pid $pid) has no seccomp filter"
        ok "$what (pid $pid): NoNewPrivs 1, Seccomp 2 (filter)"
        limits=$(sys_run cat "/proc/$pid/limits") || fail "$what: cannot read /proc/$pid/limits"
        [[ $limits =~ Max\ open\ files[[:space:]]+${NOFILE}[[:space:]]+${NOFILE} ]] ||
                fail "$what (pid $pid): expected 'Max open files $NOFILE $NOFILE':"$'\n'"$limits"
        ok "$what (pid $pid): Max open files $NOFILE"
}

sys_require
log "drover built at $DROVER_BIN"
sys_port_free "$PORT"
SYS_DIAG_UNITS=(drover.socket drover.service)
sys_boot hardening
sys_install
sys_listen_on "$PORT"

# --- the rating ------------------------------------------------------------------------------------
security=$(sys_run systemd-analyze security --no-pager drover.service 2>&1) ||
        fail "systemd-analyze security drover.service failed:"$'\n'"$security"
printf '%s\n' "$security" | grep -v '✓' | sed 's/^/#   /'
[[ $security =~ Overall\ exposure\ level\ for\ drover.service:\ ([0-9]+\.[0-9]) ]] ||
        fail "no overall exposure level in the output of systemd-analyze security"
exposure=${BASH_REMATCH[1]}
awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' ||
        fail "systemd-analyze security drover.service: exposure $exposure, more than $MAX_EXPOSURE"
ok "systemd-analyze security drover.service: exposure $exposure (at most $MAX_EXPOSURE)"

# --- the settings ----------------------------------------------------------------------------------
declare -A want=(
        [DynamicUser]=no [User]=drover [Group]=drover [ProtectSystem]=strict [ProtectHome]=yes [PrivateTmp]=yes [PrivateDevices]=yes
        [NoNewPrivileges]=yes [CapabilityBoundingSet]="" [AmbientCapabilities]=""
        [RestrictAddressFamilies]="AF_INET AF_INET6 AF_UNIX" [SystemCallArchitectures]=native
        [MemoryDenyWriteExecute]=yes [LockPersonality]=yes [RestrictNamespaces]=yes
        [ProtectKernelTunables]=yes [ProtectKernelModules]=yes [ProtectKernelLogs]=yes
        [ProtectControlGroups]=yes [ProtectClock]=yes [ProtectHostname]=yes [RestrictRealtime]=yes
        [RestrictSUIDSGID]=no [UMask]=0077 [LimitNOFILE]=$NOFILE [PrivateUsers]=yes [ProtectProc]=invisible
        [ProcSubset]=pid [NotifyAccess]=main [KillMode]=mixed [Restart]=on-failure
)
for prop in "${!want[@]}"; do
        assert_eq "drover.service $prop" "$(sys_show drover.service "$prop")" "${want[$prop]}"
done
filter=$(sys_show drover.service SystemCallFilter)
for call in pidfd_open openat2 memfd_create signalfd4 epoll_wait sendfile prctl execve; do
        [[ " $filter " == *" $call "* ]] ||
                fail "SystemCallFilter of drover.service does not allow $call (drover needs it)"
done
for call in mount setuid reboot setrlimit; do
        [[ " $filter " != *" $call "* ]] || fail "SystemCallFilter of drover.service allows $call"
done
ok "SystemCallFilter= allows what drover calls and refuses mount, setuid, reboot, setrlimit"

# --- a pool with a handler module, started by its socket -------------------------------------------
drover_path=$(sys_exec_path drover.service) || fail "cannot find the ExecStart binary of drover.service"
hello=$(sys_run find /usr/local -name hello.so -path '*drover/modules*' -print -quit) || true
[[ -n $hello ]] || fail "the hello module is not installed below /usr/local"
sys_dropin drover.service module <<EOF
[Service]
ExecStart=
ExecStart=$drover_path --workers=2 --handler=/hello=$hello
EOF
sys_run timeout 30 systemctl start drover.socket || fail "systemctl start drover.socket failed"
get "first request (socket activation)" / drover
sys_wait_for -t 10 status_ready || fail "drover.service did not report all workers ready"
get "handler module" /hello "Hello, world!"
pid=$(main_pid)
check_process supervisor "$pid"
mapfile -t workers < <(worker_pids)
assert_eq "workers" "${#workers[@]}" 2
for w in "${workers[@]}"; do
        check_process worker "$w"
done
maps=$(sys_run cat "/proc/${workers[0]}/maps") || fail "cannot read the maps of worker ${workers[0]}"
assert_contains "mappings of worker ${workers[0]}" "$maps" "$hello"
wx=$(awk '$2 ~ /w/ && $2 ~ /x/' <<<"$maps")
[[ -z $wx ]] || fail "worker ${workers[0]} has writable and executable mappings:"$'\n'"$wx"
ok "worker ${workers[0]} mapped the module, and nothing writable and executable"

# What the workers see of the file system.
view=$(sys_run nsenter -t "${workers[0]}" -m touch /usr/drover-write-test 2>&1) &&
        fail "root could write to /usr in the workers' mount namespace"
assert_contains "touch /usr/... in the workers' mount namespace" "$view" "Read-only file system"
home=$(sys_run nsenter -t "${workers[0]}" -m find /home /root -mindepth 1 -maxdepth 1 -print) || true
[[ -z $home ]] || fail "the workers see files in /home or /root:"$'\n'"$home"
ok "the workers see a read-only /usr and an empty /home and /root"

# --- reload and a worker's death, inside the sandbox -----------------------------------------------
sys_run timeout 60 systemctl reload drover.service || fail "systemctl reload drover.service failed"
sys_wait_for -t 20 status_ready || fail "drover.service did not report all workers ready after the reload"
assert_eq "MainPID after the reload" "$(main_pid)" "$pid"
mapfile -t after < <(worker_pids)
for w in "${workers[@]}"; do
        [[ " ${after[*]} " != *" $w "* ]] || fail "worker $w was not replaced by the reload"
done
ok "the reload replaced every worker (now: ${after[*]})"
get "after the reload" /hello "Hello, world!"
sys_run kill -KILL "${after[0]}" || fail "cannot kill worker ${after[0]}"
replaced() {
        local now
        now=$(worker_pids)
        [[ $(grep -c . <<<"$now") == 2 && " ${now//$'\n'/ } " != *" ${after[0]} "* ]]
}
sys_wait_for -t 10 replaced || fail "killed worker ${after[0]} was not replaced"
ok "killed worker ${after[0]} was replaced"
get "after a worker's death" / drover

# --- nothing was refused ---------------------------------------------------------------------------
sys_run journalctl --sync 2>/dev/null || true
journal=$(sys_run journalctl -u drover.service -o cat --no-pager) || fail "journalctl failed"
for bad in "Operation not permitted" "Permission denied" "Function not implemented" "SIGSYS" "Bad system call" "Read-only file system"; do
        [[ $journal != *"$bad"* ]] || fail "the journal of drover.service mentions '$bad':"$'\n'"$journal"
done
ok "no refusal by the sandbox in the journal of drover.service"
assert_eq "NRestarts of drover.service" "$(sys_show drover.service NRestarts)" 0

sys_run timeout 60 systemctl stop drover.socket drover.service || fail "systemctl stop failed"
procs=$(sys_run pgrep -a '^drover') || true
[[ -z $procs ]] || fail "drover processes left at the end:"$'\n'"$procs"
ok "no drover process left"
