#!/usr/bin/env bash
# Re-captures the fixtures of this directory from the real dnf 4 of this Debian machine
# (packages dnf, rpm, createrepo-c; dnf-plugins-core for the needs-restarting outputs).
# Builds tiny noarch RPMs with rpmbuild, a repository with createrepo_c and an
# updateinfo.xml added with modifyrepo_c, an rpm database in a private installroot, and
# runs dnf against them with the environment the agent's executor gives (PATH, LC_ALL=C).
# Usage (as root): bash tests/data/dnf/capture.sh
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)"
T="$(mktemp -d)"
trap 'rm -rf "$T"' EXIT
R="$T/root"
LONG=pc-an-extremely-long-package-name-that-will-not-fit-into-the-columns-of-dnf
mkdir -p "$T/specs" "$T/base" "$T/upd" "$T/repos.d" "$T/cache" "$R"

spec() { # name version release [epoch] [extra preamble]
  cat >"$T/specs/$1-$2-$3.spec" <<S
Name: $1
Version: $2
Release: $3
${4:+Epoch: $4}
Summary: PatchCTL test package $1
License: MIT
BuildArch: noarch
${5:-}
%define _build_id_links none
%description
PatchCTL test package.
%install
mkdir -p %{buildroot}/usr/share/patchctl-test
echo $1-$2 > %{buildroot}/usr/share/patchctl-test/$1
%files
/usr/share/patchctl-test/$1
S
  rpmbuild --quiet --define "_topdir $T/top" -bb "$T/specs/$1-$2-$3.spec" >/dev/null 2>&1
}
spec pc-sec 1.0 1; spec pc-sec 1.1 1
spec pc-upd 1.0 1; spec pc-upd 1.1 1
spec pc-new 1.0 1; spec pc-new 1.1 1 "" "Obsoletes: pc-victim < 2"
spec pc-victim 1.0 1
spec pc-epoch 2.0 1 1; spec pc-epoch 1.5 1 2
spec pc-dep 1.0 1; spec pc-weak 1.0 1
spec pc-needs 1.0 1; spec pc-needs 1.1 1 "" "Requires: pc-dep
Recommends: pc-weak"
spec "$LONG" 1.0 1; spec "$LONG" 1.1 1
spec pc-down 1.0 1; spec pc-down 0.9 1
spec pc-conf 1.0 1; spec pc-conf 1.1 1 "" "Conflicts: pc-victim"
spec pc-clash 1.0 1; spec pc-clash 1.1 1 "" "Conflicts: pc-down"
spec kernel 5.14.0 427.13.1.el9_4; spec kernel 5.14.0 427.18.1.el9_4
P="$T/top/RPMS/noarch"
for p in pc-sec pc-upd pc-new pc-needs "$LONG" pc-down pc-conf pc-clash; do cp "$P/$p-1.0-1.noarch.rpm" "$T/base/"; done
cp "$P"/pc-victim-1.0-1.* "$P"/pc-epoch-2.0-1.* "$T/base/"
for p in pc-sec pc-upd pc-new pc-needs "$LONG" pc-conf pc-clash; do cp "$P/$p-1.1-1.noarch.rpm" "$T/upd/"; done
cp "$P"/pc-epoch-1.5-1.* "$P"/pc-dep-* "$P"/pc-weak-* "$P"/pc-down-0.9-1.* "$T/upd/"

cat >"$T/updateinfo.xml" <<X
<?xml version="1.0" encoding="UTF-8"?>
<updates>
$(adv() { # id type severity name version release epoch
  echo "  <update from=\"tests@patchctl.invalid\" status=\"stable\" type=\"$2\" version=\"2.0\">"
  echo "    <id>$1</id><title>$4 update</title><issued date=\"2024-05-01 00:00:00\"/>"
  [ -n "$3" ] && echo "    <severity>$3</severity>"
  echo "    <summary>$4</summary><description>$4 update.</description>"
  echo "    <pkglist><collection short=\"pctest\"><name>PatchCTL Test</name>"
  shift 3
  while [ $# -ge 4 ]; do
    echo "      <package name=\"$1\" version=\"$2\" release=\"$3\" epoch=\"$4\" arch=\"noarch\"><filename>$1-$2-$3.noarch.rpm</filename></package>"
    shift 4
  done
  echo "    </collection></pkglist>"
  echo "  </update>"
}
adv PCTEST-2024:0001 security Important pc-sec 1.1 1 0
adv PCTEST-2024:0002 bugfix "" pc-upd 1.1 1 0
adv PCTEST-2024:0003 security Moderate pc-needs 1.1 1 0 "$LONG" 1.1 1 0
adv PCTEST-2024:0004 enhancement "" pc-epoch 1.5 1 2
adv PCTEST-2024:0005 security "" pc-epoch 1.5 1 2
adv PCTEST-2024:0006 security Critical pc-conf 1.1 1 0
adv PCTEST-2024:0007 newpackage "" pc-dep 1.0 1 0)
</updates>
X
createrepo_c -q "$T/upd"
modifyrepo_c --mdtype=updateinfo "$T/updateinfo.xml" "$T/upd/repodata" >/dev/null
cat >"$T/repos.d/pctest.repo" <<EOR
[pctest-updates]
name=PatchCTL test updates
baseurl=file://$T/upd
gpgcheck=0
EOR
rpm --root "$R" --initdb
rpm --root "$R" -i --nodeps --noscripts "$T"/base/*.rpm 2>/dev/null

E=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C)
D=(/usr/bin/dnf "--installroot=$R" --releasever=9 "--setopt=reposdir=$T/repos.d"
   "--setopt=cachedir=$T/cache" --setopt=gpgcheck=False --setopt=plugins=False)
cap() { # file command... : stdout to FILE.out, stderr to FILE.err, exit code to FILE.code
  local f="$1"; shift
  set +e; "${E[@]}" "$@" >"$out/$f.out" 2>"$out/$f.err"; echo $? >"$out/$f.code"; set -e
  # The temp dir's name changes each run: make the files stable.
  sed -i "s|$T|/tmp/pctest|g" "$out/$f.out" "$out/$f.err"
  [ -s "$out/$f.err" ] || rm "$out/$f.err"
}
"${E[@]}" "${D[@]}" -q makecache --refresh
cap check-update "${D[@]}" -q check-update
cap updateinfo-list-updates "${D[@]}" -q updateinfo list --updates
cap updateinfo-list-updates-pc-sec "${D[@]}" -q updateinfo list --updates -- pc-sec
cap list-pc-sec "${D[@]}" -q list -- pc-sec
cap list-pc-epoch "${D[@]}" -q list -- pc-epoch
cap list-pc-dep "${D[@]}" -q list -- pc-dep
cap list-pc-victim "${D[@]}" -q list -- pc-victim
cap list-pc-nope "${D[@]}" -q list -- pc-nope
W=--setopt=install_weak_deps=False
cap simulate-upgrade "${D[@]}" --assumeno "$W" upgrade -- pc-sec-1.1-1
cap simulate-obsoletes "${D[@]}" --assumeno "$W" upgrade -- pc-new-1.1-1
cap simulate-epoch "${D[@]}" --assumeno "$W" upgrade -- pc-epoch-2:1.5-1
cap simulate-deps "${D[@]}" --assumeno upgrade -- pc-needs-1.1-1 "$LONG-1.1-1"
cap simulate-no-match "${D[@]}" --assumeno "$W" upgrade -- pc-sec-1.1-1 pc-upd-9.9-1
cap simulate-only-no-match "${D[@]}" --assumeno "$W" upgrade -- pc-sec-9.9-1
cap simulate-older "${D[@]}" --assumeno "$W" upgrade -- pc-down-0.9-1
cap simulate-conflicts "${D[@]}" --assumeno "$W" upgrade -- pc-conf-1.1-1
cap simulate-conflicts-all "${D[@]}" --assumeno "$W" upgrade
cap simulate-skip-conflict "${D[@]}" --assumeno "$W" upgrade -- pc-clash-1.1-1 pc-upd-1.1-1
cap simulate-best-conflict "${D[@]}" --assumeno "$W" --best upgrade -- pc-clash-1.1-1
cap simulate-downgrade "${D[@]}" --assumeno downgrade -- pc-down-0.9-1
cap simulate-remove "${D[@]}" --assumeno remove -- pc-victim
# A held dnf lock: a live process's pid in the rpmdb lock file.
sleep 60 & holder=$!
mkdir -p "$R/var/lib/dnf"; echo -n "$holder" >"$R/var/lib/dnf/rpmdb_lock.pid"
cap install-locked "${D[@]}" -y "$W" --setopt=exit_on_lock=True upgrade -- pc-sec-1.1-1
sed -i "s/$holder/4242/g; s/Started: .*/Started: Sun Nov 22 02:47:06 2026 - 00:00 ago/" "$out/install-locked.err"
rm -f "$R/var/lib/dnf/rpmdb_lock.pid"; kill "$holder"
cap install "${D[@]}" -y "$W" --setopt=exit_on_lock=True upgrade -- pc-sec-1.1-1
cap needs-restarting-no-plugin "${D[@]}" -q needs-restarting -r
if [ -e /usr/lib/python3/dist-packages/dnf-plugins/needs_restarting.py ]; then
  N=("${D[@]/--setopt=plugins=False/--disableplugin=local}")
  cap needs-restarting-not-necessary "${N[@]}" -q needs-restarting -r
  # needs-restarting also reads package names from the installroot's config.
  mkdir -p "$R/etc/dnf/plugins/needs-restarting.d"
  echo pc-sec >"$R/etc/dnf/plugins/needs-restarting.d/pctest.conf"
  cap needs-restarting-required "${N[@]}" -q needs-restarting -r
fi
rpm --root "$R" -i --nodeps --noscripts "$P"/kernel-*.rpm 2>/dev/null
cap rpm-q-kernel /usr/bin/rpm "--root=$R" -q --queryformat '%{INSTALLTIME} %{VERSION}-%{RELEASE}.%{ARCH}\n' -- kernel-core kernel
# Both went in within the same second: give them the times of two separate updates.
sed -i 's/^[0-9]* \(5.14.0-427.13\)/1716100000 \1/; s/^[0-9]* \(5.14.0-427.18\)/1716200000 \1/' "$out/rpm-q-kernel.out"
ls -l "$out"
