//! The dashboard benchmark's fleet, written through the storage API (not HTTP):
//! `hosts` Debian 12 hosts with a few packages and updates each, one host with
//! thousands of packages, updates and findings, vulnerability records that make most
//! hosts vulnerable, some commands, and an owner to log in as.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use patchctl_proto::agent::{DiskUsage, InstalledPackage, Metrics, OsInfo, SystemInfo};
use patchctl_proto::command::AvailableUpdate;
use patchctl_proto::scan::{PackageRow, ScanState, ScanUpdates};
use patchctl_server::auth::hash_secret;
use patchctl_storage::{HeartbeatWrite, NewCommand, NewHost, Storage};
use uuid::Uuid;

/// Common package names the small hosts draw from (so hosts share their decisions, as
/// real fleets do).
const COMMON: [&str; 24] = [
    "openssh-server",
    "openssl",
    "libc6",
    "bash",
    "coreutils",
    "curl",
    "libcurl4",
    "systemd",
    "sudo",
    "tar",
    "gzip",
    "zlib1g",
    "libssl3",
    "vim-tiny",
    "perl-base",
    "python3.11",
    "git",
    "nginx",
    "postgresql-15",
    "tzdata",
    "libxml2",
    "less",
    "wget",
    "rsync",
];

/// How many hosts a heartbeat batch writes.
const HEARTBEAT_BATCH: usize = 1_000;
/// Concurrent storage calls while seeding (one SQLite writer serialises them anyway;
/// a few in flight hide the round trips).
const IN_FLIGHT: usize = 8;

/// What the seeding made, and how long it took.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The host with thousands of packages.
    pub big_host: Uuid,
    /// Hosts created (the big one included).
    pub hosts: usize,
    /// Packages stored in all.
    pub packages: u64,
    /// Commands queued.
    pub commands: usize,
    /// Vulnerability records imported.
    pub records: usize,
    /// Wall time of the seeding.
    pub took: Duration,
}

/// The size of the fleet.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Hosts (besides the big one).
    pub hosts: usize,
    /// Packages of each small host.
    pub small_packages: usize,
    /// Packages of the big host.
    pub big_packages: usize,
    /// Commands queued over the fleet.
    pub commands: usize,
}

/// The host name of small host `i`.
pub fn hostname(i: usize) -> String {
    format!("web-{i:06}.bench.example")
}

fn system(hostname: &str, i: usize) -> SystemInfo {
    SystemInfo {
        hostname: hostname.to_owned(),
        ips: vec![format!(
            "10.{}.{}.{}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        )],
        os: OsInfo {
            id: "debian".into(),
            version_id: "12".into(),
            version_codename: "bookworm".into(),
            pretty_name: "Debian GNU/Linux 12 (bookworm)".into(),
            ..Default::default()
        },
        kernel: "6.1.0-28-amd64".into(),
        arch: "x86_64".into(),
        cpu_model: "Bench CPU".into(),
        cpu_count: 4,
        mem_total_bytes: 8 << 30,
        disks: vec![],
        tags: Vec::new(),
    }
}

fn metrics(i: usize) -> Metrics {
    Metrics {
        cpu_percent: (i % 100) as f32,
        load: [0.5, 0.4, 0.3],
        mem_used_bytes: 2 << 30,
        mem_total_bytes: 8 << 30,
        swap_used_bytes: 0,
        swap_total_bytes: 1 << 30,
        disks: vec![DiskUsage {
            mount: "/".into(),
            fs_type: "ext4".into(),
            used_bytes: 10 << 30,
            total_bytes: 40 << 30,
        }],
        uptime_secs: 86_400 + i as u64,
    }
}

/// Installed version `1.<minor>-1` of a package (the fixed versions are `1.<minor>-2`).
fn version(minor: usize) -> String {
    format!("1.{minor}-1")
}

fn row(name: &str, version: &str) -> PackageRow {
    PackageRow::from_package(&InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "amd64".into(),
        source_name: Some(name.into()),
        source_version: Some(version.into()),
        status: "installed".into(),
    })
}

fn update(name: &str, from: &str, to: &str, security: bool) -> AvailableUpdate {
    AvailableUpdate {
        name: name.into(),
        arch: "amd64".into(),
        current_version: Some(from.into()),
        candidate_version: to.into(),
        origins: vec![if security {
            "Debian-Security:12/stable-security".into()
        } else {
            "Debian:12.9/stable".into()
        }],
        security,
        advisories: vec![],
    }
}

/// A host's scan state: `packages` rows, every fifth package has an update.
fn state(sys: SystemInfo, names: &[String], updates_every: usize) -> ScanState {
    let packages: Vec<PackageRow> = names
        .iter()
        .enumerate()
        .map(|(k, n)| row(n, &version(k % 7)))
        .collect();
    let updates = names
        .iter()
        .enumerate()
        .filter(|(k, _)| k % updates_every == 0)
        .map(|(k, n)| update(n, &version(k % 7), &format!("1.{}-2", k % 7), k % 2 == 0))
        .collect();
    let mut s = ScanState {
        system: sys,
        package_manager: Some("dpkg".into()),
        packages,
        updates: Some(ScanUpdates {
            refreshed: true,
            updates,
            removals: vec![],
            error: None,
        }),
    };
    s.canonicalize();
    s
}

/// The package names of the big host.
fn big_names(n: usize) -> Vec<String> {
    let mut v: Vec<String> = COMMON.iter().map(|s| (*s).to_owned()).collect();
    v.extend((v.len()..n).map(|k| format!("lib-bench-{k:05}")));
    v.truncate(n);
    v
}

/// Vulnerability records: one per common package (fixed in `1.<minor>-2` for every
/// minor, so hosts whose installed minor is below are vulnerable) and one per 10th
/// package of the big host; severities rotate, some are known exploited.
fn records(big: &[String]) -> Vec<patchctl_vuln::Record> {
    let severities = ["critical", "high", "medium", "low"];
    big.iter()
        .enumerate()
        .filter(|(k, _)| *k < COMMON.len() || k % 10 == 0)
        .map(|(k, name)| patchctl_vuln::Record {
            id: format!("CVE-2025-{:05}", 10_000 + k),
            aliases: vec![],
            summary: format!("{name}: a flaw found by the benchmark"),
            severity: Some(severities[k % severities.len()].into()),
            cvss_vector: None,
            published: None,
            modified: None,
            withdrawn: false,
            exploited: None,
            affected: vec![patchctl_vuln::Affected {
                ecosystem: "Debian:12".into(),
                package: name.clone(),
                introduced: None,
                last_affected: None,
                status: if k % 9 == 4 {
                    patchctl_vuln::Status::WillNotFix
                } else {
                    patchctl_vuln::Status::Fixed {
                        fixed_version: format!("1.{}-2", k % 7),
                    }
                },
                note: None,
                severity: None,
            }],
        })
        .collect()
}

/// Writes the fleet and an owner `username`/`password`.
pub async fn seed(
    store: &Arc<dyn Storage>,
    shape: Shape,
    username: &str,
    password: &str,
) -> anyhow::Result<Seeded> {
    let start = Instant::now();
    let now = Utc::now();
    let secrets = patchctl_server::bootstrap::create_org(store.as_ref(), "bench")
        .await
        .context("cannot create the organisation")?;
    let key = store
        .enrollment_key_by_hash(&hash_secret(secrets.enrollment_key.expose()))
        .await?
        .context("the new enrollment key is not stored")?;
    let org_id = key.org_id;
    let hash = patchctl_server::passwords::hash_password(password)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    store
        .create_user(patchctl_storage::NewUser {
            org_id,
            username: username.to_owned(),
            password_hash: hash,
            role: patchctl_proto::access::Role::Owner,
            now,
        })
        .await
        .context("cannot create the owner")?;

    let big_names = big_names(shape.big_packages.max(COMMON.len()));
    let recs = records(&big_names);
    store
        .import_vuln_records("bench", &recs, now)
        .await
        .context("cannot import the vulnerability records")?;

    // hosts, IN_FLIGHT at a time
    let mut ids: Vec<Uuid> = Vec::with_capacity(shape.hosts + 1);
    let mut packages = 0u64;
    let new_host = |i: usize, name: String| NewHost {
        org_id,
        enrollment_key_id: key.id,
        credential_hash: hash_secret(&format!("bench-credential-{i}")),
        agent_version: if i % 10 == 0 { "0.9.0" } else { "1.0.0" }.into(),
        system: system(&name, i),
        now,
    };
    let big_hostname = "big-3000.bench.example".to_owned();
    let big = store
        .create_host(new_host(usize::MAX, big_hostname.clone()))
        .await?;
    let big_state = state(system(&big_hostname, 0), &big_names, 5);
    packages += store
        .put_scan(
            big.id,
            now,
            &big_state.digest(),
            &big_state,
            patchctl_storage::ScanKind::Full,
        )
        .await?;
    ids.push(big.id);

    for chunk_start in (0..shape.hosts).step_by(IN_FLIGHT * 64) {
        let end = (chunk_start + IN_FLIGHT * 64).min(shape.hosts);
        let mut set = tokio::task::JoinSet::new();
        for lane in 0..IN_FLIGHT {
            let store = store.clone();
            let range: Vec<usize> = (chunk_start + lane..end).step_by(IN_FLIGHT).collect();
            let hosts: Vec<NewHost> = range.iter().map(|&i| new_host(i, hostname(i))).collect();
            set.spawn(async move {
                let mut out = Vec::with_capacity(hosts.len());
                let mut pk = 0u64;
                for (i, h) in range.into_iter().zip(hosts) {
                    let sys = h.system.clone();
                    let row = store.create_host(h).await?;
                    let names: Vec<String> = (0..shape.small_packages)
                        .map(|k| COMMON[(i + k * 5) % COMMON.len()].to_owned())
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    let s = state(sys, &names, 3);
                    pk += store
                        .put_scan(
                            row.id,
                            now,
                            &s.digest(),
                            &s,
                            patchctl_storage::ScanKind::Full,
                        )
                        .await?;
                    out.push((i, row.id));
                }
                Ok::<_, anyhow::Error>((out, pk))
            });
        }
        let mut made = Vec::new();
        while let Some(r) = set.join_next().await {
            let (out, pk) = r.context("a seeding task failed")??;
            made.extend(out);
            packages += pk;
        }
        made.sort_unstable();
        ids.extend(made.into_iter().map(|(_, id)| id));
        if end % 10_000 < IN_FLIGHT * 64 {
            eprintln!(
                "dashboard: {end} hosts written ({:.0} s)",
                start.elapsed().as_secs_f64()
            );
        }
    }

    // heartbeats (latest metrics, last seen) in batches; every 50th host stays silent
    // for a day so the overview has offline hosts
    for (b, chunk) in ids.chunks(HEARTBEAT_BATCH).enumerate() {
        let batch: Vec<HeartbeatWrite> = chunk
            .iter()
            .enumerate()
            .filter(|(k, _)| (b * HEARTBEAT_BATCH + k) % 50 != 1)
            .map(|(k, id)| HeartbeatWrite {
                host_id: *id,
                agent_version: if k % 10 == 0 { "0.9.0" } else { "1.0.0" }.into(),
                agent_target: Some("x86_64-unknown-linux-musl".into()),
                metrics: metrics(k),
                at: now,
                reboot: Default::default(),
            })
            .collect();
        store.record_heartbeats(&batch, 288).await?;
    }
    // a metrics history for the big host
    for n in 0..48 {
        let at: DateTime<Utc> = now - chrono::Duration::minutes(5 * (48 - n));
        store
            .record_heartbeats(
                &[HeartbeatWrite {
                    host_id: big.id,
                    agent_version: "1.0.0".into(),
                    agent_target: Some("x86_64-unknown-linux-musl".into()),
                    metrics: metrics(n as usize),
                    at,
                    reboot: Default::default(),
                }],
                288,
            )
            .await?;
    }

    // commands: spread over the fleet, 20 of them on the big host
    let mut commands = 0;
    for c in 0..shape.commands {
        let host_id = if c < 20 {
            big.id
        } else {
            ids[(c * 7919) % ids.len()]
        };
        store
            .queue_command(NewCommand {
                id: uuid::Uuid::new_v4(),
                signed: None,
                org_id,
                host_id,
                kind: "health_check".into(),
                params: serde_json::json!({}),
                now: now - chrono::Duration::seconds((shape.commands - c) as i64),
                expires_at: now + chrono::Duration::days(1),
            })
            .await?;
        commands += 1;
    }

    Ok(Seeded {
        big_host: big.id,
        hosts: ids.len(),
        packages,
        commands,
        records: recs.len(),
        took: start.elapsed(),
    })
}
