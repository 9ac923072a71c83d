//! The Markdown of a fleet run: every figure beside its reference (the target,
//! the bare rustls + hyper ceiling under the same connection pattern, Fleet's published
//! hosts per vCPU).

use std::time::Duration;

use super::{Report, Storm};
use crate::stats::{mib, ms, thousands};

/// Fleet's reference architectures: hosts per vCPU, database elsewhere (quoted, not
/// measured here).
pub const FLEET_HOSTS_PER_VCPU: (u64, u64) = (2_500, 15_000);
/// The reconnect-storm target.
pub const STORM_TARGET: Duration = Duration::from_secs(30);
/// A real agent's heartbeat interval.
pub const REAL_INTERVAL_SECS: f64 = 300.0;

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn storm_md(s: &Storm, agents: usize) -> String {
    let affected_back = s
        .affected_back
        .map(secs)
        .unwrap_or_else(|| "NOT within the wait".into());
    let all_back = s
        .all_back
        .map(secs)
        .unwrap_or_else(|| format!("NOT within the wait ({} agents missing)", s.missing));
    let verdict = match s.affected_back {
        Some(t) if t <= STORM_TARGET => format!("meets the target of ≤ {}", secs(STORM_TARGET)),
        Some(t) => format!(
            "MISSES the target of ≤ {} by {}",
            secs(STORM_TARGET),
            secs(t - STORM_TARGET)
        ),
        None => "MISSES the target".into(),
    };
    format!(
        "| platform down (SIGKILL until listening again) | {} (of which the restart until /api/v1/health answered: {}) |\n\
         | agents with a failed step in the outage | {} of {} |\n\
         | kill → every one of them has a successful heartbeat again | {affected_back} ({verdict}) |\n\
         | kill → every agent has a successful heartbeat after the kill | {all_back} (bounded below by the interval + 10 % jitter: agents not hit by the outage wait for their next heartbeat) |\n",
        secs(s.down),
        secs(s.start),
        thousands(s.affected),
        thousands(agents as u64),
    )
}

/// The report.
pub fn markdown(r: &Report) -> String {
    let a = &r.args;
    let w = &r.window;
    let mut s = String::new();
    let target = a.agents as f64 / a.interval_secs.max(1) as f64;
    let stands_for = (a.agents as f64 * REAL_INTERVAL_SECS / a.interval_secs.max(1) as f64) as u64;
    s.push_str(&format!(
        "### The fleet: {} agents at {} s on {}\n\n\
         {} simulated agents (standing for {} real agents at 5 minutes), each with its own \
         TLS session store and source address in 127.0.0.0/8, against ONE `patchctl server` \
         process; each step opens a new TCP connection and TLS 1.3 handshake (resumed with \
         the agent's previous ticket) as a real agent at 5 minutes does (its pool keeps an \
         idle connection 90 s). {} packages per agent; a scan every {} heartbeats; one agent \
         in {} changes {} packages between scans; {} commands/s queued by an operator; \
         long-poll {}. The simulator runs on the same machine ({} worker threads).\n\n",
        thousands(a.agents as u64),
        a.interval_secs,
        a.database.label(),
        thousands(a.agents as u64),
        thousands(stands_for),
        a.packages,
        a.scan_every,
        a.change_every,
        super::scan::CHANGES_PER_SCAN,
        a.commands_per_sec,
        if a.long_poll { "on" } else { "off" },
        a.client_threads.unwrap_or_else(crate::cpus),
    ));
    match r.enrolled_after {
        Some(t) => s.push_str(&format!(
            "All {} agents enrolled (each with its full scan) {} after the start.\n\n",
            thousands(r.enrolled),
            secs(t)
        )),
        None => s.push_str(&format!(
            "**Not every agent enrolled within {} of the start: {} of {} had then; {} by the end of the run.**\n\n",
            secs(r.enroll_wait.0),
            thousands(r.enroll_wait.1),
            thousands(a.agents as u64),
            thousands(r.enrolled),
        )),
    }
    let (p50, p99, max) = match &w.latency {
        Some(l) => (ms(l.p50), ms(l.p99), ms(l.max)),
        None => ("–".into(), "–".into(), "–".into()),
    };
    let rate = w.per_sec();
    s.push_str("| figure | measured | reference |\n|---|---:|---|\n");
    s.push_str(&format!(
        "| heartbeats/s in the {} window | {} | the fleet's schedule: {} /s ({:.0} % of it) |\n",
        secs(w.elapsed),
        thousands(rate.round() as u64),
        thousands(target.round() as u64),
        100.0 * rate / target.max(1e-9)
    ));
    s.push_str(&format!(
        "| heartbeat latency p50 / p99 / max (connect + TLS + request) | {p50} / {p99} / {max} ms | |\n"
    ));
    s.push_str(&format!(
        "| errors in the window (any request or connection) | {} | 0 |\n",
        w.errors
    ));
    s.push_str(&format!(
        "| TLS handshakes full / resumed | {} / {} | |\n",
        thousands(w.full),
        thousands(w.resumed)
    ));
    s.push_str(&format!(
        "| scans full / delta / unchanged | {} / {} / {} | |\n",
        w.scans.0, w.scans.1, w.scans.2
    ));
    s.push_str(&format!(
        "| platform VmRSS before the agents / after the window | {} / {} | |\n",
        mib(r.mem_before.rss_kib),
        mib(r.mem_after.rss_kib)
    ));
    s.push_str(&format!(
        "| platform VmHWM (peak) | {} | |\n",
        mib(r.mem_after.hwm_kib)
    ));
    let per_100k = r.mem_after.rss_kib.saturating_sub(r.mem_before.rss_kib) as f64 * 100_000.0
        / a.agents.max(1) as f64;
    s.push_str(&format!(
        "| platform RSS growth (after − before) scaled to 100,000 agents | {} | fixed costs (page cache, allocator arenas) dominate below ~100,000 agents |\n",
        mib(per_100k as u64)
    ));
    s.push_str(&format!(
        "| open fds: platform / simulator | {} / {} | limits (soft): {} / {} |\n",
        r.fds.0, r.fds.1, r.nofile.1, r.nofile.0
    ));
    if a.long_poll {
        let per = if r.waiting > 0 {
            format!(
                "{:.1} KiB",
                r.mem_after.rss_kib.saturating_sub(r.mem_before.rss_kib) as f64 / r.waiting as f64
            )
        } else {
            "– (no agent was waiting)".into()
        };
        s.push_str(&format!(
            "| agents holding the long-poll at the sample / platform RSS per waiting agent | {} / {per} | |\n",
            r.waiting
        ));
    }
    let (queued, got, lat) = &r.commands;
    let lat = lat
        .map(|l| format!("{} / {} ms", ms(l.p50), ms(l.p99)))
        .unwrap_or_else(|| "–".into());
    s.push_str(&format!(
        "| commands queued / reached their agent; latency queue → agent p50 / p99 | {queued} / {got}; {lat} | ≤ 5 s at p99 (issue §2{}) |\n",
        if a.long_poll { "" } else { ", with the long-poll; here without it the heartbeat interval bounds it" }
    ));
    let cpus = crate::cpus() as f64;
    let per_vcpu = rate * REAL_INTERVAL_SECS / cpus;
    s.push_str(&format!(
        "| agents per vCPU this run served (window rate × 300 s / {cpus:.0} CPUs, simulator on the same CPUs) | {} | Fleet: {}–{} hosts per vCPU, database elsewhere (published, not measured) |\n",
        thousands(per_vcpu.round() as u64),
        thousands(FLEET_HOSTS_PER_VCPU.0),
        thousands(FLEET_HOSTS_PER_VCPU.1),
    ));
    s.push('\n');
    let per_hb = |d: Duration| {
        if w.ok == 0 {
            "–".to_owned()
        } else {
            format!("{:.0} µs", d.as_secs_f64() * 1e6 / w.ok as f64)
        }
    };
    s.push_str(&format!(
        "CPU during the window: the platform process {} ({:.2} cores, {} per heartbeat incl. its scans, results and handshakes), the simulator {} ({:.2} cores); machine idle {:.0} %, steal {:.0} %.\n\n",
        secs(w.platform_cpu),
        w.platform_cpu.as_secs_f64() / w.elapsed.as_secs_f64().max(1e-9),
        per_hb(w.platform_cpu),
        secs(w.simulator_cpu),
        w.simulator_cpu.as_secs_f64() / w.elapsed.as_secs_f64().max(1e-9),
        w.cpu.idle * 100.0,
        w.cpu.steal * 100.0
    ));
    match &r.storm {
        Some(Ok(st)) => {
            s.push_str(&format!(
                "#### Reconnect storm ({} agents running)\n\n| figure | measured |\n|---|---|\n",
                thousands(a.agents as u64)
            ));
            s.push_str(&storm_md(st, a.agents));
            s.push('\n');
        }
        Some(Err(e)) => s.push_str(&format!("Reconnect storm: FAILED: {e:#}\n\n")),
        None => {}
    }
    if !r.ceilings.is_empty() {
        s.push_str(&format!(
            "#### Ceilings under the same connection pattern (closed loop, a new connection and resumed TLS 1.3 per request)\n\n\
             | target | loops | requests/s | p50 ms | p99 ms | errors | handshakes full / resumed | server CPU per request | clients' CPU per request | server alone on {cpus:.0} CPUs (CPUs ÷ its CPU per request) |\n|---|---:|---:|---:|---:|---:|---|---:|---:|---:|\n",
        ));
        for (name, l) in &r.ceilings {
            let (p50, p99) = l
                .latency
                .map(|x| (ms(x.p50), ms(x.p99)))
                .unwrap_or(("–".into(), "–".into()));
            let (server_us, client_us) = l.cpu_per_request_us();
            s.push_str(&format!(
                "| {name} | {} | {} | {p50} | {p99} | {} | {} / {} | {server_us:.0} µs | {client_us:.0} µs | {}/s |\n",
                a.ceiling_loops,
                thousands(l.per_sec().round() as u64),
                l.errors,
                l.full,
                l.resumed,
                thousands(l.per_sec_on(cpus).round() as u64),
            ));
        }
        s.push('\n');
        for (name, l) in &r.ceilings {
            if let Some(e) = &l.error {
                s.push_str(&format!("- {name}: error seen: {}\n", one_line(e)));
            }
        }
        if let (Some((_, h)), Some((_, p))) = (r.ceilings.first(), r.ceilings.get(1)) {
            s.push_str(&format!(
                "- The platform's closed-loop rate is {:.0} % of the bare ceiling; at that rate one platform serves {} agents at 5 minutes ({} per vCPU).\n",
                100.0 * p.per_sec() / h.per_sec().max(1e-9),
                thousands((p.per_sec() * REAL_INTERVAL_SECS) as u64),
                thousands((p.per_sec() * REAL_INTERVAL_SECS / cpus) as u64),
            ));
            s.push_str(&format!(
                "- With the clients elsewhere (the server's own CPU per request, handshake included, over the machine's {cpus:.0} CPUs): the platform {}/s ({} agents at 5 minutes; a million needs {}/s), the bare server {}/s. The closed loop above shares the CPUs with the clients, whose TLS costs about as much as the server's.\n",
                thousands(p.per_sec_on(cpus).round() as u64),
                thousands((p.per_sec_on(cpus) * REAL_INTERVAL_SECS) as u64),
                thousands((1_000_000.0 / REAL_INTERVAL_SECS).round() as u64),
                thousands(h.per_sec_on(cpus).round() as u64),
            ));
        }
        s.push('\n');
    }
    s.push_str(&format!("Totals over the run: {}.\n\n", r.totals));
    for e in &r.errors {
        s.push_str(&format!("- error seen: {}\n", one_line(e)));
    }
    s
}

fn one_line(s: &str) -> String {
    let t = s.replace(['\n', '|'], " ");
    match t.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t,
    }
}
