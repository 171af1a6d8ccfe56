#!/usr/bin/env bash
#
# socket-activation.sh - drover under a real systemd, activated by its socket.
#
# Boots a throw-away container, installs the build tree with meson install
# and checks the contract of units/drover.socket + units/drover.service:
#   - starting drover.socket starts no drover process;
#   - the first request on :PORT starts drover.service and is served the
#     default site (200, an HTML page that mentions drover);
#   - the supervisor reports "Ready: N/N workers" (N = CPUs) with N worker
#     processes ("drover-worker --worker=SLOT") as its children;
#   - worker events are journaled with DROVER_EVENT, DROVER_WORKER_SLOT and
#     DROVER_WORKER_PID (a DROVER_WORKER_PID for each running worker);
#   - stopping drover.service leaves no drover process while drover.socket
#     keeps listening; the supervisor stops its workers itself (systemd does
#     not have to SIGKILL any, KillMode=mixed) and journals DROVER_EVENT=exit
#     for each; the next request starts drover again;
#   - stopping both leaves nothing listening on :PORT.
#
# Skips (exit 77) unless run as root on a machine with systemd-nspawn;
# DROVER_REQUIRE_SYSTEM=1 turns the skip into a failure.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$(sys_pick_port)
URL=http://127.0.0.1:$PORT/

# Host-side view of the port (the container shares the host's network).
port_listening() { [[ -n $(ss -Hltn "sport = :$PORT") ]]; }
port_closed() { ! port_listening; }


# "PID CMDLINE" lines of every drover process in the container: a name
# starting with drover (workers call themselves drover-worker) or a
# --worker= argument.
drover_procs() {
        local by_name by_arg
        by_name=$(sys_run pgrep -a '^drover') || true
        by_arg=$(sys_run pgrep -a -f -- '--worker=') || true
        printf '%s\n%s\n' "$by_name" "$by_arg" | sed '/^$/d' | sort -un
}

assert_no_drover() {
        local procs
        procs=$(drover_procs)
        [[ -z $procs ]] || fail "$1: drover processes still run in the container:"$'\n'"$procs"
        ok "$1: no drover process in the container"
}

# get URL: GET $URL, expect 200 and a page mentioning drover.
get_root() {
        local what=$1 out code body
        out=$(curl -sS --max-time 20 -w '\n%{http_code}' "$URL") ||
                fail "$what: GET $URL failed (curl exit status $?)"
        code=${out##*$'\n'}
        body=${out%$'\n'*}
        assert_eq "$what: HTTP status of GET /" "$code" 200
        sys_contains "${body,,}" drover ||
                fail "$what: body of GET / does not mention drover:"$'\n'"${body:0:2000}"
        ok "$what: body of GET / mentions drover (${#body} bytes)"
}

status_any() {
        local s
        s=$(sys_run systemctl status --no-pager --full drover.service 2>/dev/null) || return 1
        sys_contains "$s" "Ready: "
}

journal_has_worker_fields() {
        local j
        sys_run journalctl --sync 2>/dev/null || true
        j=$(sys_run journalctl -u drover.service -o json --no-pager 2>/dev/null) || return 1
        sys_contains "$j" '"DROVER_WORKER_PID"'
}


sys_require
log "drover built at $DROVER_BIN"
sys_port_free "$PORT"
SYS_DIAG_UNITS=(drover.socket drover.service)
sys_boot socket-activation
sys_install
sys_listen_on "$PORT"

# --- the units are installed ---------------------------------------------------
for unit in drover.socket drover.service; do
        assert_eq "LoadState of $unit" \
                "$(sys_run systemctl show -p LoadState --value "$unit")" loaded
done
exec_start=$(sys_run systemctl show -p ExecStart --value drover.service)
[[ $exec_start =~ path=([^ \;]+) ]] || fail "cannot parse ExecStart of drover.service: $exec_start"
drover_path=${BASH_REMATCH[1]}
sys_run test -x "$drover_path" || fail "ExecStart binary $drover_path is not installed"
ok "ExecStart binary $drover_path is installed"

# --- socket only: nothing runs yet -----------------------------------------------
sys_run timeout 30 systemctl start drover.socket || fail "systemctl start drover.socket failed"
assert_eq "drover.socket state" "$(unit_state drover.socket)" active
sys_wait_for -t 5 port_listening || fail "nothing listens on :$PORT after starting drover.socket"
ok "something listens on :$PORT"
assert_eq "drover.service state before any request" "$(unit_state drover.service)" inactive
assert_no_drover "before any request"

# --- the first request activates drover.service ------------------------------------
get_root "first request"
sys_wait_for -t 10 sys_run systemctl is-active --quiet drover.service ||
        fail "drover.service is not active after the first request"
ok "drover.service is active after the first request"

sys_wait_for -t 10 status_any || fail "systemctl status drover.service never showed 'Ready: '"
status=$(sys_run systemctl status --no-pager --full drover.service) || true
assert_contains "systemctl status drover.service" "$status" "Ready: "
assert_contains "systemctl status drover.service" "$status" "workers"
[[ $status =~ Ready:\ ([0-9]+)/([0-9]+)\ workers ]] ||
        fail "status does not read 'Ready: N/N workers':"$'\n'"$status"
ready=${BASH_REMATCH[1]} total=${BASH_REMATCH[2]}
assert_eq "ready workers in the status" "$ready" "$total"
cpus=$(sys_run nproc)
assert_eq "worker count in the status (default: number of CPUs)" "$total" "$cpus"

pid1=$(main_pid)
[[ $pid1 =~ ^[1-9][0-9]*$ ]] || fail "drover.service has no MainPID ($pid1)"
workers=$(sys_run pgrep -P "$pid1" -f -- '--worker=') || true
mapfile -t worker_pids <<<"$workers"
[[ -n $workers ]] || worker_pids=()
assert_eq "worker processes ('--worker=' in cmdline) under the supervisor (pid $pid1)" \
        "${#worker_pids[@]}" "$total"
# Also proves that drover_procs, used for the "nothing left" checks, sees them.
procs=$(drover_procs)
assert_eq "drover processes in the container (supervisor + workers)" \
        "$(grep -c . <<<"$procs")" "$((total + 1))"

# --- journal fields -------------------------------------------------------------------
sys_wait_for -t 10 journal_has_worker_fields ||
        fail "journal of drover.service has no DROVER_WORKER_PID field"
journal=$(sys_run journalctl -u drover.service -o json --no-pager)
for field in DROVER_EVENT DROVER_WORKER_SLOT DROVER_WORKER_PID; do
        assert_contains "journalctl -u drover.service -o json" "$journal" "\"$field\""
done
for pid in "${worker_pids[@]}"; do
        assert_contains "journal of drover.service (worker $pid)" "$journal" \
                "\"DROVER_WORKER_PID\":\"$pid\""
done
events=$(grep -o '"DROVER_EVENT":"[^"]*"' <<<"$journal" | sed 's/.*:"//; s/"$//' |
        sort | uniq -c | awk '{printf "%s%s=%s", sep, $2, $1; sep=" "}') || true
log "DROVER_EVENT values so far: ${events:-none}"

# --- stopping the service keeps the socket ----------------------------------------------
t=${EPOCHREALTIME/[!0-9]/}
sys_run timeout 30 systemctl stop drover.service || fail "systemctl stop drover.service failed or took >30s"
log "systemctl stop drover.service took $(((${EPOCHREALTIME/[!0-9]/} - t) / 1000)) ms"
assert_eq "drover.service state after stop" "$(unit_state drover.service)" inactive
assert_no_drover "after stopping drover.service"
# KillMode=mixed: systemd sends SIGTERM to the supervisor only and SIGKILLs
# whatever is left once it exits; the supervisor must stop its workers.
sys_run journalctl --sync
killed=$(sys_run journalctl -u drover.service -o cat --no-pager | grep -F 'with signal SIGKILL') || true
[[ -z $killed ]] || fail "the supervisor exited on SIGTERM without stopping its workers;" \
        "systemd had to kill them:"$'\n'"$killed"
ok "systemd did not have to SIGKILL any drover process on stop"
journal=$(sys_run journalctl -u drover.service -o json --no-pager)
for pid in "${worker_pids[@]}"; do
        exit_line=$(grep -F '"DROVER_EVENT":"exit"' <<<"$journal" |
                grep -F "\"DROVER_WORKER_PID\":\"$pid\"") || true
        [[ -n $exit_line ]] ||
                fail "journal of drover.service has no DROVER_EVENT=exit entry for worker $pid"
        ok "journal of drover.service has DROVER_EVENT=exit for worker $pid"
done
# The workers journal for themselves (drover-worker writes the journal's native protocol without
# libsystemd): each one's drain on stop, from its own pid, with every structured field.
for pid in "${worker_pids[@]}"; do
        drain=$(sys_run journalctl -o json --no-pager "_PID=$pid" DROVER_EVENT=drain) || true
        for field in '"SYSLOG_IDENTIFIER":"drover"' '"PRIORITY":"6"' '"DROVER_WORKER_SLOT":"' \
                "\"DROVER_WORKER_PID\":\"$pid\"" '"MESSAGE":"stopping: no new connections'; do
                assert_contains "the drain entry worker $pid journaled" "$drain" "$field"
        done
done
assert_eq "drover.socket state after stopping the service" "$(unit_state drover.socket)" active
port_listening || fail "nothing listens on :$PORT after stopping drover.service"
ok "still listening on :$PORT"

# --- the next request starts it again -----------------------------------------------------
get_root "request after stop"
sys_wait_for -t 10 sys_run systemctl is-active --quiet drover.service ||
        fail "drover.service is not active again after the request"
pid2=$(main_pid)
[[ $pid2 =~ ^[1-9][0-9]*$ && $pid2 != "$pid1" ]] ||
        fail "expected a new drover supervisor, MainPID was $pid1 and is $pid2"
ok "drover.service is active again with a new supervisor (pid $pid2)"
sys_wait_for -t 10 status_any || fail "restarted drover.service never showed 'Ready: '"
ok "restarted drover.service reports ready"

# --- stop everything ----------------------------------------------------------------------
sys_run timeout 30 systemctl stop drover.socket drover.service ||
        fail "systemctl stop drover.socket drover.service failed or took >30s"
assert_eq "drover.service state at the end" "$(unit_state drover.service)" inactive
assert_eq "drover.socket state at the end" "$(unit_state drover.socket)" inactive
assert_no_drover "at the end"
sys_wait_for -t 5 port_closed || fail "something still listens on :$PORT"
ok "nothing listens on :$PORT any more"
