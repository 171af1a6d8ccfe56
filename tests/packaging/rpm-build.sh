#!/usr/bin/env bash
#
# rpm-build.sh - packaging/rpm/drover.spec builds with `rpmbuild -bb`.
#
# Makes drover-VERSION.tar.gz from the files git knows (as a release tarball would hold them), then runs
# rpmbuild -bb --nodeps on the spec with tests/packaging/rpm-macros standing in for the Fedora macros Debian's
# rpm lacks (%meson, %systemd_post, %_unitdir, ...). Checks that drover and drover-devel come out, with the
# files each must hold, and that the scriptlets are there. --nodeps: the BuildRequires are Fedora package
# names, which rpm cannot check against dpkg's database; tools/install-deps installs their Debian
# counterparts.
#
# Skips (exit 77) without rpmbuild (package rpm) unless DROVER_REQUIRE_SYSTEM=1, which makes it a failure.
set -euo pipefail

src=${DROVER_SRC_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
build=${DROVER_BUILD_ROOT:-$src/build}
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }
if ! command -v rpmbuild >/dev/null; then
        [[ ${DROVER_REQUIRE_SYSTEM:-0} != 1 ]] || fail "rpmbuild not found (package rpm; DROVER_REQUIRE_SYSTEM=1)"
        echo "SKIP: rpmbuild not found (package rpm)"
        exit 77
fi

spec=$src/packaging/rpm/drover.spec
version=$(rpmspec -q --srpm --qf '%{version}' --load "$src/tests/packaging/rpm-macros" "$spec" 2>/dev/null) ||
        fail "rpmspec cannot parse $spec"
top=$build/rpm-build
rm -rf -- "$top"
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS,BUILDROOT}
git -C "$src" ls-files -z --cached --others --exclude-standard |
        (cd "$src" && xargs -0 tar -cf - --no-recursion --ignore-failed-read --transform "s,^,drover-$version/," --) |
        gzip -n >"$top/SOURCES/drover-$version.tar.gz"
ok "made drover-$version.tar.gz"

if ! rpmbuild -bb --nodeps --define "_topdir $top" --load "$src/tests/packaging/rpm-macros" "$spec" \
        >"$top/rpmbuild.log" 2>&1; then
        tail -n 60 "$top/rpmbuild.log"
        fail "rpmbuild -bb failed (log: $top/rpmbuild.log)"
fi
ok "rpmbuild -bb packaging/rpm/drover.spec"

arch=$(rpm --eval '%{_arch}')
rpm_main=$(echo "$top/RPMS/$arch/drover-$version"-*.rpm)
rpm_devel=$(echo "$top/RPMS/$arch/drover-devel-$version"-*.rpm)
[[ -f $rpm_main && -f $rpm_devel ]] || fail "no drover and drover-devel packages:"$'\n'"$(find "$top/RPMS" -type f)"
ok "built $(basename "$rpm_main") and $(basename "$rpm_devel")"

files=$(rpm -qlp "$rpm_main")
libdir=$(rpm --eval '%{_libdir}')
for f in /usr/bin/drover /usr/libexec/drover/drover-worker /usr/lib/systemd/system/drover.socket /usr/lib/systemd/system/drover.service \
        /usr/lib/systemd/system/drover@.socket /usr/lib/systemd/system/drover@.service \
        /usr/lib/sysusers.d/drover.conf /usr/lib/systemd/catalog/drover.catalog \
        /usr/share/drover/site/index.html "$libdir/drover/modules/hello.so" "$libdir/drover/modules/echo.so" \
        /usr/share/man/man8/drover.8 /usr/share/man/man5/drover.conf.5; do
        [[ $'\n'$files == *$'\n'$f* ]] || fail "$(basename "$rpm_main") lacks $f:"$'\n'"$files"
done
ok "$(basename "$rpm_main") holds the binary, units, sysusers.d file, catalog, site, modules and man pages"
files=$(rpm -qlp "$rpm_devel")
for f in /usr/include/drover/handler.h "$libdir/pkgconfig/drover-handler.pc" /usr/share/man/man3/drover-handler.3; do
        [[ $'\n'$files == *$'\n'$f* ]] || fail "$(basename "$rpm_devel") lacks $f:"$'\n'"$files"
done
ok "$(basename "$rpm_devel") holds the header, the .pc file and drover-handler(3)"

scripts=$(rpm -qp --scripts "$rpm_main")
for s in 'useradd -r -g drover' 'preset drover.socket drover.service' 'disable --now drover.socket drover.service' \
        'systemctl reload'; do
        [[ $scripts == *"$s"* ]] || fail "the scriptlets of $(basename "$rpm_main") lack '$s':"$'\n'"$scripts"
done
ok "scriptlets: the user, preset on install, disable --now on removal, reload on upgrade"
