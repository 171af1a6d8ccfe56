#!/usr/bin/env bash
#
# idle-exit-repeated.sh - with --exit-idle-time, drover can be started by
# its socket again and again.
#
# A drop-in runs drover.service with --exit-idle-time=2s (nothing else
# changed: the unit's Restart=, StartLimitBurst= and StartLimitIntervalSec=
# stay as shipped).  A client that makes one request now and then --
# whenever drover has exited after being idle -- must always be served:
# README: "the socket stays with systemd, and the next connection starts
# drover again".  The test makes StartLimitBurst + 2 such requests in a row
# and checks for each: the request is answered 200, drover.service is
# started again (a new MainPID) and exits by itself with Result=success,
# and drover.socket stays active (listening).
#
# Skips (exit 77) unless run as root on a machine with systemd-nspawn;
# DROVER_REQUIRE_SYSTEM=1 turns the skip into a failure.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$(sys_pick_port)
URL=http://127.0.0.1:$PORT/

port_listening() { [[ -n $(ss -Hltn "sport = :$PORT") ]]; }

sys_require
log "drover built at $DROVER_BIN"
sys_port_free "$PORT"
SYS_DIAG_UNITS=(drover.socket drover.service)
sys_boot idle-exit-repeated
sys_install
sys_listen_on "$PORT"

sys_drover_args idle --exit-idle-time=2s
burst=$(sys_show drover.service StartLimitBurst)
interval=$(sys_show drover.service StartLimitIntervalUSec)
log "drover.service: StartLimitBurst=$burst StartLimitIntervalSec=$interval"
[[ $burst =~ ^[0-9]+$ ]] || fail "cannot read StartLimitBurst of drover.service ($burst)"
rounds=$((burst + 2))

sys_run timeout 30 systemctl start drover.socket || fail "systemctl start drover.socket failed"
sys_wait_for -t 5 port_listening || fail "nothing listens on :$PORT after starting drover.socket"

t_first=$SECONDS
last_pid=""
for ((i = 1; i <= rounds; i++)); do
        rc=0
        code=$(curl -sS -o /dev/null --max-time 30 -w '%{http_code}' "$URL" 2>"$SYS_TMPDIR/curl.err") || rc=$?
        if [[ $rc != 0 || $code != 200 ]]; then
                sys_run journalctl --sync 2>/dev/null || true
                fail "request #$i ($((SECONDS - t_first)) s after the first; drover had exited after being" \
                        "idle before it): curl exit status $rc, HTTP '$code': $(<"$SYS_TMPDIR/curl.err")" \
                        $'\n'"drover.socket: $(unit_state drover.socket)" \
                        "(Result=$(sys_show drover.socket Result)); drover.service: $(unit_state drover.service)" \
                        "(Result=$(sys_show drover.service Result))"$'\n'"journal of both units:"$'\n'"$(sys_run \
                        journalctl -u drover.socket -u drover.service -o short-monotonic --no-pager | tail -n 25)"
        fi
        ok "request #$i ($((SECONDS - t_first)) s after the first) answered 200"
        sys_wait_for -t 10 state_is drover.service active || fail "request #$i: drover.service is not active"
        pid=$(main_pid)
        [[ $pid =~ ^[1-9][0-9]*$ && $pid != "$last_pid" ]] ||
                fail "request #$i: expected a new drover supervisor, MainPID was '$last_pid' and is '$pid'"
        last_pid=$pid
        sys_wait_for -t 15 state_is drover.service inactive ||
                fail "request #$i: drover.service (pid $pid) did not exit by itself within 15 s"
        assert_eq "request #$i: Result of drover.service after its idle exit" \
                "$(sys_show drover.service Result)" success
        assert_eq "request #$i: drover.socket state" "$(unit_state drover.socket)" active
done
ok "drover was started $rounds times by its socket in $((SECONDS - t_first)) s and served every request"

sys_run timeout 30 systemctl stop drover.socket drover.service ||
        fail "systemctl stop drover.socket drover.service failed"
procs=$(sys_run pgrep -a '^drover') || true
[[ -z $procs ]] || fail "drover processes left at the end:"$'\n'"$procs"
ok "no drover process left"
