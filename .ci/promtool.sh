#!/usr/bin/env bash
# promtool check metrics on a real development platform: `patchctl server --dev` (its
# own agent enrolls this machine and sends heartbeats and a scan) on a free loopback
# port, PATCHCTL_VULN_SYNC=false, /metrics scraped twice (over TLS with the dev token,
# and on the plain metrics_listen address) and each page piped through
# `promtool check metrics`. Any complaint, lint warnings included, fails the step.
# Runs as root with CI=true and no stdin; installs prometheus (promtool) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
command -v promtool >/dev/null || { echo "promtool: not installed after apt-get install prometheus" >&2; exit 1; }

cargo build -q -p patchctl --bin patchctl
bin="${CARGO_TARGET_DIR:-target}/debug/patchctl"
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metrics_addr="127.0.0.1:$(free_port)"
PATCHCTL_VULN_SYNC=false PATCHCTL_METRICS_LISTEN="$metrics_addr" \
  "$bin" server --dev --data-dir "$work/dev" --listen 127.0.0.1:0 \
  </dev/null >"$work/stdout.log" 2>"$work/server.log" &
server_pid=$!

for _ in $(seq 1 120); do
  [ -s "$work/dev/dev.json" ] && curl -fsS -o /dev/null "http://$metrics_addr/metrics" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "patchctl server --dev exited:" >&2; tail -50 "$work/server.log" >&2; exit 1; }
  sleep 0.5
done
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$work/dev/dev.json")
ca=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ca_file"])' "$work/dev/dev.json")
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/dev/dev.json")

# Let the dev agent enroll, heartbeat and scan so that the traffic families have values.
for _ in $(seq 1 60); do
  curl -fsS "http://$metrics_addr/metrics" >"$work/plain.prom"
  grep -q '^patchctl_agent_heartbeats_total [1-9]' "$work/plain.prom" && break
  sleep 1
done
grep -q '^patchctl_agent_heartbeats_total [1-9]' "$work/plain.prom" \
  || { echo "no heartbeat counted after 60 s" >&2; cat "$work/plain.prom" >&2; tail -50 "$work/server.log" >&2; exit 1; }
sleep 6 # past the 5 s cache of the scrape-time gauges
curl -fsS "http://$metrics_addr/metrics" >"$work/plain.prom"
# Over TLS: without a token 401, with the dev token the page.
status=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$ca" "$url/metrics")
[ "$status" = 401 ] || { echo "/metrics without a token answered $status, not 401" >&2; exit 1; }
curl -fsS --cacert "$ca" -H "Authorization: Bearer $token" "$url/metrics" >"$work/tls.prom"

fail=0
for page in plain tls; do
  echo "--- promtool check metrics ($page: $(wc -l <"$work/$page.prom") lines)"
  if ! out=$(promtool check metrics <"$work/$page.prom" 2>&1) || [ -n "$out" ]; then
    echo "promtool complained about the $page page:" >&2
    echo "$out" >&2
    fail=1
  fi
done
for family in patchctl_hosts patchctl_hosts_by_agent_version patchctl_agent_heartbeats_total \
              patchctl_agent_scans_total patchctl_http_request_duration_seconds_bucket \
              patchctl_vuln_engine_ready patchctl_fleet_query_ok; do
  grep -q "^$family[{ ]" "$work/tls.prom" || { echo "family $family missing from /metrics" >&2; fail=1; }
done
[ "$fail" = 0 ] || { cat "$work/tls.prom" >&2; exit 1; }
echo "promtool: both pages clean"
