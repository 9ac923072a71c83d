#!/usr/bin/env bash
# Captures the zypper outputs under tests/data/zypper/ from the real zypper (Debian 12:
# zypper 1.14.42, rpm 4.18, createrepo_c), run as root on a private --root with a
# file:// repository of small noarch/x86_64 test RPMs and an updateinfo.xml.
# Usage: sudo bash capture.sh [OUTDIR]   (default: the directory of this script)
set -euo pipefail
out=$(cd "${1:-$(dirname "$0")}" && pwd)
w=/tmp/patchctl-zypper-capture
rm -rf "$w"; mkdir -p "$w/repo" "$w/root"
mk() { # NAME VERSION ARCH EXTRA-SPEC-LINES
  cat > "$w/$1-$2.spec" <<S
%define _build_id_links none
Name: $1
Version: $2
Release: 1
Summary: PatchCTL test package
License: MIT
BuildArch: $3
$4
%description
PatchCTL test package.
%install
mkdir -p %{buildroot}/usr/share/patchctl-test
echo $1-$2 > %{buildroot}/usr/share/patchctl-test/$1
%files
/usr/share/patchctl-test/$1
S
  rpmbuild --quiet --define "_topdir $w/build" -bb "$w/$1-$2.spec" >/dev/null 2>&1
}
for p in pc-sec pc-upd pc-new pc-victim pc-dep pc-broken pc-down pc-same; do mk $p 1.0 noarch ""; done
mk pc-lib 1.0 x86_64 ""
mk pc-sec 1.1 noarch ""
mk pc-lib 1.1 x86_64 ""
mk pc-upd 1.1 noarch ""
mk pc-new 1.1 noarch "Obsoletes: pc-victim < 2"
mk pc-dep 1.1 noarch "Requires: pc-newdep"
mk pc-newdep 1.0 noarch ""
mk pc-broken 1.1 noarch "Requires: pc-missing-capability"
mk pc-down 0.9 noarch ""
rpms=$w/build/RPMS
cp $rpms/*/*-1.1-1.*.rpm $rpms/noarch/pc-newdep-1.0-1.noarch.rpm $rpms/noarch/pc-down-0.9-1.noarch.rpm \
   $rpms/noarch/pc-same-1.0-1.noarch.rpm "$w/repo/"
cat > "$w/updateinfo.xml" <<'U'
<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="tests@patchctl.invalid" status="stable" type="security" version="1">
    <id>PCTEST-SU-2024:0001</id>
    <title>Security update for pc-sec</title>
    <severity>important</severity>
    <release>PatchCTL Test</release>
    <issued date="1700000000"/>
    <references>
      <reference href="https://example.invalid/CVE-2024-0001" id="CVE-2024-0001" title="CVE-2024-0001" type="cve"/>
    </references>
    <description>Fixes CVE-2024-0001 in pc-sec and pc-lib.</description>
    <pkglist>
      <collection>
        <package name="pc-sec" epoch="0" version="1.1" release="1" arch="noarch" src="pc-sec-1.1-1.src.rpm"><filename>pc-sec-1.1-1.noarch.rpm</filename></package>
        <package name="pc-lib" epoch="0" version="1.1" release="1" arch="x86_64" src="pc-lib-1.1-1.src.rpm"><filename>pc-lib-1.1-1.x86_64.rpm</filename></package>
        <package name="pc-lib" epoch="0" version="1.1" release="1" arch="src" src="pc-lib-1.1-1.src.rpm"><filename>pc-lib-1.1-1.src.rpm</filename></package>
      </collection>
    </pkglist>
  </update>
  <update from="tests@patchctl.invalid" status="stable" type="recommended" version="1">
    <id>PCTEST-RU-2024:0002</id>
    <title>Recommended update for pc-upd</title>
    <severity>moderate</severity>
    <release>PatchCTL Test</release>
    <issued date="1700000000"/>
    <description>Bug fixes in pc-upd.</description>
    <pkglist>
      <collection>
        <package name="pc-upd" epoch="0" version="1.1" release="1" arch="noarch" src="pc-upd-1.1-1.src.rpm"><filename>pc-upd-1.1-1.noarch.rpm</filename></package>
      </collection>
    </pkglist>
  </update>
</updates>
U
createrepo_c -q "$w/repo"
modifyrepo_c "$w/updateinfo.xml" "$w/repo/repodata" >/dev/null
R=$w/root
rpm --root "$R" --initdb
rpm --root "$R" -i --nodeps $rpms/*/*-1.0-1.*.rpm 2>/dev/null
rpm --root "$R" -e pc-newdep
Z=(zypper --non-interactive --root "$R")
"${Z[@]}" addrepo --no-gpgcheck "file://$w/repo" pctest >/dev/null
"${Z[@]}" refresh > "$out/refresh.txt"
X=(env ZYPP_LOCK_TIMEOUT=2 "${Z[@]}" --xmlout --no-refresh)
cap() { # FILE ARGS...: stdout to FILE, exit code to FILE.exit
  local f=$1; shift
  set +e; "${X[@]}" "$@" > "$out/$f" 2>/dev/null; echo $? > "$out/$f.exit"; set -e
}
cap list-updates.xml list-updates
cap list-patches.xml list-patches
cap list-patches-category-security.xml list-patches --category security
cap info-patch.xml info -t patch -- PCTEST-SU-2024:0001 PCTEST-RU-2024:0002
cap info-package-outdated.xml info -t package -- pc-sec
cap info-package-current.xml info -t package -- pc-same
cap info-package-missing.xml info -t package -- pc-nosuch
cap info-package-not-installed.xml info -t package -- pc-newdep
cap simulate-upgrade.xml update --dry-run --no-recommends -- pc-sec=1.1-1 pc-lib=1.1-1
cap simulate-remove.xml update --dry-run --no-recommends -- pc-new=1.1-1
cap simulate-new-dependency.xml update --dry-run --no-recommends -- pc-dep=1.1-1
cap simulate-problem.xml update --dry-run --no-recommends -- pc-broken=1.1-1
cap simulate-no-provider.xml update --dry-run --no-recommends -- pc-sec=9.9-1
cap simulate-not-installed.xml update --dry-run --no-recommends -- pc-newdep=1.0-1
cap simulate-other-version.xml update --dry-run --no-recommends -- pc-down=0.9-1
cap simulate-nothing-to-do.xml update --dry-run --no-recommends -- pc-same=1.0-1
# Only for the parser: a plan with a downgrade (the backend never passes --oldpackage).
cap simulate-downgrade.xml install --oldpackage --dry-run --no-recommends -- pc-down=0.9-1
# The lock: a live process's pid in the root's zypp.pid.
sleep 30 & holder=$!
echo $holder > "$R/run/zypp.pid"
cap locked.xml update --dry-run -- pc-sec=1.1-1
set +e; ZYPP_LOCK_TIMEOUT=2 "${Z[@]}" --no-refresh update --no-recommends -- pc-sec=1.1-1 > "$out/locked-install.txt" 2>&1; echo $? > "$out/locked-install.txt.exit"; set -e
kill $holder; rm -f "$R/run/zypp.pid"
# A real install, plain text as the backend runs it.
set +e; "${Z[@]}" --no-refresh update --no-recommends -- pc-sec=1.1-1 > "$out/install.txt" 2>&1; echo $? > "$out/install.txt.exit"; set -e
set +e; "${Z[@]}" needs-rebooting > "$out/needs-rebooting-no.txt" 2>&1; echo $? > "$out/needs-rebooting-no.txt.exit"
touch "$R/run/reboot-needed"
"${Z[@]}" needs-rebooting > "$out/needs-rebooting-yes.txt" 2>&1; echo $? > "$out/needs-rebooting-yes.txt.exit"; set -e
# Nothing left to update: empty lists.
rpm --root "$R" -e --nodeps pc-lib pc-upd pc-new pc-victim pc-dep pc-broken pc-down
cap list-updates-none.xml list-updates
cap list-patches-none.xml list-patches
sed -i "s#$w#/tmp/patchctl-zypper-capture#g" "$out"/*.xml "$out"/*.txt
zypper --version > "$out/VERSION"; rpm --version >> "$out/VERSION"
echo "captured into $out"
