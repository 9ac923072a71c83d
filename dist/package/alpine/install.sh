#!/bin/sh
# Installs (or upgrades) the PatchCTL agent from this tarball on Alpine Linux (OpenRC):
# the binary to /opt/patchctl/bin/patchctl-agent (0755), the service to
# /etc/init.d/patchctl, /etc/patchctl and /var/lib/patchctl (0700), and adds the
# service to the default runlevel. The config /etc/patchctl/config.json is never
# written here and an upgrade keeps it and the state. The agent is started only when
# the config exists. Run as root from the unpacked tarball: ./install.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
die() {
    echo "install.sh: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (try: doas ./install.sh or sudo ./install.sh)"
[ -x /sbin/openrc-run ] || die "OpenRC is not installed (/sbin/openrc-run): this tarball is for Alpine Linux; use the .deb or .rpm elsewhere"
"$here/patchctl-agent" version >/dev/null 2>&1 ||
    die "$here/patchctl-agent does not run on this system: a binary built for glibc needs 'apk add gcompat' on Alpine (or use a musl build)"

upgrade=no
[ -e /opt/patchctl/bin/patchctl-agent ] && upgrade=yes

install -d -m 0755 /opt/patchctl /opt/patchctl/bin
# Copy beside, then rename: a running agent keeps its old binary until it restarts.
install -m 0755 "$here/patchctl-agent" /opt/patchctl/bin/.patchctl-agent.install
mv -f /opt/patchctl/bin/.patchctl-agent.install /opt/patchctl/bin/patchctl-agent
install -m 0755 "$here/patchctl.openrc" /etc/init.d/patchctl
for d in /etc/patchctl /var/lib/patchctl /var/log/patchctl; do
    mkdir -p "$d"
    chown root:root "$d"
    chmod 0700 "$d"
done
rc-update add patchctl default >/dev/null

if [ ! -f /etc/patchctl/config.json ]; then
    echo "patchctl-agent installed, not started: /etc/patchctl/config.json does not exist."
    echo "  Write it (mode 0600, root:root), then run: rc-service patchctl start"
elif [ "$upgrade" = yes ]; then
    rc-service --ifstarted patchctl restart
    echo "patchctl-agent upgraded to $("$here/patchctl-agent" version) (restarted if it was running)."
else
    rc-service patchctl start
    echo "patchctl-agent installed and started."
fi
