#!/usr/bin/env bash
#
# idle-exit.sh - drover --exit-idle-time under socket activation.
#
# A drop-in runs drover.service with --exit-idle-time=2s.  Checks:
#   - after a request, drover exits by itself once idle: drover.service goes
#     inactive with Result=success (exit status 0, not restarted, not
#     failed), no drover process is left, drover.socket keeps listening, and
#     the journal has the idle-exit entry (DROVER_EVENT=idle-exit with its
#     MESSAGE_ID);
#   - the next request starts drover again (a new MainPID) and is served;
#   - no connection is refused or dropped around an idle exit, two ways:
#     * after the exit: the moment drover journals its idle exit (seen by
#       following the journal, a few hundred ms late), 5 requests are sent
#       at once and then one every 100 ms for 3 s, across the exit and the
#       start of the next instance (twice);
#     * during the exit: drover's idle check runs 2 s and 4 s after it
#       armed its timer, which is just before it journals the spawn of its
#       first worker; a helper (connect-at.py) opens 60 connections, one
#       every 0.5 ms, from just after the check that ends an instance
#       started by one request -- while its workers stop, after it exited
#       and while systemd starts the next one (three times; the log says how
#       many connections landed in each phase);
#     every one must be answered 200, by the exiting instance or the next;
#   - none of this counted as a failure (NRestarts 0, Result=success).
# Every start counts against drover.service's StartLimitBurst=; this test
# starts drover more often than that, so each section begins with
# `systemctl reset-failed drover.service` (which resets the count).
# idle-exit-repeated.sh tests repeated idle exits without it.
#
# Skips (exit 77) unless run as root on a machine with systemd-nspawn;
# DROVER_REQUIRE_SYSTEM=1 turns the skip into a failure.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$(sys_pick_port)
URL=http://127.0.0.1:$PORT/
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IDLE_EXIT_ID=07dde6f1a24046be8305f2103c7e9508
CYCLES=2
ATTEMPTS=3

no_drover() { [[ -z $(sys_run pgrep -a '^drover' || true) ]]; }
port_listening() { [[ -n $(ss -Hltn "sport = :$PORT") ]]; }

# get WHAT: GET $URL, expect 200.
get_root() {
        local out
        out=$(curl -sS -o /dev/null --max-time 30 -w '%{http_code}' "$URL") ||
                fail "$1: GET $URL failed (curl exit status $?)"
        assert_eq "$1: HTTP status of GET /" "$out" 200
}

idle_exit_count() { sys_journal_count drover.service DROVER_EVENT idle-exit; }

# assert_idle_exited WHAT: drover.service exited by itself, successfully.
assert_idle_exited() {
        local what=$1 procs
        sys_wait_for -t 15 state_is drover.service inactive ||
                fail "$what: drover.service did not go inactive by itself within 15 s" \
                        "(--exit-idle-time=2s)"
        ok "$what: drover.service went inactive by itself"
        assert_eq "$what: Result of drover.service" "$(sys_show drover.service Result)" success
        assert_eq "$what: exit status of drover (ExecMainStatus)" "$(sys_show drover.service ExecMainStatus)" 0
        assert_eq "$what: NRestarts of drover.service" "$(sys_show drover.service NRestarts)" 0
        assert_eq "$what: drover.socket state" "$(unit_state drover.socket)" active
        port_listening || fail "$what: nothing listens on :$PORT any more"
        ok "$what: still listening on :$PORT"
        sys_wait_for -t 10 no_drover ||
                fail "$what: drover processes left after the idle exit:"$'\n'"$(sys_run pgrep -a '^drover' || true)"
        ok "$what: no drover process left"
}

# exit_burst DIR CURSOR: in the background.  Follows the journal for the
# next idle-exit entry of drover after the journal cursor CURSOR (at most
# 60 s); the moment it appears, sends 5 requests at once and then one every
# 100 ms for 3 s, results into DIR/results.  The entry's message goes to
# DIR/triggered, its cursor to DIR/cursor.
exit_burst() {
        local dir=$1 cursor=$2 fd follower line
        local -a pids=()
        # sh prints its container pid, then becomes timeout(1), which stops
        # journalctl when killed (below) or after 60 s.
        # shellcheck disable=SC2016 # $$ and $0 are for sh
        exec {fd}< <(sys_run sh -c 'echo $$; exec timeout 60 journalctl -q -f -o json \
                --after-cursor="$0" DROVER_EVENT=idle-exit' "$cursor")
        read -r -u "$fd" follower || follower=""
        if read -r -u "$fd" line; then
                for _ in 1 2 3 4 5; do
                        sys_curl_one "$URL" "$dir/results" &
                        pids+=("$!")
                done
                sys_curl_stream "$URL" "$dir/results" "$dir/no-stop" 0.1 30 &
                pids+=("$!")
                [[ $line =~ \"__CURSOR\":\"([^\"]*)\" ]] && printf '%s\n' "${BASH_REMATCH[1]}" >"$dir/cursor"
                [[ $line =~ \"MESSAGE\":\"([^\"]*)\" ]] && printf '%s\n' "${BASH_REMATCH[1]}" >"$dir/triggered"
                [[ -f $dir/triggered ]] || printf '%s\n' "$line" >"$dir/triggered"
        fi
        [[ -z $follower ]] || sys_run kill "$follower" 2>/dev/null || true
        exec {fd}<&-
        ((${#pids[@]} == 0)) || wait "${pids[@]}" || true
}

# Journal cursor of the last idle-exit entry of drover.
last_idle_exit_cursor() {
        local j
        j=$(sys_run journalctl -u drover.service -n 1 -o json DROVER_EVENT=idle-exit) || return 1
        [[ $j =~ \"__CURSOR\":\"([^\"]*)\" ]] || return 1
        printf '%s\n' "${BASH_REMATCH[1]}"
}

# event_mono PID EVENT first|last: __MONOTONIC_TIMESTAMP (us) of the first or
# last journal entry of process PID with DROVER_EVENT=EVENT.
event_mono() {
        local j
        j=$(sys_run journalctl -o json --no-pager "_PID=$1" "DROVER_EVENT=$2") || return 1
        case $3 in
        first) j=${j%%$'\n'*} ;;
        *) j=${j##*$'\n'} ;;
        esac
        [[ $j =~ \"__MONOTONIC_TIMESTAMP\":\"([0-9]+)\" ]] || return 1
        printf '%s\n' "${BASH_REMATCH[1]}"
}

# drain_summary FROM TO: the workers' drain messages ("stopping: no new
# connections, finishing N open") journaled between the monotonic times FROM
# and TO (us), joined by "; ".
drain_summary() {
        local j line mono msg sep="" out=""
        j=$(sys_run journalctl -u drover.service -o json --no-pager DROVER_EVENT=drain) || return 0
        while IFS= read -r line; do
                [[ $line =~ \"__MONOTONIC_TIMESTAMP\":\"([0-9]+)\" ]] || continue
                mono=${BASH_REMATCH[1]}
                ((mono >= $1 && mono <= $2)) || continue
                [[ $line =~ \"MESSAGE\":\"([^\"]*)\" ]] || continue
                msg=${BASH_REMATCH[1]}
                out+="$sep${msg#stopping: }"
                sep="; "
        done <<<"$j"
        printf '%s\n' "$out"
}

reset_start_limit() { sys_run systemctl reset-failed drover.service || fail "systemctl reset-failed failed"; }

sys_require
log "drover built at $DROVER_BIN"
sys_port_free "$PORT"
SYS_DIAG_UNITS=(drover.socket drover.service)
sys_boot idle-exit
sys_install
sys_listen_on "$PORT"

sys_drover_args idle --exit-idle-time=2s

# --- a request starts drover; idle, it exits by itself -----------------------------------------
sys_run timeout 30 systemctl start drover.socket || fail "systemctl start drover.socket failed"
sys_wait_for -t 5 port_listening || fail "nothing listens on :$PORT after starting drover.socket"
get_root "first request"
sys_wait_for -t 10 state_is drover.service active || fail "drover.service is not active after the first request"
pid1=$(main_pid)
[[ $pid1 =~ ^[1-9][0-9]*$ ]] || fail "drover.service has no MainPID ($pid1)"
ok "drover.service is active, MainPID $pid1"

assert_idle_exited "first idle exit"
assert_eq "DROVER_EVENT=idle-exit entries in the journal" "$(idle_exit_count)" 1
journal=$(sys_run journalctl -u drover.service -o json --no-pager)
entry=$(grep -F '"DROVER_EVENT":"idle-exit"' <<<"$journal") || true
assert_contains "the idle-exit journal entry" "$entry" "\"MESSAGE_ID\":\"$IDLE_EXIT_ID\""

# --- the next request starts it again --------------------------------------------------------------
get_root "request after the idle exit"
sys_wait_for -t 10 state_is drover.service active || fail "drover.service is not active again after a request"
pid2=$(main_pid)
[[ $pid2 =~ ^[1-9][0-9]*$ && $pid2 != "$pid1" ]] ||
        fail "expected a new drover supervisor, MainPID was $pid1 and is $pid2"
ok "drover.service is active again with a new supervisor (pid $pid2)"

# --- requests after an idle exit, while systemd starts drover again ---------------------------------
reset_start_limit
exits=$(idle_exit_count)
cursor=$(last_idle_exit_cursor) || fail "cannot find the journal cursor of the idle-exit entry"
for ((cycle = 1; cycle <= CYCLES; cycle++)); do
        dir=$SYS_TMPDIR/cycle$cycle
        mkdir -p "$dir"
        before=$(sys_show drover.service ExecMainPID)
        log "cycle $cycle: waiting for the idle exit of supervisor $before"
        sys_bg exit_burst "$dir" "$cursor"
        sys_bg_wait "$SYS_BG_PID" || true
        [[ -f $dir/triggered ]] || fail "cycle $cycle: drover did not journal an idle exit within 60 s"
        ok "cycle $cycle: drover journaled: $(<"$dir/triggered")"
        cursor=$(<"$dir/cursor") || fail "cycle $cycle: no journal cursor in the idle-exit entry"
        sys_curl_check "cycle $cycle: requests sent from the moment of the idle exit on" "$dir/results" 35
        exits=$((exits + 1))
        after=$(sys_show drover.service ExecMainPID)
        [[ $after != "$before" ]] ||
                fail "cycle $cycle: drover was not started again after its idle exit (ExecMainPID still $before)"
        ok "cycle $cycle: a new drover (pid $after) served the requests after the idle exit of $before"
        assert_eq "cycle $cycle: NRestarts of drover.service" "$(sys_show drover.service NRestarts)" 0
done

# --- requests during an idle exit ---------------------------------------------------------------------
covered=0
for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
        sys_wait_for -t 15 state_is drover.service inactive ||
                fail "attempt $attempt: drover.service did not go inactive by itself within 15 s"
        reset_start_limit
        get_root "attempt $attempt: request that starts drover"
        sys_wait_for -t 10 state_is drover.service active ||
                fail "attempt $attempt: drover.service is not active after the request"
        P=$(main_pid)
        sys_run journalctl --sync 2>/dev/null || true
        t0=$(event_mono "$P" spawn first) ||
                fail "attempt $attempt: no DROVER_EVENT=spawn journal entry of supervisor $P"
        # The check that ends it: about 4 s after t0 (within a few ms; the
        # spawn entry follows the arming of the timer).  Start 3 ms later, so
        # that no connection reaches a worker before the check and keeps the
        # instance alive.
        out=$SYS_TMPDIR/attempt$attempt
        rc=0
        python3 "$HERE/connect-at.py" "$PORT" "$((t0 + 4000000 + 2500))" --start-ms 0.5 --step-ms 0.5 \
                --count 60 >"$out" || rc=$?
        [[ $rc == 0 ]] || fail "attempt $attempt: connect-at.py failed (exit status $rc)"
        sys_run journalctl --sync 2>/dev/null || true
        E=$(event_mono "$P" idle-exit last) || E=""
        X=$(event_mono "$P" exit last) || X=""
        if [[ -n $E && -n $X ]]; then
                phases=$(awk -v E="$E" -v X="$X" '{ p = ($1 < E) ? "before the check" : ($1 <= X) ? \
                        "while drover stopped" : "after drover exited"; n[p]++ }
                        END { for (k in n) { printf "%s%d %s", sep, n[k], k; sep = ", " } }' "$out")
                drain=$(drain_summary "$E" "$X")
                log "attempt $attempt: supervisor $P journaled its idle exit at +$(((E - t0) / 1000)) ms" \
                        "and exited $(((X - E) / 1000)) ms later; connections sent: $phases;" \
                        "its workers journaled: ${drain:-nothing}"
                sys_contains "$phases" "while drover stopped" && covered=$((covered + 1))
        else
                log "attempt $attempt: supervisor $P did not exit at the check (a connection came first)"
        fi
        bad=$(grep -v -E '^[0-9]+ 200$' "$out" || true)
        [[ -z $bad ]] || fail "attempt $attempt: $(grep -c . <<<"$bad") of $(grep -c . "$out") connections" \
                "opened during the idle exit of supervisor $P (idle-exit entry at $E us, exit at $X us)" \
                "were not answered 200 (monotonic send time in us, result):"$'\n'"$(cat "$out")"
        ok "attempt $attempt: all $(grep -c . "$out") connections answered 200"
done
((covered > 0)) || log "note: in no attempt did a connection arrive while drover was stopping"
assert_eq "NRestarts of drover.service" "$(sys_show drover.service NRestarts)" 0

# --- the last instance exits too; nothing failed ------------------------------------------------------
assert_idle_exited "last idle exit"
journal=$(sys_run journalctl -u drover.service -o cat --no-pager)
failed=$(grep -E 'Failed with result|Main process exited, code=(killed|dumped)|status=[1-9]' <<<"$journal") || true
[[ -z $failed ]] || fail "systemd logged failures of drover.service:"$'\n'"$failed"
ok "systemd logged no failure of drover.service"

# --- stop everything ----------------------------------------------------------------------------------
sys_run timeout 30 systemctl stop drover.socket drover.service ||
        fail "systemctl stop drover.socket drover.service failed"
assert_eq "drover.socket state at the end" "$(unit_state drover.socket)" inactive
procs=$(sys_run pgrep -a '^drover') || true
[[ -z $procs ]] || fail "drover processes left at the end:"$'\n'"$procs"
ok "no drover process left"
