//! `patchctl deployments ...`: staged rollouts over the operator API — list, show (the
//! rings with their host counts by stage), hosts (each host's ring, stage and what
//! happened last), events (every transition, oldest first), create (a manifest to
//! groups in cumulative rings: `--rings 5,25,100`), and pause, resume, cancel. A
//! deployment is named by its name or id. A transition the deployment's state does not
//! allow is answered 409 by the platform; the error then says what the state allows.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;
use http::Method;
use patchctl_proto::command::RebootPolicy;
use patchctl_proto::policy::deployments::{
    DeploymentAction, DeploymentEvent, DeploymentHostView, DeploymentRequest, DeploymentView,
    RingSpec, RingView, validate_rings,
};
use serde::Serialize;

use crate::client::{Api, Conn, enc};
use crate::output::{self, Format, table};

/// `patchctl deployments ...`.
#[derive(Subcommand)]
pub enum DeploymentsCmd {
    /// List the deployments, newest first: state, current ring, hosts healthy and failed.
    List,
    /// Show one deployment: its state (and why it halted) and every ring with its host
    /// counts by stage.
    Show {
        /// Deployment name or id.
        deployment: String,
    },
    /// The hosts of a deployment, by ring then name: stage and what happened last.
    Hosts {
        /// Deployment name or id.
        deployment: String,
    },
    /// Every transition of a deployment, its rings and its hosts, oldest first.
    Events {
        /// Deployment name or id.
        deployment: String,
    },
    /// Deploy a manifest to groups in rings (canary first); needs the operator role.
    Create {
        /// Name, unique in the organisation.
        #[arg(long)]
        name: String,
        /// The manifest to install (name or id).
        #[arg(long)]
        manifest: String,
        /// A group whose hosts take it (name or id); repeat for several.
        #[arg(long = "group", required = true)]
        groups: Vec<String>,
        /// Cumulative share of the hosts reached by each ring, in order, the last 100:
        /// `5,25,100` (canary 5 %, then 25 %, then everyone). Default: one ring of 100.
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=100))]
        rings: Vec<u8>,
        /// Minutes every host of a ring must stay healthy before the next ring starts.
        #[arg(long, default_value_t = 10)]
        soak_minutes: u32,
        /// Share of a ring's hosts that may fail before the deployment halts (0: the
        /// first failure halts it).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
        max_failed_percent: u8,
        /// Reboot a host that needs it after its install (inside its window):
        /// `never` or `if_required`.
        #[arg(long, default_value = "never", value_parser = reboot_policy)]
        reboot: RebootPolicy,
    },
    /// Pause a running deployment: no new install starts; running ones finish.
    Pause {
        /// Deployment name or id.
        deployment: String,
        /// Why, kept with the transition.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a paused deployment.
    Resume {
        /// Deployment name or id.
        deployment: String,
        /// Why, kept with the transition.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Cancel a deployment that is running or paused: nothing more is installed.
    Cancel {
        /// Deployment name or id.
        deployment: String,
        /// Why, kept with the transition.
        #[arg(long)]
        reason: Option<String>,
    },
}

fn reboot_policy(s: &str) -> Result<RebootPolicy, String> {
    match s {
        "never" => Ok(RebootPolicy::Never),
        "if_required" | "if-required" => Ok(RebootPolicy::IfRequired),
        other => Err(format!(
            "{other:?} is not a reboot policy; use never or if_required"
        )),
    }
}

/// The rings of `create`: one per `--rings` percentage, each with the soak time and
/// failure threshold given, checked as the platform checks them.
pub fn rings(
    percents: &[u8],
    soak_minutes: u32,
    max_failed_percent: u8,
) -> Result<Vec<RingSpec>, String> {
    let specs: Vec<RingSpec> = percents
        .iter()
        .map(|&percent| RingSpec {
            name: None,
            percent,
            max_failed_percent,
            soak_minutes,
        })
        .collect();
    let checked = validate_rings(&specs)?;
    // One ring of 100 % when none are given: with the options the operator chose.
    Ok(checked
        .into_iter()
        .map(|r| RingSpec {
            max_failed_percent,
            soak_minutes,
            ..r
        })
        .collect())
}

/// What the deployment's state allows, for the error of a refused transition (409).
fn conflict_hint(action: &str, deployment: &str) -> String {
    let allows = match action {
        "pause" => "only a running deployment can be paused",
        "resume" => "only a paused deployment can be resumed",
        "cancel" => {
            "only a running or paused deployment can be cancelled; halted, completed and \
             cancelled ones are final"
        }
        _ => "a deployment's name is used once in the organisation",
    };
    format!(
        "hint: {allows}; `patchctl deployments show {deployment}` shows its state, \
         `patchctl deployments list` every deployment"
    )
}

/// `e` with the hint of a 409 answer added.
fn with_hint(e: anyhow::Error, action: &str, deployment: &str) -> anyhow::Error {
    let status = e
        .downcast_ref::<patchctl_net::ClientError>()
        .and_then(|c| c.status());
    if status == Some(409) {
        anyhow::anyhow!("{e}\n{}", conflict_hint(action, deployment))
    } else {
        e
    }
}

/// Runs a `deployments` subcommand; `json` is `--json` (the same as `--output json`).
pub async fn run(conn: &Conn, json: bool, cmd: DeploymentsCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let format = if json { Format::Json } else { conn.output };
    let path = |d: &str, rest: &str| format!("/api/v1/deployments/{}{rest}", enc(d));
    match cmd {
        DeploymentsCmd::List => {
            let list: Vec<DeploymentView> = api.get("/api/v1/deployments").await?;
            output::emit(format, &list, |l| list_table(l))?;
        }
        DeploymentsCmd::Show { deployment } => {
            let d: DeploymentView = api.get(&path(&deployment, "")).await?;
            output::emit(format, &d, show_text)?;
        }
        DeploymentsCmd::Hosts { deployment } => {
            let d: DeploymentView = api.get(&path(&deployment, "")).await?;
            let hosts: Vec<DeploymentHostView> = api.get(&path(&deployment, "/hosts")).await?;
            output::emit(format, &hosts, |h| hosts_table(&d.rings, h))?;
        }
        DeploymentsCmd::Events { deployment } => {
            let events: Vec<DeploymentEvent> = api.get(&path(&deployment, "/events")).await?;
            let names = match format {
                Format::Json => HashMap::new(),
                Format::Table => {
                    let d: DeploymentView = api.get(&path(&deployment, "")).await?;
                    let hosts: Vec<DeploymentHostView> =
                        api.get(&path(&deployment, "/hosts")).await?;
                    names(&d.rings, &hosts)
                }
            };
            output::emit(format, &events, |e| events_table(&names, e))?;
        }
        DeploymentsCmd::Create {
            name,
            manifest,
            groups,
            rings: percents,
            soak_minutes,
            max_failed_percent,
            reboot,
        } => {
            let rings = rings(&percents, soak_minutes, max_failed_percent)
                .map_err(|e| anyhow::anyhow!("--rings: {e}"))?;
            let req = DeploymentRequest {
                name: name.clone(),
                manifest,
                groups,
                rings,
                reboot,
            };
            let d: DeploymentView = api
                .call(Method::POST, "/api/v1/deployments", Some(&req))
                .await
                .map_err(|e| with_hint(e, "create", &name))?;
            output::emit(format, &d, |d| {
                format!(
                    "deployment {} created (id {})\n{}",
                    d.name,
                    d.id,
                    show_text(d)
                )
            })?;
        }
        DeploymentsCmd::Pause { deployment, reason } => {
            transition(&api, format, "pause", &deployment, reason).await?;
        }
        DeploymentsCmd::Resume { deployment, reason } => {
            transition(&api, format, "resume", &deployment, reason).await?;
        }
        DeploymentsCmd::Cancel { deployment, reason } => {
            transition(&api, format, "cancel", &deployment, reason).await?;
        }
    }
    Ok(())
}

/// `POST /api/v1/deployments/{d}/{action}`, then the deployment as it is now.
async fn transition(
    api: &Api,
    format: Format,
    action: &str,
    deployment: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let at = format!("/api/v1/deployments/{}/{action}", enc(deployment));
    let d: DeploymentView = api
        .call(Method::POST, &at, Some(&DeploymentAction { reason }))
        .await
        .map_err(|e| with_hint(e, action, deployment))?;
    output::emit(format, &d, |d| {
        format!(
            "deployment {}: {} ({action})\n{}",
            d.name,
            d.state.as_str(),
            show_text(d)
        )
    })
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The wire name of a state or stage (`in_progress`, `waiting_window`).
fn wire<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The ring being worked on, in words: `2/3 early`, or `-` when none is.
fn current_ring(d: &DeploymentView) -> String {
    d.current_ring
        .and_then(|i| d.rings.iter().find(|r| r.index == i))
        .map(|r| format!("{}/{} {}", r.index + 1, d.rings.len(), r.name))
        .unwrap_or_else(|| "-".into())
}

/// `deployments list`.
pub fn list_table(list: &[DeploymentView]) -> String {
    let rows = list
        .iter()
        .map(|d| {
            let healthy: u64 = d.rings.iter().map(|r| r.counts.healthy).sum();
            let failed: u64 = d.rings.iter().map(|r| r.counts.failed).sum();
            vec![
                d.name.clone(),
                d.state.as_str().to_owned(),
                d.manifest.clone(),
                d.groups.join(","),
                current_ring(d),
                d.hosts.to_string(),
                healthy.to_string(),
                failed.to_string(),
                stamp(d.created_at),
                d.id.to_string(),
            ]
        })
        .collect::<Vec<_>>();
    if rows.is_empty() {
        return "no deployments yet; `patchctl deployments create` starts one\n".into();
    }
    table(
        &[
            "NAME", "STATE", "MANIFEST", "GROUPS", "RING", "HOSTS", "HEALTHY", "FAILED", "CREATED",
            "ID",
        ],
        &rows,
    )
}

/// `deployments show` (and the answer of create, pause, resume, cancel).
pub fn show_text(d: &DeploymentView) -> String {
    let mut s = format!("{}\n  state:     {}\n", d.name, d.state.as_str());
    if let Some(why) = &d.reason {
        s.push_str(&format!("  reason:    {why}\n"));
    }
    s.push_str(&format!(
        "  ring:      {}\n  manifest:  {} ({})\n  groups:    {}\n  reboot:    {}\n  \
         hosts:     {}\n  created:   {} by {}\n  updated:   {}\n  id:        {}\n\n",
        current_ring(d),
        d.manifest,
        d.manifest_id,
        d.groups.join(", "),
        d.reboot.as_str(),
        d.hosts,
        stamp(d.created_at),
        d.created_by,
        stamp(d.updated_at),
        d.id,
    ));
    s.push_str(&rings_table(&d.rings));
    s
}

/// The rings with their counts by stage.
pub fn rings_table(rings: &[RingView]) -> String {
    let rows = rings
        .iter()
        .map(|r| {
            vec![
                r.index.to_string(),
                r.name.clone(),
                format!("{} %", r.percent),
                wire(&r.state),
                r.hosts.to_string(),
                r.counts.healthy.to_string(),
                r.counts.soaking.to_string(),
                r.counts.failed.to_string(),
                r.counts.in_progress.to_string(),
                r.counts.pending.to_string(),
                r.counts.skipped.to_string(),
                format!("{} %", r.max_failed_percent),
                format!("{}m", r.soak_minutes),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "RING",
            "NAME",
            "PERCENT",
            "STATE",
            "HOSTS",
            "HEALTHY",
            "SOAKING",
            "FAILED",
            "IN PROGRESS",
            "PENDING",
            "SKIPPED",
            "MAX FAILED",
            "SOAK",
        ],
        &rows,
    )
}

fn ring_name(rings: &[RingView], index: u32) -> String {
    rings
        .iter()
        .find(|r| r.index == index)
        .map(|r| r.name.clone())
        .unwrap_or_else(|| index.to_string())
}

/// `deployments hosts`.
pub fn hosts_table(rings: &[RingView], hosts: &[DeploymentHostView]) -> String {
    let rows = hosts
        .iter()
        .map(|h| {
            vec![
                h.hostname.clone(),
                ring_name(rings, h.ring),
                wire(&h.stage),
                h.packages.to_string(),
                h.detail.clone().unwrap_or_default(),
                stamp(h.updated_at),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &["HOSTNAME", "RING", "STAGE", "PACKAGES", "DETAIL", "UPDATED"],
        &rows,
    )
}

/// Who is who in the events: `ring:{index}` and `host:{id}` to names.
fn names(rings: &[RingView], hosts: &[DeploymentHostView]) -> HashMap<String, String> {
    rings
        .iter()
        .map(|r| (format!("ring:{}", r.index), r.name.clone()))
        .chain(
            hosts
                .iter()
                .map(|h| (format!("host:{}", h.host_id), h.hostname.clone())),
        )
        .collect()
}

/// The subject of an event in words: `deployment`, `ring canary`, `host web-1`.
fn subject(names: &HashMap<String, String>, e: &DeploymentEvent) -> String {
    match (e.subject.as_str(), e.host_id, e.ring) {
        ("host", Some(id), _) => format!(
            "host {}",
            names
                .get(&format!("host:{id}"))
                .cloned()
                .unwrap_or_else(|| id.to_string())
        ),
        ("ring", _, Some(i)) => format!(
            "ring {}",
            names
                .get(&format!("ring:{i}"))
                .cloned()
                .unwrap_or_else(|| i.to_string())
        ),
        (s, _, _) => s.to_owned(),
    }
}

/// `deployments events`.
pub fn events_table(names: &HashMap<String, String>, events: &[DeploymentEvent]) -> String {
    let rows = events
        .iter()
        .map(|e| {
            vec![
                stamp(e.at),
                subject(names, e),
                match &e.from {
                    Some(f) => format!("{f} -> {}", e.to),
                    None => e.to.clone(),
                },
                e.by.clone(),
                e.reason.clone().unwrap_or_default(),
            ]
        })
        .collect::<Vec<_>>();
    table(&["AT", "SUBJECT", "CHANGE", "BY", "REASON"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_are_checked_before_anything_is_sent() {
        let r = rings(&[5, 25, 100], 30, 10).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].name.as_deref(), Some("ring-1"));
        assert!(
            r.iter()
                .all(|r| r.soak_minutes == 30 && r.max_failed_percent == 10)
        );
        let one = rings(&[], 5, 20).unwrap();
        assert_eq!(
            (
                one[0].percent,
                one[0].soak_minutes,
                one[0].max_failed_percent
            ),
            (100, 5, 20)
        );
        assert!(
            rings(&[25, 5, 100], 10, 0)
                .unwrap_err()
                .contains("cumulative")
        );
        assert!(rings(&[5, 50], 10, 0).unwrap_err().contains("must be 100"));
    }

    #[test]
    fn a_refused_transition_says_what_the_state_allows() {
        let h = conflict_hint("resume", "dec");
        assert!(h.contains("only a paused deployment"), "{h}");
        assert!(h.contains("patchctl deployments show dec"), "{h}");
        assert!(conflict_hint("cancel", "x").contains("final"));
    }

    #[test]
    fn reboot_policies_parse() {
        assert_eq!(reboot_policy("never"), Ok(RebootPolicy::Never));
        assert_eq!(reboot_policy("if_required"), Ok(RebootPolicy::IfRequired));
        assert!(reboot_policy("always").is_err());
    }
}
