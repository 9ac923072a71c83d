#!/bin/sh
# PatchCTL agent installer, served by the platform at https://PLATFORM/install.sh.
#
#   curl --proto '=https' --tlsv1.3 -fsS https://PLATFORM/install.sh \
#     | sudo sh -s -- --enrollment-key KEY [--server URL] [--cacert FILE] [--wait SECS]
#
# Detects the package family (dpkg: .deb, rpm: .rpm), downloads the platform's latest
# signed package for this machine, checks its SHA-256, installs it, writes
# /etc/patchctl/config.json (0600 root:root), starts the agent, which enrolls with the
# key, and waits until it has enrolled (or says why it has not). The platform
# substitutes its URL and its packages below when it serves this file; the copy in
# dist/ is the template.
#
# The enrollment key is never printed. Every step that acts is a function that only
# the last line calls, so a download cut short changes nothing.

set -eu

PLATFORM_URL='@PLATFORM_URL@'
# One line per package: family, target triple, version, download path, SHA-256.
RELEASES='
@RELEASES@
'

CONFIG_DIR=/etc/patchctl
CONFIG="$CONFIG_DIR/config.json"
CREDENTIAL="$CONFIG_DIR/credential.json"
REVOKED="$CONFIG_DIR/revoked.json"
UNIT=patchctl.service

say() { printf 'patchctl install: %s\n' "$*"; }
die() {
    printf 'patchctl install: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat <<'USAGE'
usage: sh install.sh --enrollment-key KEY [--server URL] [--cacert FILE] [--wait SECS]

  --enrollment-key KEY  the organisation's enrollment key (`patchctl keys create`)
  --server URL          the platform (https://HOST:PORT); default: where this script
                        was downloaded from
  --cacert FILE         trust this CA instead of the system roots, for the downloads
                        and for the agent (the dev platform's CA is
                        <data dir>/tls/ca.pem)
  --wait SECS           how long to wait for the agent to enroll (default 60; 0: do
                        not wait)
USAGE
}

KEY=
SERVER=$PLATFORM_URL
CACERT=
WAIT=60

# The arguments, into variables (check_args checks them; every step that acts is a
# function, and only the last line calls them).
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
    --wait)
        [ $# -ge 2 ] || die "--wait needs a value"
        WAIT=$2
        shift 2
        ;;
    --wait=*)
        WAIT=${1#*=}
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

check_args() {
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
    case $WAIT in
    '' | *[!0-9]* | ??????*) die "--wait takes a number of seconds up to 99999 (0: do not wait), not $WAIT" ;;
    esac
    if [ -n "$CACERT" ] && [ ! -r "$CACERT" ]; then
        die "cannot read the CA file $CACERT"
    fi

    [ "$(id -u)" = 0 ] || die "this installs a system service and must run as root: pipe it to \`sudo sh -s -- ...\`"
}

# Sets FAMILY, TARGET, VERSION, DL_PATH and SHA256: the package for this machine.
choose_package() {
    if command -v dpkg >/dev/null 2>&1; then
        FAMILY=deb
    elif command -v rpm >/dev/null 2>&1; then
        FAMILY=rpm
    else
        die "no supported package manager found: this script installs the .deb (dpkg: Debian, Ubuntu) or the .rpm (rpm: RHEL, Rocky, Alma, Fedora, openSUSE); for Alpine and Arch see the platform's docs/install.md"
    fi

    MACHINE=$(uname -m)
    case $MACHINE in
    x86_64 | amd64) TARGET=x86_64-unknown-linux-gnu ;;
    aarch64 | arm64) TARGET=aarch64-unknown-linux-gnu ;;
    *) die "no agent is built for this machine ($MACHINE); supported: x86_64, aarch64" ;;
    esac

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
}

# Fails with what to install when `$1` is missing.
need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 is needed and not installed here: install it (package $2) and run this again"
}

# Downloads the package into $PKG and checks its SHA-256 against the one the platform
# took from the release's signed manifest.
download() {
    say "downloading patchctl-agent $VERSION ($FAMILY, $TARGET) from $SERVER"
    if [ -n "$CACERT" ]; then
        curl --proto '=https' --tlsv1.3 -fsS --cacert "$CACERT" -o "$PKG" "$SERVER$DL_PATH" </dev/null ||
            die "the download from $SERVER$DL_PATH failed (see curl's message above); nothing was installed"
    else
        curl --proto '=https' --tlsv1.3 -fsS -o "$PKG" "$SERVER$DL_PATH" </dev/null ||
            die "the download from $SERVER$DL_PATH failed (see curl's message above); for a platform with a private CA pass --cacert FILE; nothing was installed"
    fi
    GOT=$(sha256sum "$PKG" </dev/null | cut -d' ' -f1)
    [ "$GOT" = "$SHA256" ] || die "the downloaded package's SHA-256 is $GOT, but the platform's signed manifest says $SHA256: the package was altered or damaged on the way; nothing was installed (tell the platform's operator)"
    say "SHA-256 verified ($SHA256)"
}

install_package() {
    case $FAMILY in
    deb) dpkg -i "$PKG" </dev/null || die "dpkg -i failed (see above); fix what it names and run this again" ;;
    rpm) rpm -U --replacepkgs "$PKG" </dev/null || die "rpm -U failed (see above); fix what it names and run this again" ;;
    esac
    say "installed patchctl-agent $VERSION; the configuration and the start follow here"
}

# The configuration: private from the first byte (umask), written beside and renamed.
write_config() {
    umask 077
    mkdir -p "$CONFIG_DIR"
    chown root:root "$CONFIG_DIR"
    chmod 0700 "$CONFIG_DIR"
    CA_LINE=
    if [ -n "$CACERT" ]; then
        # Beside and renamed: --cacert may name the installed copy itself.
        cp "$CACERT" "$CONFIG_DIR/ca.pem.new"
        chmod 0600 "$CONFIG_DIR/ca.pem.new"
        mv -f "$CONFIG_DIR/ca.pem.new" "$CONFIG_DIR/ca.pem"
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
}

# The last error the agent started by this run (its unit's invocation $1) logged: the
# journal field ERROR of its events. Empty without a journal.
agent_error() {
    [ -n "$1" ] || return 0
    command -v journalctl >/dev/null 2>&1 || return 0
    journalctl --no-pager -q -o export "_SYSTEMD_INVOCATION_ID=$1" </dev/null 2>/dev/null |
        sed -n 's/^ERROR=//p' | tail -n 1
}

# True when the agent holds a credential from this platform (the agent writes it
# atomically, pretty-printed).
enrolled_here() {
    [ -s "$CREDENTIAL" ] && grep -qF "\"server_url\": \"$SERVER\"" "$CREDENTIAL"
}

# Waits for the credential the agent stores when the platform enrolled it.
wait_enrolled() {
    inv=$(systemctl show -p InvocationID --value "$UNIT" </dev/null 2>/dev/null || true)
    say "waiting up to $WAIT s for the agent to enroll"
    reason=
    i=0
    while [ "$i" -lt "$WAIT" ]; do
        if enrolled_here; then
            say "the agent enrolled and runs; the host shows in \`patchctl hosts list\` (check it here with \`/opt/patchctl/bin/patchctl-agent doctor\`)"
            return 0
        fi
        reason=$(agent_error "$inv")
        case $reason in
        *"refused the license key"*)
            die "the agent is installed and running but not enrolled: $reason. Run this script again with a current key (\`patchctl keys list\`, \`patchctl keys create\`); until then the agent keeps retrying"
            ;;
        esac
        sleep 1
        i=$((i + 1))
    done
    if [ -n "$reason" ]; then
        die "the agent did not enroll within $WAIT s; its last error: $reason. It keeps retrying: see \`journalctl -u patchctl\` and \`/opt/patchctl/bin/patchctl-agent doctor\`"
    fi
    die "the agent did not enroll within $WAIT s; it keeps retrying: see \`journalctl -u patchctl\` and \`/opt/patchctl/bin/patchctl-agent doctor\`"
}

start_agent() {
    if [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null 2>&1; then
        say "systemd is not running here: start the agent with your init system, or run"
        say "  /opt/patchctl/bin/patchctl-agent run --config $CONFIG"
        say "it enrolls with the key at its first start"
        return 0
    fi
    enrolled_before=no
    ! enrolled_here || enrolled_before=yes
    systemctl enable "$UNIT" </dev/null || die "systemctl enable $UNIT failed (see above)"
    # Restart, not start: an agent already running (this script run again) reads the
    # configuration just written.
    systemctl restart "$UNIT" </dev/null || die "systemctl restart $UNIT failed; see \`journalctl -u patchctl\`"
    if [ "$enrolled_before" = yes ]; then
        say "the agent runs again; this host was already enrolled ($CREDENTIAL) and keeps that identity, so the key was not used (\`patchctl-agent reenroll\` forgets it)"
    elif [ "$WAIT" -eq 0 ]; then
        say "the agent runs and enrolls with the key; check it with \`/opt/patchctl/bin/patchctl-agent doctor\` and \`patchctl hosts list\`"
    else
        wait_enrolled
    fi
}

main() {
    check_args
    choose_package
    need curl curl
    need sha256sum coreutils
    if [ -e "$REVOKED" ]; then
        die "an operator revoked this host's agent ($REVOKED), so it contacts nothing; to bring the host back run \`/opt/patchctl/bin/patchctl-agent reenroll\` (it forgets the credential) and then this script again"
    fi
    TMP=$(mktemp -d)
    trap 'rm -rf "$TMP"' EXIT
    trap 'exit 1' HUP INT TERM
    PKG="$TMP/patchctl-agent.$FAMILY"
    download
    install_package
    write_config
    start_agent
}

main
