#!/usr/bin/env bash
# Builds the agent's packages from a release binary:
#
#   dist/package/build.sh --binary PATH --version V [--target TRIPLE] --out DIR
#                         [--formats deb,rpm,alpine,arch] [--allow-test-root]
#
# deb:    patchctl-agent_V_ARCH.deb (dpkg-deb), maintainer scripts from deb/
# rpm:    patchctl-agent-V-1.ARCH.rpm (rpmbuild, spec from rpm/patchctl-agent.spec)
# alpine: patchctl-agent-V-alpine-TARGET.tar.gz (binary, OpenRC service, install.sh)
# arch:   patchctl-agent-V-arch-TARGET.tar.gz (PKGBUILD with pkgver and sha256sums,
#         binary, unit, install script): makepkg on the Arch host builds the package
#
# Every package holds /opt/patchctl/bin/patchctl-agent (0755 root:root), the unit (or
# the OpenRC service) and /etc/patchctl (0700), never a config. docs/install.md says
# how each is installed, upgraded and removed.
#
# A debug build of the agent also trusts the TEST release root, whose secret key is in
# the repository; the builder refuses a binary that holds that root's public key.
# --allow-test-root skips that refusal: for the repository's own tests only, never
# for a package anyone installs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
test_root_pub="$repo/crates/patchctl-release/testdata/test-root.pub"

die() {
    echo "build.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '3,4p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

binary= version= target=x86_64-unknown-linux-gnu out= formats=deb,rpm,alpine,arch
allow_test_root=no
while [ $# -gt 0 ]; do
    case "$1" in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --version) version=${2:?--version needs a version}; shift 2 ;;
    --target) target=${2:?--target needs a target triple}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --formats) formats=${2:?--formats needs a list (deb,rpm,alpine,arch)}; shift 2 ;;
    --allow-test-root) allow_test_root=yes; shift ;;
    -h | --help) usage ;;
    *) echo "build.sh: unknown argument '$1'" >&2; usage ;;
    esac
done
[ -n "$binary" ] && [ -n "$version" ] && [ -n "$out" ] || usage
[ -f "$binary" ] || die "--binary $binary: no such file (build it with: cargo build --release -p patchctl-agent)"
[ -x "$binary" ] || die "--binary $binary is not executable"
# One grammar every family accepts and orders the same way: digits and dots, then an
# optional pre-release (~rc1, sorts before the release) or build (+b1) suffix.
[[ "$version" =~ ^[0-9]+(\.[0-9]+)*([~+][0-9A-Za-z]+(\.[0-9A-Za-z]+)*)?$ ]] ||
    die "--version '$version' is not a package version (like 1.2.3, 1.2.3~rc1 or 1.2.3+b1)"

case "$target" in
x86_64-*-linux-*) deb_arch=amd64 rpm_arch=x86_64 pac_arch=x86_64 elf_machine=62 ;;
aarch64-*-linux-*) deb_arch=arm64 rpm_arch=aarch64 pac_arch=aarch64 elf_machine=183 ;;
*) die "--target $target: only x86_64 and aarch64 Linux targets are packaged" ;;
esac
# The binary must be a 64-bit little-endian ELF file for that machine (e_machine).
[ "$(head -c 4 "$binary" | od -An -c | tr -d ' ')" = '177ELF' ] ||
    die "--binary $binary is not an ELF executable"
machine=$(od -An -t u2 -j 18 -N 2 "$binary" | tr -d ' ')
[ "$machine" = "$elf_machine" ] ||
    die "--binary $binary is not built for $target (ELF machine $machine, expected $elf_machine): pass the --target it was built for"

# The test-root refusal. The agent embeds each root it trusts as 64 hex digits of text.
[ -f "$test_root_pub" ] || die "$test_root_pub is missing: run the builder from a checkout of the repository"
test_root_hex=$(sed -n 's/^ed25519:\([0-9a-fA-F]\{64\}\)$/\1/p' "$test_root_pub" | head -n 1)
[ -n "$test_root_hex" ] || die "$test_root_pub holds no ed25519 public key"
if grep -qiF "$test_root_hex" "$binary"; then
    if [ "$allow_test_root" = yes ]; then
        echo "build.sh: WARNING: $binary trusts the TEST release root (a debug build); packaging it because of --allow-test-root (tests only)" >&2
    else
        die "$binary trusts the TEST release root, whose secret key is public: it is a debug build. Build the release binary (cargo build --release -p patchctl-agent) and package target/release/patchctl-agent"
    fi
fi

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is needed for the $2 package (Debian: apt-get install $3)"
}

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/patchctl-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
unit="$repo/dist/patchctl.service"

build_deb() {
    need dpkg-deb deb dpkg
    local root="$work/deb"
    install -d -m 0755 "$root/DEBIAN" "$root/opt/patchctl/bin" "$root/lib/systemd/system"
    install -m 0755 "$binary" "$root/opt/patchctl/bin/patchctl-agent"
    install -m 0644 "$unit" "$root/lib/systemd/system/patchctl.service"
    install -d -m 0700 "$root/etc/patchctl"
    local s
    for s in preinst postinst prerm postrm; do
        install -m 0755 "$here/deb/$s" "$root/DEBIAN/$s"
    done
    local size
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    cat >"$root/DEBIAN/control" <<EOF
Package: patchctl-agent
Version: $version
Architecture: $deb_arch
Maintainer: PatchCTL <packages@patchctl.invalid>
Installed-Size: $size
Depends: libc6, libgcc-s1
Section: admin
Priority: optional
Homepage: https://patchctl.invalid/docs/agent
Description: PatchCTL agent: pull-only patch management
 Reports this server's packages and health to the PatchCTL platform over
 outbound TLS 1.3 only and runs exactly four operations: check_updates,
 install_updates, get_package_info and health_check, never a shell.
EOF
    chmod 0644 "$root/DEBIAN/control"
    local deb="$out/patchctl-agent_${version}_${deb_arch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
    echo "$deb"
}

build_rpm() {
    need rpmbuild rpm rpm
    local top="$work/rpm"
    mkdir -p "$top"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}
    install -m 0755 "$binary" "$top/SOURCES/patchctl-agent"
    install -m 0644 "$unit" "$top/SOURCES/patchctl.service"
    sed -e "s/@VERSION@/$version/g" -e "s/@ARCH@/$rpm_arch/g" \
        "$here/rpm/patchctl-agent.spec" >"$top/SPECS/patchctl-agent.spec"
    # xz payload: every rpm in use reads it (zstd needs rpm 4.14 or later).
    rpmbuild --quiet -bb --target "$rpm_arch" \
        --define "_topdir $top" \
        --define "_binary_payload w6.xzdio" \
        "$top/SPECS/patchctl-agent.spec" >"$work/rpmbuild.log" 2>&1 ||
        { cat "$work/rpmbuild.log" >&2; die "rpmbuild failed (its output is above)"; }
    local rpm="$out/patchctl-agent-${version}-1.${rpm_arch}.rpm"
    mv "$top/RPMS/$rpm_arch/patchctl-agent-${version}-1.${rpm_arch}.rpm" "$rpm"
    echo "$rpm"
}

# A tarball whose entries are owned by root, whatever the builder's user.
tarball() { # tarball OUT DIR NAME
    tar --owner=0 --group=0 --numeric-owner --sort=name -C "$2" -czf "$1" "$3"
}

build_alpine() {
    if [[ "$target" == *-gnu ]]; then
        echo "build.sh: note: $target is a glibc build; Alpine (musl) runs it only with gcompat (apk add gcompat)" >&2
    fi
    local name="patchctl-agent-$version-alpine-$target"
    local dir="$work/$name"
    install -d -m 0755 "$dir"
    install -m 0755 "$binary" "$dir/patchctl-agent"
    install -m 0755 "$here/openrc/patchctl" "$dir/patchctl.openrc"
    install -m 0755 "$here/alpine/install.sh" "$dir/install.sh"
    local tgz="$out/$name.tar.gz"
    tarball "$tgz" "$work" "$name"
    echo "$tgz"
}

build_arch() {
    [[ "$version" != *"~"* ]] || die "--version '$version': pacman versions cannot hold '~' (use the release version for the arch format)"
    local name="patchctl-agent-$version-arch-$target"
    local dir="$work/$name"
    install -d -m 0755 "$dir"
    install -m 0755 "$binary" "$dir/patchctl-agent"
    install -m 0644 "$unit" "$dir/patchctl.service"
    install -m 0644 "$here/arch/patchctl-agent.install" "$dir/patchctl-agent.install"
    local sum_bin sum_unit
    sum_bin=$(sha256sum "$binary" | cut -d' ' -f1)
    sum_unit=$(sha256sum "$unit" | cut -d' ' -f1)
    sed -e "s/^pkgver=.*/pkgver=$version/" \
        -e "s/^arch=.*/arch=('$pac_arch')/" \
        -e "s/^sha256sums=.*/sha256sums=('$sum_bin' '$sum_unit')/" \
        "$here/arch/PKGBUILD" >"$dir/PKGBUILD"
    chmod 0644 "$dir/PKGBUILD"
    bash -n "$dir/PKGBUILD"
    local tgz="$out/$name.tar.gz"
    tarball "$tgz" "$work" "$name"
    echo "$tgz"
}

IFS=, read -r -a wanted <<<"$formats"
[ "${#wanted[@]}" -gt 0 ] || die "--formats is empty (choose from deb,rpm,alpine,arch)"
for f in "${wanted[@]}"; do
    case "$f" in
    deb | rpm | alpine | arch) ;;
    *) die "--formats: unknown format '$f' (choose from deb,rpm,alpine,arch)" ;;
    esac
done
for f in "${wanted[@]}"; do
    "build_$f"
done
