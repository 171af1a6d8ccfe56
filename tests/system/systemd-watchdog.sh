#!/usr/bin/env bash
#
# systemd-watchdog.sh - systemd's watchdog restarts a hung drover supervisor.
#
# With WatchdogSec=2s (a drop-in), drover.service is started by a request on
# its socket, then its supervisor is frozen with SIGSTOP: it can no longer pet
# systemd's watchdog.  Checks:
#   - a request sent while the supervisor is frozen is answered (200) -- by
#     the workers still running, or by the restarted service -- never refused;
#     so are requests sent every 100 ms from then until the new pool is ready;
#   - systemd notices the missed watchdog ("Watchdog timeout" in the journal),
#     kills the frozen supervisor and restarts drover.service
#     (Restart=on-failure): a new MainPID, NRestarts grows, the new pool
#     becomes ready and serves;
#   - no process of the old instance (supervisor or worker) is left.
#
# Skips (exit 77) unless run as root on a machine with systemd-nspawn;
# DROVER_REQUIRE_SYSTEM=1 turns the skip into a failure.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$(sys_pick_port)
URL=http://127.0.0.1:$PORT/


# Workers of supervisor PID (container pids), one a line.
workers_of() { sys_run pgrep -P "$1" -f -- '--worker=' || true; }

# get WHAT: GET $URL, expect 200.
get_root() {
        local out
        out=$(curl -sS -o /dev/null --max-time 30 -w '%{http_code}' "$URL") ||
                fail "$1: GET $URL failed (curl exit status $?)"
        assert_eq "$1: HTTP status of GET /" "$out" 200
}

# Background request: "HTTP_CODE CURL_EXIT_STATUS" into $1.
bg_get() {
        local code rc=0
        code=$(curl -sS -o /dev/null --max-time 90 -w '%{http_code}' "$URL" 2>"$1.err") || rc=$?
        printf '%s %s\n' "$code" "$rc" >"$1"
}

# A new supervisor is running: MainPID set, not the old one, unit active.
restarted() {
        local pid
        pid=$(main_pid) || return 1
        [[ $pid =~ ^[1-9][0-9]*$ && $pid != "$1" ]] || return 1
        [[ $(unit_state drover.service) == active ]]
}

journal_has() {
        local j
        sys_run journalctl --sync 2>/dev/null || true
        j=$(sys_run journalctl -u drover.service -o cat --no-pager 2>/dev/null) || return 1
        sys_contains "$j" "$1"
}

gone() { ! sys_run test -e "/proc/$1"; }

sys_require
log "drover built at $DROVER_BIN"
sys_port_free "$PORT"
SYS_DIAG_UNITS=(drover.socket drover.service)
sys_boot systemd-watchdog
sys_install
sys_listen_on "$PORT"
sys_dropin drover.service watchdog <<'EOF'
[Service]
WatchdogSec=2s
EOF

# --- start it ---------------------------------------------------------------------
sys_run timeout 30 systemctl start drover.socket || fail "systemctl start drover.socket failed"
get_root "first request"
sys_wait_for -t 10 sys_run systemctl is-active --quiet drover.service ||
        fail "drover.service is not active after the first request"
sys_wait_for -t 10 status_ready || fail "drover.service never reported all its workers ready"
ok "drover.service is active and ready"

pid1=$(main_pid)
[[ $pid1 =~ ^[1-9][0-9]*$ ]] || fail "drover.service has no MainPID ($pid1)"
old_workers=$(workers_of "$pid1")
mapfile -t old_worker_pids <<<"$old_workers"
[[ -n $old_workers ]] || fail "supervisor $pid1 has no worker processes"
ok "supervisor $pid1 with workers ${old_worker_pids[*]}"
env1=$(sys_run cat "/proc/$pid1/environ" | tr '\0' '\n') || true
wd_env=$(grep -x 'WATCHDOG_USEC=[0-9]*' <<<"$env1") || true
assert_eq "WATCHDOG_USEC in the supervisor's environment (WatchdogSec=2s by drop-in)" "$wd_env" WATCHDOG_USEC=2000000
restarts0=$(sys_show drover.service NRestarts)
log "NRestarts before: $restarts0"

# Longer than one watchdog period and still healthy: the supervisor pets.
sleep 3
assert_eq "MainPID after 3 s with WatchdogSec=2s (the supervisor pets the watchdog)" "$(main_pid)" "$pid1"

# --- freeze the supervisor ------------------------------------------------------------
sys_run kill -STOP "$pid1" || fail "kill -STOP $pid1 failed"
stat=$(sys_run ps -o stat= -p "$pid1") || true
[[ $stat == T* ]] || fail "supervisor $pid1 is not stopped after SIGSTOP (ps stat '$stat')"
ok "supervisor $pid1 is stopped (ps stat '$stat')"
t_stop=$SECONDS

sys_bg bg_get "$SYS_TMPDIR/frozen-get"
frozen_get=$SYS_BG_PID
log "request sent while the supervisor is frozen (background curl $frozen_get)"
# And more, every 100 ms, until the restarted service is ready: across the
# kill and the restart, when they wait in the socket's backlog.
sys_bg sys_curl_stream "$URL" "$SYS_TMPDIR/stream" "$SYS_TMPDIR/stream.stop" 0.1 600
stream=$SYS_BG_PID

# --- systemd restarts the service ---------------------------------------------------
sys_wait_for -t 60 restarted "$pid1" ||
        fail "systemd did not restart drover.service after its supervisor stopped petting the watchdog"
pid2=$(main_pid)
ok "drover.service restarted by systemd: MainPID $pid1 -> $pid2 ($((SECONDS - t_stop)) s after SIGSTOP)"
restarts1=$(sys_show drover.service NRestarts)
((restarts1 > restarts0)) || fail "NRestarts did not grow: $restarts0 before, $restarts1 after"
ok "NRestarts grew: $restarts0 -> $restarts1"

sys_wait_for -t 10 journal_has "Watchdog timeout" ||
        fail "the journal of drover.service has no 'Watchdog timeout' message from systemd"
journal=$(sys_run journalctl -u drover.service -o cat --no-pager)
wd_line=$(grep -F "Watchdog timeout" <<<"$journal" | head -n 1) || true
ok "systemd logged: $wd_line"
assert_contains "journal of drover.service" "$journal" "Failed with result 'watchdog'"

# --- the request sent meanwhile was served ------------------------------------------------
sys_bg_wait "$frozen_get" || true
read -r code rc <"$SYS_TMPDIR/frozen-get" || fail "the background curl left no result"
[[ $rc == 0 ]] || fail "request sent while the supervisor was frozen failed: curl exit status $rc," \
        "HTTP '$code': $(cat "$SYS_TMPDIR/frozen-get.err")"
assert_eq "HTTP status of the request sent while the supervisor was frozen" "$code" 200

sys_wait_for -t 10 status_ready || fail "the restarted drover.service never reported all its workers ready"
touch "$SYS_TMPDIR/stream.stop"
sys_bg_wait "$stream" || true
sys_curl_check "requests every 100 ms from the SIGSTOP until the restarted service was ready" \
        "$SYS_TMPDIR/stream" 2

# --- nothing of the old instance is left -----------------------------------------------------
sys_wait_for -t 10 gone "$pid1" || fail "the old supervisor $pid1 is still there"
ok "the old supervisor $pid1 is gone"
for pid in "${old_worker_pids[@]}"; do
        if ! sys_wait_for -t 10 gone "$pid"; then
                fail "old worker $pid is still running: $(sys_run ps -o pid,ppid,stat,args -p "$pid" || true)"
        fi
        ok "old worker $pid is gone"
done

new_workers=$(workers_of "$pid2")
mapfile -t new_worker_pids <<<"$new_workers"
[[ -n $new_workers ]] || new_worker_pids=()
assert_eq "workers of the new supervisor $pid2" "${#new_worker_pids[@]}" "${#old_worker_pids[@]}"
procs=$(sys_run pgrep -a '^drover') || true
assert_eq "drover processes in the container (new supervisor + its workers)" \
        "$(grep -c . <<<"$procs" || true)" "$((${#new_worker_pids[@]} + 1))"
get_root "request after the restart"

# --- stop everything --------------------------------------------------------------------------
sys_run timeout 60 systemctl stop drover.socket drover.service ||
        fail "systemctl stop drover.socket drover.service failed"
assert_eq "drover.service state at the end" "$(unit_state drover.service)" inactive
procs=$(sys_run pgrep -a '^drover') || true
[[ -z $procs ]] || fail "drover processes left at the end:"$'\n'"$procs"
ok "no drover process left"
