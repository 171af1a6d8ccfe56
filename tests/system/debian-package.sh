#!/usr/bin/env bash
#
# debian-package.sh - the Debian packages, built from the source tree and
# used as an operator uses them, under a real systemd.
#
# Builds drover and drover-dev as a clean clone would
# (`ln -s packaging/debian debian && dpkg-buildpackage -us -uc -b`, on a
# copy of the files git knows of, into $DROVER_BUILD_ROOT/debian-package),
# runs lintian on the .changes (no error allowed), then in a throw-away
# container whose /usr, /etc and /var are overlays (dpkg writes there, the
# host is untouched):
#   - `dpkg -i` creates the user drover, enables and starts drover.socket
#     (as Debian does; a drop-in written beforehand moves it to a free port)
#     and starts no drover process;
#   - `systemctl enable --now drover.socket`, curl: the default site from
#     /usr/share/drover/site, served by drover.service as user drover;
#   - `systemctl reload drover` replaces the workers; `journalctl -u drover`
#     has drover's entries, and after `journalctl --update-catalog`
#     `journalctl -x` explains them from the packaged catalog;
#   - the man pages, the example modules and drover-dev's pkg-config file are
#     where they belong;
#   - installing the package again (an upgrade) reloads the running pool
#     instead of restarting it: same MainPID, new workers, no refused request;
#   - `systemctl disable --now drover.socket`, `apt-get purge drover-dev
#     drover`: no drover process, no unit, nothing listening, no
#     sockets.target.wants link left.
#
# Skips (exit 77) unless run as root on a machine with systemd-nspawn and
# dpkg-buildpackage; DROVER_REQUIRE_SYSTEM=1 turns the skip into a failure.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$(sys_pick_port)
URL=http://127.0.0.1:$PORT/
OUT=$DROVER_BUILD_ROOT/debian-package

unit_state() { sys_run systemctl is-active "$1" 2>/dev/null || true; }
main_pid() { sys_show drover.service MainPID; }
port_listening() { [[ -n $(ss -Hltn "sport = :$PORT") ]]; }
port_closed() { ! port_listening; }
worker_pids() { sys_run pgrep -P "$(main_pid)" -f -- '--worker=' | sort || true; }

status_ready() {
        local s
        s=$(sys_run systemctl status --no-pager --full drover.service 2>/dev/null) || return 1
        [[ $s =~ Ready:\ ([0-9]+)/([0-9]+)\ workers ]] && [[ ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]]
}

get_root() {
        local out code body
        out=$(curl -sS --max-time 20 -w '\n%{http_code}' "$URL") || fail "$1: GET $URL failed (curl exit status $?)"
        code=${out##*$'\n'}
        body=${out%$'\n'*}
        assert_eq "$1: HTTP status of GET /" "$code" 200
        sys_contains "${body,,}" drover || fail "$1: GET / is not the default site:"$'\n'"${body:0:500}"
        ok "$1: GET / is the default site"
}

sys_require
for t in dpkg-buildpackage dh dpkg-checkbuilddeps lintian git; do
        command -v "$t" >/dev/null || _sys_skip "$t not found (tools/install-deps installs it)"
done
(cd "$DROVER_SRC_ROOT/packaging" && dpkg-checkbuilddeps debian/control) ||
        _sys_skip "the build dependencies of packaging/debian/control are not installed (apt-get build-dep ./)"

# --- build, as from a clean clone -------------------------------------------------------------------
log "building the packages (log: $OUT/build.log)"
rm -rf -- "$OUT"
mkdir -p "$OUT/src"
git -C "$DROVER_SRC_ROOT" ls-files -z --cached --others --exclude-standard |
        (cd "$DROVER_SRC_ROOT" && xargs -0 tar -cf - --no-recursion --ignore-failed-read --) |
        tar -xf - -C "$OUT/src"
[[ -f $OUT/src/packaging/debian/control ]] || fail "the copy of the source tree has no packaging/debian"
ln -s packaging/debian "$OUT/src/debian"
(cd "$OUT/src" && dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1 ||
        fail "dpkg-buildpackage failed:"$'\n'"$(tail -n 40 "$OUT/build.log")"
deb=$(echo "$OUT"/drover_*.deb) dev=$(echo "$OUT"/drover-dev_*.deb) changes=$(echo "$OUT"/drover_*.changes)
[[ -f $deb && -f $dev && -f $changes ]] || fail "dpkg-buildpackage made no drover and drover-dev packages:"$'\n'"$(ls "$OUT")"
ok "built $(basename "$deb") and $(basename "$dev")"
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/drover ./usr/libexec/drover/drover-worker /drover.socket /drover.service /drover@.socket /drover@.service \
        ./usr/lib/systemd/catalog/drover.catalog ./usr/lib/sysusers.d/drover.conf ./usr/share/drover/site/index.html \
        /drover/modules/hello.so /drover/modules/echo.so /drover/modules/sleep.so ./usr/share/man/man8/drover.8.gz \
        ./usr/share/man/man5/drover.conf.5.gz; do
        assert_contains "contents of $(basename "$deb")" "$contents" "$f"
done
contents=$(dpkg-deb -c "$dev")
for f in ./usr/include/drover/handler.h /pkgconfig/drover-handler.pc ./usr/share/man/man3/drover-handler.3.gz; do
        assert_contains "contents of $(basename "$dev")" "$contents" "$f"
done
lint=$(lintian --tag-display-limit 0 "$changes" 2>&1) || true
printf '%s\n' "$lint" | sed 's/^/#   lintian: /'
errors=$(grep '^E: ' <<<"$lint") || true
[[ -z $errors ]] || fail "lintian reports errors:"$'\n'"$errors"
ok "lintian: no errors ($(grep -c '^W: ' <<<"$lint" || true) warnings)"

# --- install -------------------------------------------------------------------------------------------
SYS_DIAG_UNITS=(drover.socket drover.service)
sys_boot debian-package
# A policy-rc.d of the host (one that denies starts while packages are installed) would keep the
# postinst from starting drover.socket; the container's /usr is an overlay, so drop it there.
sys_run rm -f /usr/sbin/policy-rc.d
# A drover installed on the host from source (tools/quickstart: /usr/local) would shadow the package's units
# and binary in the container: this is a machine with only the package, so drop that copy from the overlay.
sys_run sh -c 'find /usr/local -depth -name "*drover*" -exec rm -rf {} +; systemctl daemon-reload'
# The operator's drop-in, written before the package exists: the container shares the host's network,
# where the packaged port 8080 may be taken.
sys_listen_on "$PORT"
out=$(sys_run env DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" "$dev" 2>&1) ||
        fail "dpkg -i failed:"$'\n'"$out"
ok "dpkg -i $(basename "$deb") $(basename "$dev")"
pw=$(sys_run getent passwd drover) || fail "dpkg -i did not create the user drover"
ok "the package created the user drover: $pw"
assert_eq "drover.socket after dpkg -i (enabled)" "$(sys_run systemctl is-enabled drover.socket)" enabled
assert_eq "drover.socket after dpkg -i (active)" "$(unit_state drover.socket)" active
assert_eq "drover.service after dpkg -i" "$(unit_state drover.service)" inactive
sys_wait_for -t 5 port_listening || fail "nothing listens on :$PORT after dpkg -i"

# --- what the operator does ------------------------------------------------------------------------------
sys_run systemctl enable --now drover.socket || fail "systemctl enable --now drover.socket failed"
get_root "first request"
sys_wait_for -t 10 status_ready || fail "drover.service did not report all workers ready"
pid=$(main_pid)
assert_eq "drover.service ExecStart binary" "$(sys_exec_path drover.service)" /usr/bin/drover
user=$(sys_run ps -o user= -p "$pid") || true
assert_eq "user of drover.service" "${user// /}" drover
mapfile -t ws < <(worker_pids)
((${#ws[@]} > 0)) || fail "drover.service has no workers"
assert_eq "the workers' executable" "$(sys_run readlink "/proc/${ws[0]}/exe")" /usr/libexec/drover/drover-worker

mapfile -t before < <(worker_pids)
sys_run timeout 60 systemctl reload drover || fail "systemctl reload drover failed"
sys_wait_for -t 20 status_ready || fail "drover.service not ready after the reload"
mapfile -t after < <(worker_pids)
for w in "${before[@]}"; do
        [[ " ${after[*]} " != *" $w "* ]] || fail "worker $w was not replaced by systemctl reload drover"
done
ok "systemctl reload drover replaced the workers (${before[*]} -> ${after[*]})"
get_root "after the reload"

sys_run journalctl --sync 2>/dev/null || true
journal=$(sys_run journalctl -u drover --no-pager) || fail "journalctl -u drover failed"
assert_contains "journalctl -u drover" "$journal" "Ready: "
sys_run journalctl --update-catalog || fail "journalctl --update-catalog failed"
explained=$(sys_run journalctl -x -u drover --no-pager) || fail "journalctl -x -u drover failed"
assert_contains "journalctl -x -u drover" "$explained" "Subject: drover finished reloading"
assert_contains "journalctl -x -u drover" "$explained" "Defined-By: drover"

# --- the other files -------------------------------------------------------------------------------------
for page in drover.8 drover.conf.5 drover-handler.3; do
        name=${page%.*} section=${page##*.}
        path=$(sys_run man -w "$section" "$name") || fail "man -w $section $name: not installed"
        ok "man $section $name: $path"
done
moduledir=$(sys_run pkg-config --variable=moduledir drover-handler) ||
        fail "pkg-config drover-handler (drover-dev) failed"
sys_run test -f "$moduledir/hello.so" || fail "hello.so is not in the moduledir of drover-handler.pc ($moduledir)"
ok "drover-handler.pc: moduledir $moduledir holds hello.so"

# --- upgrade: the pool is reloaded, not restarted --------------------------------------------------------
nrestarts=$(sys_show drover.service NRestarts)
reloads=$(sys_journal_count drover.service DROVER_EVENT reload-done)
mapfile -t before < <(worker_pids)
stop=$SYS_TMPDIR/stop
sys_bg sys_curl_stream "$URL" "$SYS_TMPDIR/upgrade" "$stop" 0.05
out=$(sys_run env DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" "$dev" 2>&1) ||
        fail "dpkg -i (upgrade) failed:"$'\n'"$out"
ok "dpkg -i again (an upgrade)"
sys_wait_for -t 20 status_ready || fail "drover.service not ready after the upgrade"
touch "$stop"
sys_bg_wait "$SYS_BG_PID" || true
sys_curl_check "requests during the upgrade" "$SYS_TMPDIR/upgrade" 5
assert_eq "MainPID after the upgrade" "$(main_pid)" "$pid"
assert_eq "NRestarts after the upgrade" "$(sys_show drover.service NRestarts)" "$nrestarts"
more_reloads() { (($(sys_journal_count drover.service DROVER_EVENT reload-done) > reloads)); }
sys_wait_for -t 10 more_reloads ||
        fail "the upgrade did not reload drover.service (no new DROVER_EVENT=reload-done)"
mapfile -t after < <(worker_pids)
for w in "${before[@]}"; do
        [[ " ${after[*]} " != *" $w "* ]] || fail "worker $w survived the upgrade"
done
ok "the upgrade reloaded the pool: same supervisor, new workers"
assert_eq "drover.socket after the upgrade" "$(unit_state drover.socket)" active

# --- disable and purge ------------------------------------------------------------------------------------
sys_run systemctl disable --now drover.socket || fail "systemctl disable --now drover.socket failed"
assert_eq "drover.socket after disable --now" "$(unit_state drover.socket)" inactive
out=$(sys_run env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q drover-dev drover 2>&1) ||
        fail "apt-get purge drover-dev drover failed:"$'\n'"$out"
ok "apt-get purge drover-dev drover"
procs=$(sys_run pgrep -a '^drover') || true
[[ -z $procs ]] || fail "drover processes left after the purge:"$'\n'"$procs"
ok "no drover process left"
units=$(sys_run systemctl list-units --all --plain --no-legend 'drover*') || true
[[ -z $units ]] || fail "drover units still loaded after the purge:"$'\n'"$units"
files=$(sys_run systemctl list-unit-files --plain --no-legend 'drover*') || true
[[ -z $files ]] || fail "drover unit files left after the purge:"$'\n'"$files"
links=$(sys_run find /etc/systemd/system -name 'drover*' -not -path '*/drover.socket.d*') || true
[[ -z $links ]] || fail "left in /etc/systemd/system after the purge:"$'\n'"$links"
ok "no drover unit, unit file or link left"
sys_wait_for -t 5 port_closed || fail "something still listens on :$PORT after the purge"
ok "nothing listens on :$PORT"
# shellcheck disable=SC2016 # a dpkg-query format
status=$(sys_run dpkg-query -W -f='${Status}' drover 2>/dev/null) || true
[[ $status != *" installed"* && $status != *config-files* ]] || fail "dpkg status of drover after the purge: $status"
ok "dpkg status of drover after the purge: ${status:-unknown}"
