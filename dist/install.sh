#!/bin/sh
# PatchCTL agent installer, served by the platform at https://PLATFORM/install.sh.
#
#   curl --proto '=https' --tlsv1.3 -fsS https://PLATFORM/install.sh \
#     | sudo sh -s -- --enrollment-key KEY [--server URL] [--cacert FILE]
#
# Detects the package family (dpkg: .deb, rpm: .rpm), downloads the platform's latest
# signed package for this machine, checks its SHA-256, installs it, writes
# /etc/patchctl/config.json (0600 root:root) and starts the agent, which enrolls with
# the key. The platform substitutes its URL and its packages below when it serves
# this file; the copy in dist/ is the template.
#
# The enrollment key is never printed.

set -eu

PLATFORM_URL='@PLATFORM_URL@'
# One line per package: family, target triple, version, download path, SHA-256.
RELEASES='
@RELEASES@
'

CONFIG_DIR=/etc/patchctl
CONFIG="$CONFIG_DIR/config.json"

say() { printf 'patchctl install: %s\n' "$*"; }
die() {
    printf 'patchctl install: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat <<'USAGE'
usage: sh install.sh --enrollment-key KEY [--server URL] [--cacert FILE]

  --enrollment-key KEY  the organisation's enrollment key (`patchctl keys create`)
  --server URL          the platform (https://HOST:PORT); default: where this script
                        was downloaded from
  --cacert FILE         trust this CA instead of the system roots, for the downloads
                        and for the agent (the dev platform's CA is
                        <data dir>/tls/ca.pem)
USAGE
}

KEY=
SERVER=$PLATFORM_URL
CACERT=
while [ $# -gt 0 ]; do
    case $1 in
    --enrollment-key)
        [ $# -ge 2 ] || die "--enrollment-key needs a value"
        KEY=$2
        shift 2
        ;;
    --enrollment-key=*)
        KEY=${1#*=}
        shift
        ;;
    --server)
        [ $# -ge 2 ] || die "--server needs a value"
        SERVER=$2
        shift 2
        ;;
    --server=*)
        SERVER=${1#*=}
        shift
        ;;
    --cacert)
        [ $# -ge 2 ] || die "--cacert needs a value"
        CACERT=$2
        shift 2
        ;;
    --cacert=*)
        CACERT=${1#*=}
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    -*)
        die "unknown option $1; see --help"
        ;;
    *)
        # Not echoed: a misplaced argument may be the key.
        die "unexpected argument (not shown: it may be a secret); give the key as --enrollment-key KEY"
        ;;
    esac
done

[ -n "$KEY" ] || die "--enrollment-key KEY is required (create one with \`patchctl keys create\`)"
case $KEY in
*[!A-Za-z0-9_-]*) die "the enrollment key holds characters no key has (letters, digits, '_' and '-' only); copy it again" ;;
esac
[ -n "$SERVER" ] || die "the platform's URL is unknown; give it with --server https://HOST:PORT"
case $SERVER in
https://*) ;;
*) die "--server must be an https:// URL (the agent talks TLS 1.3 only), not $SERVER" ;;
esac
case $SERVER in
*[!]A-Za-z0-9.:/_[-]*) die "--server $SERVER holds characters a platform URL does not; give https://HOST:PORT" ;;
esac
SERVER=${SERVER%/}
if [ -n "$CACERT" ] && [ ! -r "$CACERT" ]; then
    die "cannot read the CA file $CACERT"
fi

[ "$(id -u)" = 0 ] || die "this installs a system service and must run as root: pipe it to \`sudo sh -s -- ...\`"

# The package family.
if command -v dpkg >/dev/null 2>&1; then
    FAMILY=deb
elif command -v rpm >/dev/null 2>&1; then
    FAMILY=rpm
else
    die "no supported package manager found: this script installs the .deb (dpkg: Debian, Ubuntu) or the .rpm (rpm: RHEL, Rocky, Alma, Fedora, openSUSE); for Alpine and Arch see the platform's docs/releases.md"
fi

# The target triple.
MACHINE=$(uname -m)
case $MACHINE in
x86_64 | amd64) TARGET=x86_64-unknown-linux-gnu ;;
aarch64 | arm64) TARGET=aarch64-unknown-linux-gnu ;;
*) die "no agent is built for this machine ($MACHINE); supported: x86_64, aarch64" ;;
esac

# The package the platform publishes for both.
VERSION=
DL_PATH=
SHA256=
while read -r fam tgt ver path sum; do
    if [ "$fam" = "$FAMILY" ] && [ "$tgt" = "$TARGET" ]; then
        VERSION=$ver
        DL_PATH=$path
        SHA256=$sum
    fi
done <<EOF
$RELEASES
EOF
[ -n "$DL_PATH" ] || die "the platform publishes no patchctl-agent.$FAMILY for $TARGET yet; an operator publishes one with \`patchctl release publish\`"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PKG="$TMP/patchctl-agent.$FAMILY"

say "downloading patchctl-agent $VERSION ($FAMILY, $TARGET) from $SERVER"
if [ -n "$CACERT" ]; then
    curl --proto '=https' --tlsv1.3 -fsS --cacert "$CACERT" -o "$PKG" "$SERVER$DL_PATH" ||
        die "the download from $SERVER$DL_PATH failed (see curl's message above)"
else
    curl --proto '=https' --tlsv1.3 -fsS -o "$PKG" "$SERVER$DL_PATH" ||
        die "the download from $SERVER$DL_PATH failed (see curl's message above); for a platform with a private CA pass --cacert FILE"
fi

GOT=$(sha256sum "$PKG" | cut -d' ' -f1)
[ "$GOT" = "$SHA256" ] || die "the package's SHA-256 is $GOT, the platform's signed manifest says $SHA256; nothing was installed"
say "SHA-256 verified ($SHA256)"

case $FAMILY in
deb) dpkg -i "$PKG" || die "dpkg -i failed (see above); fix what it names and run this again" ;;
rpm) rpm -U --replacepkgs "$PKG" || die "rpm -U failed (see above); fix what it names and run this again" ;;
esac

# The configuration: private from the first byte (umask), written beside and renamed.
umask 077
mkdir -p "$CONFIG_DIR"
chmod 0700 "$CONFIG_DIR"
CA_LINE=
if [ -n "$CACERT" ]; then
    cp "$CACERT" "$CONFIG_DIR/ca.pem"
    chmod 0600 "$CONFIG_DIR/ca.pem"
    CA_LINE="  \"ca_bundle\": \"$CONFIG_DIR/ca.pem\","
fi
if [ -e "$CONFIG" ]; then
    cp -p "$CONFIG" "$CONFIG.previous"
    say "an earlier $CONFIG is kept as $CONFIG.previous"
fi
{
    printf '{\n'
    printf '  "server_url": "%s",\n' "$SERVER"
    [ -z "$CA_LINE" ] || printf '%s\n' "$CA_LINE"
    printf '  "license_key": "%s"\n' "$KEY"
    printf '}\n'
} >"$CONFIG.new"
chown root:root "$CONFIG.new"
chmod 0600 "$CONFIG.new"
mv -f "$CONFIG.new" "$CONFIG"
say "wrote $CONFIG (0600 root:root)"

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl enable --now patchctl || die "systemctl enable --now patchctl failed; see \`journalctl -u patchctl\`"
    say "the agent is running and enrolls with the key; check it with \`patchctl-agent doctor\` and \`patchctl hosts list\`"
else
    say "systemd is not running here: start the agent with your init system, or run"
    say "  /opt/patchctl/bin/patchctl-agent run --config $CONFIG"
fi
