#!/usr/bin/env bash
#
# reload.sh - `systemctl reload drover` under load drops nothing.
#
# drover.service is started by a request on its socket; then, twice -- with
# keep-alive connections and with `Connection: close` on every request --
# wrk loads it from the host (wrk -t2 -c16 -d8s) while the service is
# reloaded five times, one second apart.  Checks, for each round:
#   - every `systemctl reload drover.service` returns 0;
#   - wrk reports no socket error (connect, read, write, timeout) and no
#     non-2xx/3xx response, and made requests at all;
#   - the service stays active (or reloading) throughout, with the same
#     MainPID and no restart (NRestarts unchanged);
#   - each reload is journaled: five more DROVER_EVENT=reload-done entries,
#     no reload-failed;
#   - afterwards, every worker is a new process: none of the worker PIDs from
#     before the reloads is left, and the pool is back to its full size.
# And at the end, after `journalctl --update-catalog`, `journalctl -x` shows
# the catalog's explanation of the reload messages.
#
# Skips (exit 77) unless run as root on a machine with systemd-nspawn;
# DROVER_REQUIRE_SYSTEM=1 turns the skip into a failure.  Fails if wrk is
# not installed.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$(sys_pick_port)
URL=http://127.0.0.1:$PORT/
RELOADS=5


# Workers of supervisor PID (container pids), sorted, one a line.
workers_of() { { sys_run pgrep -P "$1" -f -- '--worker=' || true; } | sort -n; }

# The pool is back to WORKERS processes, none of them in the list OLD
# (space separated).
pool_replaced() {
        local want=$1 old=" $2 " cur pid n=0
        cur=$(workers_of "$PID")
        for pid in $cur; do
                [[ $old != *" $pid "* ]] || return 1
                n=$((n + 1))
        done
        ((n == want))
}

reload_done_count() { sys_journal_count drover.service DROVER_EVENT reload-done; }
count_is() { [[ $("${@:2}") == "$1" ]]; }

# Poll the unit's state until the file $2 exists; one line per poll:
# "ActiveState SubState MainPID".
watch_unit() {
        local out=$1 stop=$2 show line
        local -A v
        while [[ ! -e $stop ]]; do
                v=()
                show=$(sys_run systemctl show -p ActiveState -p SubState -p MainPID drover.service \
                        2>/dev/null) || show=""
                while IFS= read -r line; do
                        [[ $line == *=* ]] && v[${line%%=*}]=${line#*=}
                done <<<"$show"
                printf '%s %s %s\n' "${v[ActiveState]:-?}" "${v[SubState]:-?}" "${v[MainPID]:-?}" >>"$out"
                sleep 0.1
        done
}

# run_wrk OUT ARGS...: wrk against $URL, its output (and exit status) into OUT.
run_wrk() {
        local out=$1 rc=0
        shift
        wrk -t2 -c16 -d8s "$@" "$URL" >"$out" 2>&1 || rc=$?
        printf 'wrk exit status: %s\n' "$rc" >>"$out"
        return "$rc"
}

# round NAME [WRK ARGS...]: one round of reloads under wrk.
round() {
        local name=$1 dir=$SYS_TMPDIR/$1
        shift
        mkdir -p "$dir"
        log "--- round '$name': wrk -t2 -c16 -d8s${*:+ ${*@Q}} while reloading $RELOADS times"

        sys_wait_for -t 30 status_ready || fail "$name: drover.service is not ready before the reloads"
        local before_workers done_before restarts_before n_workers
        before_workers=$(workers_of "$PID" | tr '\n' ' ')
        before_workers=${before_workers% }
        n_workers=$(wc -w <<<"$before_workers")
        ((n_workers > 0)) || fail "$name: supervisor $PID has no workers"
        done_before=$(reload_done_count)
        restarts_before=$(sys_show drover.service NRestarts)
        log "$name: workers before: $before_workers; reload-done entries so far: $done_before"

        sys_bg watch_unit "$dir/states" "$dir/stop"
        local watcher=$SYS_BG_PID
        sys_bg run_wrk "$dir/wrk.out" "$@"
        local wrk_job=$SYS_BG_PID
        sleep 1

        local i rc
        for ((i = 1; i <= RELOADS; i++)); do
                rc=0
                sys_run systemctl reload drover.service || rc=$?
                [[ $rc == 0 ]] || fail "$name: systemctl reload drover.service #$i returned $rc"
                ok "$name: systemctl reload drover.service #$i returned 0"
                sleep 1
        done

        rc=0
        sys_bg_wait "$wrk_job" || rc=$?
        touch "$dir/stop"
        sys_bg_wait "$watcher" || true
        local wrk_out
        wrk_out=$(<"$dir/wrk.out")
        printf '%s\n' "$wrk_out" | sed 's/^/#   /'
        [[ $rc == 0 ]] || fail "$name: wrk failed (exit status $rc)"

        # wrk: no error of any kind, and it did make requests.
        ! sys_contains "$wrk_out" "Socket errors" ||
                fail "$name: wrk reported socket errors: $(grep -F 'Socket errors' <<<"$wrk_out")"
        ok "$name: wrk reported no socket errors"
        ! sys_contains "$wrk_out" "Non-2xx" ||
                fail "$name: wrk reported failed responses: $(grep -F 'Non-2xx' <<<"$wrk_out")"
        ok "$name: wrk reported no non-2xx/3xx responses"
        [[ $wrk_out =~ ([0-9]+)\ requests\ in ]] || fail "$name: cannot find the request count in wrk's output"
        ((BASH_REMATCH[1] > 0)) || fail "$name: wrk made no requests"
        ok "$name: wrk made ${BASH_REMATCH[1]} requests"

        # The service stayed up: one supervisor, active or reloading at every poll.
        local states bad
        states=$(<"$dir/states")
        [[ -n $states ]] || fail "$name: the unit watcher recorded nothing"
        bad=$(grep -v -E "^(active running|reloading reload) $PID\$" <<<"$states" || true)
        [[ -z $bad ]] || fail "$name: drover.service left active/$PID during the reloads" \
                "(ActiveState SubState MainPID):"$'\n'"$(uniq -c <<<"$states")"
        ok "$name: drover.service stayed active with MainPID $PID at all $(grep -c . <<<"$states") polls" \
                "($(grep -c '^reloading' <<<"$states" || true) of them while reloading)"
        assert_eq "$name: MainPID after the reloads" "$(main_pid)" "$PID"
        assert_eq "$name: NRestarts after the reloads" "$(sys_show drover.service NRestarts)" "$restarts_before"

        # Every reload ran to completion; none failed.
        local want=$((done_before + RELOADS))
        sys_wait_for -t 30 count_is "$want" reload_done_count ||
                fail "$name: expected $want DROVER_EVENT=reload-done journal entries, found $(reload_done_count)"
        ok "$name: $RELOADS more DROVER_EVENT=reload-done entries in the journal ($want in all)"
        assert_eq "$name: DROVER_EVENT=reload-failed entries" \
                "$(sys_journal_count drover.service DROVER_EVENT reload-failed)" 0

        # Every worker was replaced; the draining ones are gone.
        sys_wait_for -t 60 pool_replaced "$n_workers" "$before_workers" ||
                fail "$name: the workers were not all replaced: before: $before_workers;" \
                        "now: $(workers_of "$PID" | paste -sd ' ')"
        ok "$name: all $n_workers workers replaced: $before_workers -> $(workers_of "$PID" | paste -sd ' ')"
        sys_wait_for -t 10 status_ready || fail "$name: drover.service is not ready after the reloads"
        assert_eq "$name: drover.service state after the reloads" "$(unit_state drover.service)" active
}

command -v wrk >/dev/null || fail "wrk is not installed (apt-get install wrk): the reload test needs it"
sys_require
log "drover built at $DROVER_BIN"
sys_port_free "$PORT"
SYS_DIAG_UNITS=(drover.socket drover.service)
sys_boot reload
sys_install
sys_listen_on "$PORT"

sys_run timeout 30 systemctl start drover.socket || fail "systemctl start drover.socket failed"
code=$(curl -sS -o /dev/null --max-time 30 -w '%{http_code}' "$URL") || fail "first request: GET $URL failed"
assert_eq "first request: HTTP status" "$code" 200
sys_wait_for -t 10 sys_run systemctl is-active --quiet drover.service ||
        fail "drover.service is not active after the first request"
PID=$(main_pid)
[[ $PID =~ ^[1-9][0-9]*$ ]] || fail "drover.service has no MainPID ($PID)"
ok "drover.service is active, MainPID $PID"

round keep-alive
round connection-close -H 'Connection: close'

# --- journalctl -x explains the reload ------------------------------------------------------------
sys_run test -f /usr/local/lib/systemd/catalog/drover.catalog ||
        fail "the catalog is not installed at /usr/local/lib/systemd/catalog/drover.catalog"
sys_run journalctl --update-catalog || fail "journalctl --update-catalog failed"
explained=$(sys_run journalctl -x -u drover.service --no-pager) || fail "journalctl -x failed"
assert_contains "journalctl -x -u drover.service" "$explained" "Subject: drover is reloading"
assert_contains "journalctl -x -u drover.service" "$explained" "replaces its workers one by one"
assert_contains "journalctl -x -u drover.service" "$explained" "Subject: drover finished reloading"

# --- stop everything ------------------------------------------------------------------------------
sys_run timeout 60 systemctl stop drover.socket drover.service ||
        fail "systemctl stop drover.socket drover.service failed"
assert_eq "drover.service state at the end" "$(unit_state drover.service)" inactive
procs=$(sys_run pgrep -a '^drover') || true
[[ -z $procs ]] || fail "drover processes left at the end:"$'\n'"$procs"
ok "no drover process left"
