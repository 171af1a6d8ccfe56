#!/usr/bin/env bash
#
# templates.sh - several pools side by side: drover@.socket + drover@.service.
#
# Does what the README's "Running several pools" tells an operator:
#   - one drop-in per instance sets the port of drover@alpha.socket and
#     drover@beta.socket (two ports), one configuration per instance
#     (/etc/drover/NAME.conf: its own document root and pool size);
#   - `systemctl enable --now drover@alpha.socket drover@beta.socket`:
#     both listen, nothing runs yet; each port's first request starts its own
#     drover@NAME.service, serving its own root with its own pool size
#     ("Ready: 1/1 workers" and "Ready: 2/2 workers");
#   - the template's ExecStart reads /etc/drover/%i.conf, the sandbox is the
#     one of drover.service (systemd-analyze security: at most 2.0), and
#     without a drop-in an instance listens on /run/drover/NAME.sock only;
#   - reloading or stopping one pool leaves the other alone (same MainPID,
#     still serving);
#   - `systemctl disable --now` of both sockets leaves no process and
#     nothing listening.
#
# The configuration file (--config) comes with another change. Until drover
# has --config (drover --help does not mention it), each instance gets the
# same settings from a drop-in on drover@NAME.service instead, and the test
# says so (TODO: once --config is merged, this branch is never taken).
#
# Skips (exit 77) unless run as root on a machine with systemd-nspawn;
# DROVER_REQUIRE_SYSTEM=1 turns the skip into a failure.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MAX_EXPOSURE=2.0
declare -A PORT=([alpha]=$(sys_pick_port) [beta]=$(sys_pick_port))
declare -A WORKERS=([alpha]=1 [beta]=2)
[[ ${PORT[alpha]} != "${PORT[beta]}" ]] || PORT[beta]=$(sys_pick_port)

unit_state() { sys_run systemctl is-active "$1" 2>/dev/null || true; }
main_pid() { sys_show "drover@$1.service" MainPID; }
port_listening() { [[ -n $(ss -Hltn "sport = :$1") ]]; }
port_closed() { ! port_listening "$1"; }

status_ready() {
        local s
        s=$(sys_run systemctl status --no-pager --full "drover@$1.service" 2>/dev/null) || return 1
        [[ $s =~ Ready:\ ([0-9]+)/([0-9]+)\ workers ]] && [[ ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]]
}

# get NAME WHAT: GET / on NAME's port: 200 and NAME's own page.
get() {
        local out code body
        out=$(curl -sS --max-time 20 -w '\n%{http_code}' "http://127.0.0.1:${PORT[$1]}/") ||
                fail "$2: GET / on :${PORT[$1]} ($1) failed (curl exit status $?)"
        code=${out##*$'\n'}
        body=${out%$'\n'*}
        assert_eq "$2: HTTP status of GET / on :${PORT[$1]}" "$code" 200
        assert_eq "$2: body of GET / on :${PORT[$1]}" "$body" "pool $1"
}

sys_require
log "drover built at $DROVER_BIN"
for name in alpha beta; do
        sys_port_free "${PORT[$name]}"
done
SYS_DIAG_UNITS=(drover@alpha.socket drover@alpha.service drover@beta.socket drover@beta.service)
sys_boot templates
sys_install

for unit in drover@.socket drover@.service; do
        assert_eq "LoadState of ${unit/@/@gamma}" "$(sys_show "${unit/@/@gamma}" LoadState)" loaded
done
exec_start=$(sys_show drover@gamma.service ExecStart)
assert_contains "ExecStart of drover@gamma.service" "$exec_start" "--config=/etc/drover/gamma.conf"
assert_eq "Listen of drover@gamma.socket (no drop-in)" "$(sys_show drover@gamma.socket Listen)" \
        "/run/drover/gamma.sock (Stream)"
drover_path=$(sys_exec_path drover@gamma.service) || fail "cannot find the ExecStart binary of drover@.service"

has_config=0
help=$(sys_run "$drover_path" --help 2>&1) || true
[[ $help != *--config* ]] || has_config=1

# --- what the operator writes: a port per socket, a configuration per pool -------------------------
for name in alpha beta; do
        sys_run mkdir -p "/srv/$name"
        printf 'pool %s' "$name" | sys_run tee "/srv/$name/index.html" >/dev/null
        sys_run chmod -R a+rX "/srv/$name"
        sys_listen_on "${PORT[$name]}" "drover@$name.socket"
        if ((has_config)); then
                sys_run mkdir -p /etc/drover
                printf '# drover@%s\nworkers = %s\nroot = /srv/%s\n' "$name" "${WORKERS[$name]}" "$name" |
                        sys_run tee "/etc/drover/$name.conf" >/dev/null
                ok "wrote /etc/drover/$name.conf"
        else
                log "TODO: drover has no --config yet; drover@$name.service gets its settings from a drop-in"
                sys_dropin "drover@$name.service" no-config-yet <<EOF
[Service]
ExecStart=
ExecStart=$drover_path --workers=${WORKERS[$name]} --root=/srv/$name
EOF
        fi
done

# --- the sandbox is the one of drover.service -------------------------------------------------------
security=$(sys_run systemd-analyze security --no-pager drover@alpha.service 2>&1) ||
        fail "systemd-analyze security drover@alpha.service failed:"$'\n'"$security"
[[ $security =~ Overall\ exposure\ level\ for\ drover@alpha.service:\ ([0-9]+\.[0-9]) ]] ||
        fail "no overall exposure level in the output of systemd-analyze security:"$'\n'"$security"
exposure=${BASH_REMATCH[1]}
awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' ||
        fail "systemd-analyze security drover@alpha.service: exposure $exposure, more than $MAX_EXPOSURE"
ok "systemd-analyze security drover@alpha.service: exposure $exposure (at most $MAX_EXPOSURE)"
security_main=$(sys_run systemd-analyze security --no-pager drover.service 2>&1) || true
[[ $security_main =~ Overall\ exposure\ level\ for\ drover.service:\ ([0-9]+\.[0-9]) ]] &&
        assert_eq "exposure of drover@alpha.service and drover.service" "$exposure" "${BASH_REMATCH[1]}"

# --- enable --now: both listen, nothing runs ---------------------------------------------------------
sys_run timeout 30 systemctl enable --now drover@alpha.socket drover@beta.socket ||
        fail "systemctl enable --now drover@alpha.socket drover@beta.socket failed"
for name in alpha beta; do
        assert_eq "drover@$name.socket enabled" "$(sys_run systemctl is-enabled "drover@$name.socket")" enabled
        sys_run test -L "/etc/systemd/system/sockets.target.wants/drover@$name.socket" ||
                fail "no sockets.target.wants/drover@$name.socket link"
        sys_wait_for -t 5 port_listening "${PORT[$name]}" || fail "nothing listens on :${PORT[$name]} ($name)"
        assert_eq "drover@$name.service before any request" "$(unit_state "drover@$name.service")" inactive
done

# --- each port starts its own pool ------------------------------------------------------------------
for name in alpha beta; do
        get "$name" "first request to $name"
        sys_wait_for -t 10 status_ready "$name" || fail "drover@$name.service did not report all workers ready"
        status=$(sys_run systemctl status --no-pager --full "drover@$name.service") || true
        assert_contains "systemctl status drover@$name" "$status" "Ready: ${WORKERS[$name]}/${WORKERS[$name]} workers"
done
get alpha "alpha again"
get beta "beta again"
pid_a=$(main_pid alpha) pid_b=$(main_pid beta)
[[ $pid_a =~ ^[1-9][0-9]*$ && $pid_b =~ ^[1-9][0-9]*$ && $pid_a != "$pid_b" ]] ||
        fail "expected two supervisors, MainPIDs: alpha '$pid_a', beta '$pid_b'"
ok "two pools: alpha (pid $pid_a), beta (pid $pid_b)"
user=$(sys_run ps -o user= -p "$pid_a") || true
assert_eq "user of drover@alpha.service" "${user// /}" drover

# --- one pool's reload and stop leave the other alone -------------------------------------------------
sys_run timeout 60 systemctl reload drover@alpha.service || fail "systemctl reload drover@alpha.service failed"
sys_wait_for -t 20 status_ready alpha || fail "drover@alpha.service not ready after its reload"
assert_eq "MainPID of drover@alpha after its reload" "$(main_pid alpha)" "$pid_a"
assert_eq "MainPID of drover@beta after alpha's reload" "$(main_pid beta)" "$pid_b"
sys_run journalctl --sync 2>/dev/null || true
reloads=$(sys_journal_count drover@beta.service DROVER_EVENT reload-done)
assert_eq "reload-done entries of drover@beta" "$reloads" 0
get alpha "alpha after its reload"
get beta "beta after alpha's reload"

sys_run timeout 60 systemctl stop drover@alpha.service || fail "systemctl stop drover@alpha.service failed"
assert_eq "drover@alpha.service after stop" "$(unit_state drover@alpha.service)" inactive
assert_eq "MainPID of drover@beta after alpha's stop" "$(main_pid beta)" "$pid_b"
get beta "beta after alpha's stop"
get alpha "alpha, started again by its socket"

# --- disable --now: nothing left ----------------------------------------------------------------------
sys_run timeout 60 systemctl disable --now drover@alpha.socket drover@beta.socket drover@alpha.service \
        drover@beta.service || fail "systemctl disable --now failed"
for name in alpha beta; do
        assert_eq "drover@$name.socket at the end" "$(unit_state "drover@$name.socket")" inactive
        assert_eq "drover@$name.service at the end" "$(unit_state "drover@$name.service")" inactive
        sys_wait_for -t 5 port_closed "${PORT[$name]}" || fail "something still listens on :${PORT[$name]}"
done
procs=$(sys_run pgrep -a '^drover') || true
[[ -z $procs ]] || fail "drover processes left at the end:"$'\n'"$procs"
ok "no drover process left, nothing listening"
((has_config)) || log "TODO: the configuration files were not tested: drover has no --config yet"
