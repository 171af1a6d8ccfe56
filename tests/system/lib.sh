# shellcheck shell=bash
#
# lib.sh - helpers for drover system tests.
#
# A system test boots a throw-away systemd in a container (systemd-nspawn,
# see doc "A real systemd for tests" in DESIGN.md), installs the build tree
# into it with `meson install` and drives drover through systemctl, curl and
# journalctl.  Usage:
#
#     set -euo pipefail
#     . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#     sys_require                   # exit 77 (skip) unless root + systemd-nspawn
#     sys_port_free 8080            # the container shares the host network
#     sys_boot my-test              # boot; EXIT trap powers it off again
#     sys_install                   # meson install + daemon-reload inside
#     sys_run systemctl start drover.socket
#     sys_wait_for sys_run systemctl is-active --quiet drover.service ||
#             fail "drover.service did not start"
#
# Environment (set by tests/system/meson.build; defaults for manual runs):
#   DROVER_SRC_ROOT         source tree      (default: ../.. from this file)
#   DROVER_BUILD_ROOT       meson build dir  (default: $DROVER_SRC_ROOT/build)
#   DROVER_BIN              built executable (default: $DROVER_BUILD_ROOT/drover)
#   DROVER_REQUIRE_SYSTEM=1 turn "skip" (exit 77) into a failure (exit 1)
#   SYS_BOOT_TIMEOUT        seconds to wait for the container's systemd (30)
#   SYS_WAIT_TIMEOUT        default bound of sys_wait_for in seconds (10)
#   SYS_POWEROFF_TIMEOUT    seconds to wait for a clean poweroff (15)
#   SYS_BOOT_UNIT           unit the container boots into (basic.target)
#   SYS_KEEP_TMP=1          keep the temporary directory (console log)
#
# Rules for test scripts: call sys_boot and fail from the main shell (not
# from inside $(...) or a pipeline); leave the EXIT/INT/TERM/HUP traps to
# this library; do not pipe command output into `grep -q` (with pipefail
# the writer's SIGPIPE turns a match into a failure), capture the output
# and use sys_contains / assert_contains instead.
#
# Teardown: on exit the container is powered off (SIGTERM to nspawn, at most
# SYS_POWEROFF_TIMEOUT s), then its PID 1 is SIGKILLed if needed (that ends
# its whole pid namespace; SIGKILL on nspawn alone would orphan it).  On
# SIGINT/SIGTERM (meson's timeout) it is killed at once.  nspawn runs in its
# own session with a parent-death signal, so even a SIGKILLed test shell
# leaves no container behind, and in a private cgroup whose leftovers the
# next run removes.  The container's journal and installed files live in
# tmpfs and vanish with it; only meson-logs/install-log.txt is written to
# the (bind-mounted) build directory.

set -euo pipefail

_sys_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${DROVER_SRC_ROOT:=$(cd "$_sys_lib_dir/../.." && pwd)}"
: "${DROVER_BUILD_ROOT:=$DROVER_SRC_ROOT/build}"
: "${DROVER_BIN:=$DROVER_BUILD_ROOT/drover}"
: "${SYS_BOOT_TIMEOUT:=30}"
: "${SYS_WAIT_TIMEOUT:=10}"
: "${SYS_POWEROFF_TIMEOUT:=15}"
: "${SYS_BOOT_UNIT:=basic.target}"
export DROVER_SRC_ROOT DROVER_BUILD_ROOT DROVER_BIN

SYS_MACHINE=""          # container (machine) name
SYS_NSPAWN_PID=""       # systemd-nspawn process (a child of this shell)
SYS_PID1=""             # the container's PID 1 (host pid), exported
SYS_PID1_START=""       # its start time, to never signal a recycled pid
SYS_TMPDIR=""           # mktemp -d; removed on exit
SYS_CGROUPS=()          # cgroups created for the container; removed on exit
SYS_DIAG_UNITS=()       # units whose status fail() prints
SYS_FAST=0              # set on SIGINT/SIGTERM: kill rather than power off
SYS_TEST_NAME=$(basename "$0" .sh)
_sys_main_pid=$$
_sys_failed=0
_sys_pid1_killed=0
_sys_last_err=""
trap '_sys_last_err="line $LINENO: $BASH_COMMAND"' ERR
_sys_t0_us=${EPOCHREALTIME/[!0-9]/}

# --- output ------------------------------------------------------------------

_sys_elapsed() {
        local now=${EPOCHREALTIME/[!0-9]/}
        local ms=$(((${now:-0} - _sys_t0_us) / 1000))
        printf '%d.%02d' "$((ms / 1000))" "$((ms % 1000 / 10))"
}
log() { printf '# [%6ss] %s\n' "$(_sys_elapsed)" "$*"; }
ok() { printf 'ok: %s\n' "$*"; }

# fail MSG...: print MSG, dump diagnostics from the container, exit 1.
fail() {
        _sys_failed=1
        printf 'FAIL: %s\n' "$*" >&2
        _sys_diagnostics >&2 || true
        exit 1
}

_sys_diagnostics() {
        if ! _sys_pid1_alive; then
                _sys_console_tail
                return 0
        fi
        local u
        for u in "${SYS_DIAG_UNITS[@]}"; do
                printf '\n----- systemctl status %s (container) -----\n' "$u"
                sys_run systemctl status --no-pager --full "$u" 2>&1 || true
        done
        printf '\n----- systemctl --failed (container) -----\n'
        sys_run systemctl --failed --no-pager 2>&1 || true
        printf '\n----- journalctl -n 200 (container) -----\n'
        sys_run journalctl --no-pager -n 200 2>&1 || true
        printf -- '----- end of journal -----\n'
}

_sys_console_tail() {
        if [[ -n $SYS_TMPDIR && -s $SYS_TMPDIR/console.log ]]; then
                printf '\n----- systemd-nspawn console (last 60 lines) -----\n'
                tail -n 60 "$SYS_TMPDIR/console.log" || true
                printf -- '----- end of console -----\n'
        fi
}

# --- requirements -------------------------------------------------------------

_sys_skip() {
        if [[ ${DROVER_REQUIRE_SYSTEM:-0} == 1 ]]; then
                printf 'FAIL: %s (DROVER_REQUIRE_SYSTEM=1, not skipping)\n' "$*" >&2
                exit 1
        fi
        printf 'SKIP: %s\n' "$*"
        exit 77
}

# sys_require: skip (exit 77) unless this machine can run system tests.
sys_require() {
        [[ $(id -u) -eq 0 ]] || _sys_skip "system tests need root"
        command -v systemd-nspawn >/dev/null ||
                _sys_skip "systemd-nspawn not found (package systemd-container)"
        [[ -x /usr/lib/systemd/systemd ]] || _sys_skip "/usr/lib/systemd/systemd not found"
        local t
        for t in nsenter setsid setpriv pgrep pkill ss curl meson; do
                command -v "$t" >/dev/null || _sys_skip "$t not found"
        done
        # Misconfiguration is a failure, not a skip.
        [[ -f $DROVER_BUILD_ROOT/meson-info/meson-info.json ]] ||
                fail "DROVER_BUILD_ROOT=$DROVER_BUILD_ROOT is not a meson build directory"
        [[ -x $DROVER_BIN ]] || fail "DROVER_BIN=$DROVER_BIN is not an executable (not built?)"
        _sys_cleanup_stale
}

# sys_port_free PORT: fail unless nothing listens on TCP PORT.  The container
# shares the host's network, so a unit listening there would collide.
sys_port_free() {
        local port=$1 out
        out=$(ss -Hltn "sport = :$port") || fail "ss -ltn failed"
        [[ -z $out ]] || fail "TCP port $port is already in use on this host (the test" \
                "container shares the host network and drover.socket listens on $port):" \
                $'\n'"$out"
        ok "nothing listens on TCP port $port on the host"
}

# sys_pick_port: print a TCP port that is free on the host right now. Tests move
# drover.socket there with sys_listen_on instead of using 8080, which a drover
# started by the README's quick start may hold.
sys_pick_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# sys_listen_on PORT [UNIT]: a drop-in, as an operator writes one, that moves the
# socket unit (default drover.socket) to 127.0.0.1:PORT; then daemon-reload.
sys_listen_on() {
        local port=$1 unit=${2:-drover.socket}
        sys_run mkdir -p "/etc/systemd/system/$unit.d"
        printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$port" |
                sys_run tee "/etc/systemd/system/$unit.d/port.conf" >/dev/null
        sys_run systemctl daemon-reload
        ok "$unit moved to 127.0.0.1:$port by a drop-in"
}

# sys_dropin UNIT NAME: install stdin as the drop-in NAME.conf of UNIT in the
# container (/etc/systemd/system/UNIT.d/NAME.conf), then daemon-reload.
sys_dropin() {
        local unit=$1 name=$2
        sys_run mkdir -p "/etc/systemd/system/$unit.d" || fail "cannot create the drop-in directory of $unit"
        sys_run tee "/etc/systemd/system/$unit.d/$name.conf" >/dev/null ||
                fail "cannot write the drop-in $unit.d/$name.conf"
        sys_run systemctl daemon-reload || fail "systemctl daemon-reload failed"
}

# sys_show UNIT PROPERTY: print the value of a unit property in the container.
sys_show() { sys_run systemctl show -p "$2" --value "$1"; }

# sys_exec_path UNIT: print the binary of UNIT's (first) ExecStart=.
sys_exec_path() {
        local exec_start
        exec_start=$(sys_show "$1" ExecStart) || return 1
        [[ $exec_start =~ path=([^ \;]+) ]] || return 1
        printf '%s\n' "${BASH_REMATCH[1]}"
}

# sys_journal_count UNIT FIELD VALUE: print how many journal entries of UNIT
# carry FIELD=VALUE (after a journalctl --sync).
sys_journal_count() {
        local j
        sys_run journalctl --sync 2>/dev/null || true
        j=$(sys_run journalctl -u "$1" -o json --no-pager) || return 1
        grep -c -F "\"$2\":\"$3\"" <<<"$j" || true
}

# --- background jobs on the host ------------------------------------------------

SYS_BG_PIDS=()          # background jobs started with sys_bg, not yet waited for
SYS_BG_PID=""           # the last one

# sys_bg CMD...: run CMD (a command or a shell function) in the background
# on the host; its pid is left in SYS_BG_PID.  Collect its exit status with
# sys_bg_wait; a job still running when the test exits is killed with its
# descendants (before the container is torn down).  Call it from the main
# shell, and do not call fail from inside the job.
sys_bg() {
        "$@" &
        SYS_BG_PID=$!
        SYS_BG_PIDS+=("$SYS_BG_PID")
}

# sys_bg_wait PID: wait for a job started with sys_bg; return its exit status.
sys_bg_wait() {
        local pid=$1 rc=0 p
        local -a rest=()
        wait "$pid" || rc=$?
        for p in "${SYS_BG_PIDS[@]}"; do
                [[ $p == "$pid" ]] || rest+=("$p")
        done
        SYS_BG_PIDS=("${rest[@]}")
        return "$rc"
}

# sys_curl_stream URL OUT STOP [INTERVAL] [MAX]: until the file STOP exists
# (or MAX requests were started; default 1000), start a GET of URL every
# INTERVAL seconds (default 0.1) without waiting for the ones before; each
# appends "HTTP_CODE CURL_EXIT_STATUS [CURL ERROR]" to the file OUT when it
# is done.  Returns once all of them are done.  Run it with sys_bg; check OUT
# with sys_curl_check.
sys_curl_stream() {
        local url=$1 out=$2 stop=$3 interval=${4:-0.1} max=${5:-1000} n=0
        local -a pids=()
        while [[ ! -e $stop ]] && ((n < max)); do
                sys_curl_one "$url" "$out" &
                pids+=("$!")
                n=$((n + 1))
                sleep "$interval"
        done
        ((${#pids[@]} == 0)) || wait "${pids[@]}" || true
}

# sys_curl_one URL OUT: GET URL; append "HTTP_CODE CURL_EXIT_STATUS [CURL ERROR]"
# to the file OUT.
sys_curl_one() {
        local code rc=0 err errf="$2.err.$BASHPID"
        code=$(curl -sS -o /dev/null --max-time 60 -w '%{http_code}' "$1" 2>"$errf") || rc=$?
        err=$(tr '\n' ' ' <"$errf") || true
        rm -f -- "$errf"
        printf '%s %s%s\n' "${code:-000}" "$rc" "${err:+ ${err% }}" >>"$2"
}

# sys_curl_check WHAT OUT [MIN]: fail unless the file OUT of sys_curl_stream
# holds at least MIN (default 1) results, all of them "200 0".
sys_curl_check() {
        local what=$1 out=$2 min=${3:-1} n bad
        [[ -f $out ]] || fail "$what: no request was made"
        n=$(grep -c . "$out" || true)
        ((n >= min)) || fail "$what: only $n requests were made (expected at least $min)"
        bad=$(grep -v -x '200 0' "$out" || true)
        [[ -z $bad ]] || fail "$what: $(grep -c . <<<"$bad") of $n requests failed (HTTP status," \
                "curl exit status, error):"$'\n'"$(sort "$out" | uniq -c)"
        ok "$what: all $n requests answered 200"
}

# _sys_tree PID: print PID and its descendants (parents first).
_sys_tree() {
        local c
        printf '%s\n' "$1"
        for c in $(pgrep -P "$1" 2>/dev/null); do
                _sys_tree "$c"
        done
}

# Kill the background jobs still running, each with its descendants.
_sys_kill_bg() {
        local pid p
        for pid in "${SYS_BG_PIDS[@]}"; do
                kill -0 "$pid" 2>/dev/null || continue
                log "killing background job $pid"
                for p in $(_sys_tree "$pid"); do
                        kill -TERM "$p" 2>/dev/null || true
                done
                wait "$pid" 2>/dev/null || true
        done
        SYS_BG_PIDS=()
}

# --- small helpers ------------------------------------------------------------

# sys_contains HAYSTACK NEEDLE: true if NEEDLE is a substring of HAYSTACK.
sys_contains() { [[ $1 == *"$2"* ]]; }

# assert_contains WHAT HAYSTACK NEEDLE
assert_contains() {
        sys_contains "$2" "$3" || fail "$1: expected to contain '$3', got:"$'\n'"$2"
        ok "$1 contains '$3'"
}

# assert_eq WHAT ACTUAL EXPECTED
assert_eq() {
        [[ $2 == "$3" ]] || fail "$1: expected '$3', got '$2'"
        ok "$1 is '$3'"
}

# sys_wait_for [-t SECONDS] CMD...: run CMD every 0.2 s until it succeeds;
# returns 1 after SECONDS (default $SYS_WAIT_TIMEOUT).  CMD runs on the
# host; use `sys_wait_for sys_run ...` for commands in the container.
sys_wait_for() {
        local timeout=$SYS_WAIT_TIMEOUT
        if [[ ${1:-} == -t ]]; then
                timeout=$2
                shift 2
        fi
        local deadline=$((SECONDS + timeout))
        while true; do
                if "$@" >/dev/null 2>&1; then
                        return 0
                fi
                ((SECONDS < deadline)) || break
                sleep 0.2
        done
        # One last time with the output visible, for the log.
        "$@" || return 1
}

_sys_starttime() {
        local stat fields
        { stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
        read -ra fields <<<"${stat##*) }"
        printf '%s\n' "${fields[19]}"
}

_sys_pid1_alive() {
        [[ -n $SYS_PID1 && -n $SYS_PID1_START ]] || return 1
        [[ $(_sys_starttime "$SYS_PID1" 2>/dev/null) == "$SYS_PID1_START" ]]
}

# --- container ----------------------------------------------------------------

# sys_run CMD...: run CMD inside the container (all its namespaces).
sys_run() {
        [[ -n $SYS_PID1 ]] || fail "sys_run: no container booted"
        nsenter -t "$SYS_PID1" -a "$@"
}

# _sys_cgroup_root HIERARCHY: mount point of the name=systemd (v1) or the
# unified (v2, HIERARCHY empty) cgroup hierarchy; fails for the others.
_sys_cgroup_root() {
        case $1 in
        name=systemd) [[ -d /sys/fs/cgroup/systemd ]] && echo /sys/fs/cgroup/systemd ;;
        "")
                if [[ $(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]]; then
                        echo /sys/fs/cgroup/unified
                elif [[ $(stat -fc %T /sys/fs/cgroup 2>/dev/null) == cgroup2fs ]]; then
                        echo /sys/fs/cgroup
                else
                        return 1
                fi
                ;;
        *) return 1 ;;
        esac
}

# Create a cgroup below our own in the name=systemd (v1) and unified (v2)
# hierarchies.  systemd-nspawn --keep-unit puts its "payload" and
# "supervisor" cgroups below the cgroup it starts in; a private one keeps
# parallel runs apart, lets teardown kill anything left over and remove the
# cgroups nspawn creates.  Best effort: without it nspawn still works.
_sys_cgroup_prepare() {
        local line hier path root dir
        while IFS= read -r line; do
                hier=${line#*:}
                hier=${hier%%:*}
                path=${line#*:*:}
                root=$(_sys_cgroup_root "$hier") || continue
                dir=$root${path%/}/drover-system-$$
                if mkdir "$dir" 2>/dev/null; then
                        SYS_CGROUPS+=("$dir")
                else
                        log "note: cannot create cgroup $dir; running without it"
                fi
        done </proc/self/cgroup
}

# _sys_remove_stale PATH...: remove cgroups and temporary directories that a
# run killed with SIGKILL left behind (named drover-system-PID*, PID dead).
# Its container is normally gone (nspawn gets SIGTERM when its parent
# dies); should nspawn have been SIGKILLed too, its orphaned container is
# still in the cgroup and gets killed.
_sys_remove_stale() {
        local path pid
        for path; do
                [[ -d $path ]] || continue
                pid=${path##*/drover-system-}
                pid=${pid%%.*}
                [[ -n $pid && $pid != *[!0-9]* ]] || continue
                ! kill -0 "$pid" 2>/dev/null || continue
                if [[ $path == /sys/fs/cgroup/* ]]; then
                        _sys_cgroup_remove "$path"
                else
                        rm -rf -- "$path"
                fi
                [[ -d $path ]] || log "removed stale $path"
        done
}

# Runs in the subshell that becomes systemd-nspawn.
_sys_cgroup_join() {
        local dir
        for dir in "${SYS_CGROUPS[@]}"; do
                printf '%s\n' "$BASHPID" >"$dir/cgroup.procs" 2>/dev/null ||
                        printf 'note: cannot join %s\n' "$dir" >&2
        done
}

# _sys_cgroup_remove DIR: kill what is left in one of our cgroups (only a
# test container can be in there), then remove it and its children.
_sys_cgroup_remove() {
        local dir=$1 pid
        for _ in 1 2 3 4 5 6 7 8 9 10; do
                while read -r pid; do
                        [[ -n $pid ]] || continue
                        log "killing leftover process $pid in $dir"
                        kill -KILL "$pid" 2>/dev/null || true
                done < <(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null)
                find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
                [[ -d $dir ]] || return 0
                sleep 0.2
        done
        log "warning: could not remove cgroup $dir"
}

_sys_cgroup_cleanup() {
        local dir
        for dir in "${SYS_CGROUPS[@]}"; do
                [[ ! -d $dir ]] || _sys_cgroup_remove "$dir"
        done
        SYS_CGROUPS=()
}

# Remove what runs killed with SIGKILL left behind, before anything else
# (an orphaned container could still hold the test port).
_sys_cleanup_stale() {
        local line hier path root stale
        while IFS= read -r line; do
                hier=${line#*:}
                hier=${hier%%:*}
                path=${line#*:*:}
                root=$(_sys_cgroup_root "$hier") || continue
                _sys_remove_stale "$root${path%/}"/drover-system-*
        done </proc/self/cgroup
        _sys_remove_stale "${TMPDIR:-/tmp}"/drover-system-*
        for stale in /run/systemd/nspawn/propagate/drover-*-[0-9]*; do
                if [[ -d $stale ]] && ! kill -0 "${stale##*-}" 2>/dev/null &&
                        rmdir "$stale" 2>/dev/null; then
                        log "removed stale $stale"
                fi
        done
}

# sys_boot NAME: boot a throw-away container.  The root is a tmpfs, /usr,
# /etc and /var are writable overlays over the host's (writes vanish with
# the container), the source and build trees are bound at their own paths.
# An EXIT trap powers it off.  Exports SYS_PID1.
sys_boot() {
        local name=${1:?sys_boot NAME}
        [[ $BASHPID == "$_sys_main_pid" ]] || fail "sys_boot must run in the main shell"
        [[ -z $SYS_NSPAWN_PID ]] || fail "sys_boot: a container is already running"

        SYS_MACHINE=$(printf 'drover-%s-%s' "$name" "$$" | tr -c 'a-zA-Z0-9-' '-' | cut -c1-60)
        SYS_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/drover-system-$$.XXXXXX")
        trap _sys_on_exit EXIT
        trap '_sys_on_signal 130' INT
        trap '_sys_on_signal 143' TERM
        trap '_sys_on_signal 129' HUP

        local src build
        src=$(realpath "$DROVER_SRC_ROOT")
        build=$(realpath "$DROVER_BUILD_ROOT")
        local -a args=(
                --quiet --register=no --keep-unit -D / -M "$SYS_MACHINE"
                --volatile=yes
                --overlay=/usr::/usr --overlay=/etc::/etc --overlay=/var::/var
                "--bind=$src"
        )
        [[ $build == "$src" || $build == "$src"/* ]] || args+=("--bind=$build")
        # basic.target: the services the host has enabled (databases, sshd,
        # web servers...) would otherwise start too, on the shared network.
        args+=(-b --console=pipe -- "--unit=$SYS_BOOT_UNIT")

        _sys_cgroup_prepare
        log "booting container $SYS_MACHINE (console log: $SYS_TMPDIR/console.log)"
        # setsid: out of the test's process group, so a test runner that
        # SIGKILLs the group does not kill nspawn and orphan the container;
        # --pdeathsig: if this shell dies without its EXIT trap, nspawn gets
        # SIGTERM and powers the container off by itself.
        (
                _sys_cgroup_join
                exec setsid setpriv --pdeathsig TERM -- systemd-nspawn "${args[@]}"
        ) </dev/null >"$SYS_TMPDIR/console.log" 2>&1 &
        SYS_NSPAWN_PID=$!

        local deadline=$((SECONDS + SYS_BOOT_TIMEOUT)) pid
        while [[ -z $SYS_PID1 ]]; do
                kill -0 "$SYS_NSPAWN_PID" 2>/dev/null ||
                        fail "systemd-nspawn exited during boot"
                ((SECONDS < deadline)) || fail "container PID 1 did not appear in ${SYS_BOOT_TIMEOUT}s"
                pid=$(pgrep -P "$SYS_NSPAWN_PID" -x systemd || true)
                if [[ -n $pid && $pid != *[!0-9]* ]]; then
                        SYS_PID1_START=$(_sys_starttime "$pid") || SYS_PID1_START=""
                        [[ -n $SYS_PID1_START ]] && SYS_PID1=$pid
                fi
                [[ -n $SYS_PID1 ]] || sleep 0.1
        done
        export SYS_PID1

        local state=""
        while true; do
                state=$(sys_run systemctl is-system-running 2>/dev/null) || true
                case $state in
                running | degraded) break ;;
                esac
                _sys_pid1_alive || fail "container PID 1 died during boot"
                ((SECONDS < deadline)) ||
                        fail "container did not finish booting in ${SYS_BOOT_TIMEOUT}s (state: '${state}')"
                sleep 0.2
        done
        log "container $SYS_MACHINE is up (PID 1 = host pid $SYS_PID1, state $state)"
        if [[ $state == degraded ]]; then
                log "failed units in the container (ignored): $(sys_run systemctl --failed --plain \
                        --no-legend --no-pager 2>/dev/null | awk '{printf "%s ", $1}')"
        fi
}

# sys_install: install the build tree into the container, reload systemd.
sys_install() {
        log "meson install -C $DROVER_BUILD_ROOT (in the container)"
        sys_run env -u DESTDIR meson install -C "$DROVER_BUILD_ROOT" --no-rebuild --quiet ||
                fail "meson install failed in the container"
        sys_run systemctl daemon-reload || fail "systemctl daemon-reload failed"
        ok "installed the build tree into the container"
}

# Wait until $SYS_NSPAWN_PID exits, at most $1 seconds; stop early if
# SYS_FAST gets set (signal during a graceful poweroff).
_sys_wait_nspawn() {
        local deadline=$((SECONDS + $1)) fast_at_start=$SYS_FAST
        while kill -0 "$SYS_NSPAWN_PID" 2>/dev/null; do
                ((SECONDS < deadline)) || return 1
                ((SYS_FAST == fast_at_start)) || return 1
                sleep 0.1
        done
        return 0
}

# SIGKILL the container's PID 1, which tears down its whole pid namespace
# (killing only nspawn would orphan it), or nspawn's children while PID 1
# is not known yet.
_sys_kill_container() {
        if _sys_pid1_alive; then
                ((_sys_pid1_killed)) || log "killing the container's PID 1 ($SYS_PID1)"
                _sys_pid1_killed=1
                kill -KILL "$SYS_PID1" 2>/dev/null || true
        elif [[ -n $SYS_NSPAWN_PID ]] && kill -0 "$SYS_NSPAWN_PID" 2>/dev/null; then
                pkill -KILL -P "$SYS_NSPAWN_PID" 2>/dev/null || true
        fi
}

_sys_teardown() {
        [[ -n $SYS_NSPAWN_PID ]] || return 0
        if ((!SYS_FAST)) && kill -0 "$SYS_NSPAWN_PID" 2>/dev/null; then
                log "powering off container $SYS_MACHINE"
                # nspawn turns SIGTERM into a poweroff request to PID 1.
                kill -TERM "$SYS_NSPAWN_PID" 2>/dev/null || true
                _sys_wait_nspawn "$SYS_POWEROFF_TIMEOUT" ||
                        log "no clean poweroff; killing the container"
        fi
        # After a signal (the test runner may SIGKILL us soon) or a failed
        # poweroff: kill.  A process nsenter'ed into the container whose
        # nsenter died is reparented to the host's init, and the container's
        # pid namespace is gone only once that init has reaped it.
        local deadline=$((SECONDS + 5))
        while kill -0 "$SYS_NSPAWN_PID" 2>/dev/null && ((SECONDS < deadline)); do
                _sys_kill_container
                sleep 0.1
        done
        if kill -0 "$SYS_NSPAWN_PID" 2>/dev/null; then
                log "systemd-nspawn ($SYS_NSPAWN_PID) still running; SIGKILL"
                kill -KILL "$SYS_NSPAWN_PID" 2>/dev/null || true
        fi
        wait "$SYS_NSPAWN_PID" 2>/dev/null || true
        # Should PID 1 have survived nspawn, do not leave it behind.
        _sys_kill_container
        SYS_NSPAWN_PID=""
        # A killed nspawn leaves its (empty) mount propagation directory.
        rmdir "/run/systemd/nspawn/propagate/$SYS_MACHINE" 2>/dev/null || true
}

_sys_on_signal() {
        SYS_FAST=1
        exit "$1"
}

_sys_on_exit() {
        local rc=$?
        [[ $BASHPID == "$_sys_main_pid" ]] || return 0
        set +e
        trap - ERR
        trap 'SYS_FAST=1' INT TERM HUP
        if ((rc != 0 && rc != 77 && !_sys_failed && !SYS_FAST)); then
                printf 'FAIL: unexpected exit status %s (%s)\n' "$rc" "${_sys_last_err:-?}" >&2
                _sys_diagnostics >&2
        fi
        _sys_kill_bg
        if ((SYS_FAST)) && [[ ${SYS_KEEP_TMP:-0} != 1 && -n $SYS_TMPDIR ]]; then
                # Interrupted: we may not get to the end of this function.
                rm -rf -- "$SYS_TMPDIR"
                SYS_TMPDIR=""
        fi
        _sys_teardown
        _sys_cgroup_cleanup
        if [[ -n $SYS_TMPDIR ]]; then
                if [[ ${SYS_KEEP_TMP:-0} == 1 ]]; then
                        log "kept $SYS_TMPDIR"
                else
                        rm -rf -- "$SYS_TMPDIR"
                fi
        fi
        if ((rc == 0)); then
                log "$SYS_TEST_NAME: PASS ($(_sys_elapsed)s)"
        else
                log "$SYS_TEST_NAME: exit status $rc ($(_sys_elapsed)s)"
        fi
        exit "$rc"
}

# ---- drover.service, as the tests look at it

main_pid() { sys_show drover.service MainPID; }
unit_state() { sys_run systemctl is-active "$1" 2>/dev/null || true; }
state_is() { [[ $(unit_state "$1") == "$2" ]]; }

# `systemctl status drover` says every worker is ready ("Ready: N/N workers").
status_ready() {
        local s
        s=$(sys_run systemctl status --no-pager --full drover.service 2>/dev/null) || return 1
        [[ $s =~ Ready:\ ([0-9]+)/([0-9]+)\ workers ]] && [[ ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]]
}

# sys_drover_args NAME ARGS...: a drop-in NAME that runs drover.service's binary with ARGS.
sys_drover_args() {
        local name=$1 path
        shift
        path=$(sys_exec_path drover.service) || fail "cannot find the ExecStart binary of drover.service"
        printf '[Service]\nExecStart=\nExecStart=%s %s\n' "$path" "$*" | sys_dropin drover.service "$name"
        assert_contains "ExecStart of drover.service (drop-in)" "$(sys_show drover.service ExecStart)" "$*"
}
