//! `patchctl approvals ...` and `patchctl manifests ...`: approvals of updates for a
//! group (named, or a host's available ones), the rules that approve on their own, and
//! manifests that freeze a group's approvals into exact versions.

use clap::Subcommand;
use http::Method;
use patchctl_proto::policy::approvals::{
    ApprovalSource, ApprovalView, ApproveOutcome, ApproveRequest, ManifestRequest,
    ManifestSignatureRequest, ManifestSignatureView, ManifestView, MinSeverity, RuleRequest,
    RuleView, UpdateItem,
};

use crate::client::{Api, Conn, enc};
use crate::output::{self, table};

/// `patchctl approvals ...`.
#[derive(Subcommand)]
pub enum ApprovalsCmd {
    /// List the approvals (active ones, newest first).
    List {
        /// Only this group's (name or id).
        #[arg(long)]
        group: Option<String>,
        /// Withdrawn approvals too.
        #[arg(long)]
        all: bool,
    },
    /// Approve updates for a group: a host's available updates (`--host`, with
    /// `--security-only` for its security updates) and/or named ones (`--package`).
    Add {
        /// The group (name or id); `all` is every host.
        #[arg(long)]
        group: String,
        /// Approve what this host (name or id) can update to now.
        #[arg(long)]
        host: Option<String>,
        /// With --host: only its security updates.
        #[arg(long)]
        security_only: bool,
        /// The ecosystem of the --package updates (`Debian:12`, `AlmaLinux:9`).
        #[arg(long)]
        ecosystem: Option<String>,
        /// An update as NAME=VERSION (repeat for more).
        #[arg(long = "package", value_name = "NAME=VERSION")]
        packages: Vec<String>,
    },
    /// Withdraw an approval (by id).
    Revoke {
        /// Approval id (`patchctl approvals list`).
        id: String,
    },
    /// Rules that approve on their own.
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
    },
    /// Make your own approver key pair: PATH.key (secret, 0600, stays with you) and
    /// PATH.pub (give it to whoever runs `patchctl admin approvers add`).
    Keygen {
        /// Path without extension.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Sign a manifest with your approver key: agents of an organisation that requires
    /// it install only what an approver signed (the two-person rule).
    Sign {
        /// The manifest (name or id).
        #[arg(long)]
        manifest: String,
        /// Your approver key (PATH.key from `patchctl approvals keygen`).
        #[arg(long)]
        key: std::path::PathBuf,
    },
}

/// `patchctl approvals rules ...`.
#[derive(Subcommand)]
pub enum RulesCmd {
    /// List the rules.
    List,
    /// Create a rule: approve the group's updates of a severity or above, N days after
    /// the platform first saw them (every family: the severity is the CVE data's).
    Create {
        /// Name (letters, digits, `._:/=-`).
        name: String,
        /// The group (name or id).
        #[arg(long)]
        group: String,
        /// The lowest severity approved: any, low, medium, high or critical.
        #[arg(long, value_parser = parse_severity)]
        min_severity: MinSeverity,
        /// Days after the update was first seen available.
        #[arg(long)]
        after_days: u32,
        /// Every update, not only security updates.
        #[arg(long)]
        all_updates: bool,
    },
    /// Delete a rule (its approvals stay).
    Delete {
        /// Rule name or id.
        rule: String,
    },
    /// Run every rule now (they also run every 10 minutes).
    Run,
}

/// `patchctl manifests ...`.
#[derive(Subcommand)]
pub enum ManifestsCmd {
    /// List the manifests, newest first.
    List,
    /// Show a manifest's exact versions.
    Show {
        /// Manifest name or id.
        manifest: String,
    },
    /// Freeze a group's active approvals into a manifest (per package, the highest
    /// approved version).
    Create {
        /// Name (letters, digits, `._:/=-`).
        name: String,
        /// The group (name or id).
        #[arg(long)]
        group: String,
    },
}

fn parse_severity(s: &str) -> Result<MinSeverity, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
        .map_err(|_| format!("{s:?}: use any, low, medium, high or critical"))
}

fn parse_packages(ecosystem: Option<&str>, packages: &[String]) -> anyhow::Result<Vec<UpdateItem>> {
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    let Some(eco) = ecosystem else {
        anyhow::bail!(
            "--package needs --ecosystem (the hosts' release, as `patchctl hosts show` names it: Debian:12, AlmaLinux:9)"
        );
    };
    packages
        .iter()
        .map(|p| match p.split_once('=') {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => Ok(UpdateItem {
                ecosystem: eco.to_owned(),
                name: name.to_owned(),
                version: version.to_owned(),
            }),
            _ => anyhow::bail!("--package {p:?}: write NAME=VERSION (openssl=3.0.15-1~deb12u1)"),
        })
        .collect()
}

fn source(a: &ApprovalView) -> String {
    match &a.source {
        ApprovalSource::Manual => a.approved_by.clone(),
        ApprovalSource::Rule { rule, .. } => format!("rule {rule}"),
    }
}

fn approvals_table(list: &[ApprovalView]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                a.group.clone(),
                a.item.ecosystem.clone(),
                a.item.name.clone(),
                a.item.version.clone(),
                source(a),
                output::ago(Some(a.approved_at)),
                match &a.revoked_at {
                    Some(t) => format!("withdrawn {}", output::ago(Some(*t))),
                    None => "active".into(),
                },
                a.id.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "GROUP",
            "ECOSYSTEM",
            "PACKAGE",
            "VERSION",
            "BY",
            "WHEN",
            "STATE",
            "ID",
        ],
        &rows,
    )
}

fn rules_table(list: &[RuleView]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.group.clone(),
                if r.security_only { "security" } else { "all" }.into(),
                serde_json::to_value(r.min_severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                format!("{}d", r.after_days),
                output::ago(r.last_run_at),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "GROUP",
            "UPDATES",
            "MIN SEVERITY",
            "AFTER",
            "LAST RUN",
        ],
        &rows,
    )
}

fn manifest_text(m: &ManifestView) -> String {
    let mut s = format!(
        "manifest {} (group {}, {} packages, by {}, {})\n",
        m.name,
        m.group,
        m.item_count,
        m.created_by,
        output::ago(Some(m.created_at))
    );
    let rows: Vec<Vec<String>> = m
        .items
        .iter()
        .map(|i| vec![i.ecosystem.clone(), i.name.clone(), i.version.clone()])
        .collect();
    if !rows.is_empty() {
        s.push_str(&table(&["ECOSYSTEM", "PACKAGE", "VERSION"], &rows));
    }
    s
}

/// Runs an `approvals` subcommand.
pub async fn run(conn: &Conn, cmd: ApprovalsCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        ApprovalsCmd::List { group, all } => {
            let mut path = format!("/api/v1/approvals?all={all}");
            if let Some(g) = group {
                path.push_str(&format!("&group={}", enc(&g)));
            }
            let list: Vec<ApprovalView> = api.get(&path).await?;
            output::emit(conn.output, &list, |l| approvals_table(l))?;
        }
        ApprovalsCmd::Add {
            group,
            host,
            security_only,
            ecosystem,
            packages,
        } => {
            let req = ApproveRequest {
                group,
                updates: parse_packages(ecosystem.as_deref(), &packages)?,
                from_host: host,
                security_only,
            };
            let out: ApproveOutcome = api
                .call(Method::POST, "/api/v1/approvals", Some(&req))
                .await?;
            output::emit(conn.output, &out, |o| {
                let mut s = format!(
                    "{} updates approved ({} were approved already)\n",
                    o.approved.len(),
                    o.already
                );
                if !o.approved.is_empty() {
                    s.push_str(&approvals_table(&o.approved));
                }
                s
            })?;
        }
        ApprovalsCmd::Revoke { id } => {
            let a: ApprovalView = api
                .post(&format!("/api/v1/approvals/{}/revoke", enc(&id)))
                .await?;
            output::emit(conn.output, &a, |a| {
                format!(
                    "approval of {} {} ({}) for group {} withdrawn\n",
                    a.item.name, a.item.version, a.item.ecosystem, a.group
                )
            })?;
        }
        ApprovalsCmd::Rules { cmd } => rules(conn, &api, cmd).await?,
        ApprovalsCmd::Keygen { out } => {
            let key = patchctl_release::SecretKey::from_seed(
                patchctl_release::KeyRole::Approver,
                crate::keyfiles::random_seed()?,
            );
            let (secret, public) = crate::keyfiles::write_pair(&out, &key)?;
            output::text(&format!(
                "approver key {}: secret {} (0600, keep it yourself), public {}\n{}\n",
                key.public().key_id(),
                secret.display(),
                public.display(),
                key.public().to_line()
            ));
        }
        ApprovalsCmd::Sign { manifest, key } => {
            let key = crate::keyfiles::read_secret(&key, patchctl_release::KeyRole::Approver)?;
            let m: ManifestView = api
                .get(&format!("/api/v1/manifests/{}", enc(&manifest)))
                .await?;
            let me: patchctl_proto::access::OperatorIdentity = api.get("/api/v1/whoami").await?;
            let org = me.org_id;
            let approval = patchctl_proto::signing::ManifestApproval {
                kind: patchctl_proto::signing::MANIFEST_APPROVAL_KIND.into(),
                org,
                manifest: m.id,
                name: m.name.clone(),
                items: m
                    .items
                    .iter()
                    .map(|i| patchctl_proto::signing::ApprovedItem {
                        ecosystem: i.ecosystem.clone(),
                        name: i.name.clone(),
                        version: i.version.clone(),
                    })
                    .collect(),
                created: chrono::Utc::now(),
            };
            let signed = patchctl_release::command::approval::sign_approval(&key, &approval)?;
            let v: ManifestSignatureView = api
                .call(
                    Method::POST,
                    &format!("/api/v1/manifests/{}/signatures", enc(&m.id.to_string())),
                    Some(&ManifestSignatureRequest { signed }),
                )
                .await?;
            output::emit(conn.output, &v, |v| {
                format!(
                    "manifest {} ({} updates) signed by approver {} (key {})\n",
                    m.name, m.item_count, v.approver, v.key_id
                )
            })?;
        }
    }
    Ok(())
}

async fn rules(conn: &Conn, api: &Api, cmd: RulesCmd) -> anyhow::Result<()> {
    match cmd {
        RulesCmd::List => {
            let list: Vec<RuleView> = api.get("/api/v1/approval-rules").await?;
            output::emit(conn.output, &list, |l| rules_table(l))?;
        }
        RulesCmd::Create {
            name,
            group,
            min_severity,
            after_days,
            all_updates,
        } => {
            let req = RuleRequest {
                name,
                group,
                security_only: !all_updates,
                min_severity,
                after_days,
            };
            let r: RuleView = api
                .call(Method::POST, "/api/v1/approval-rules", Some(&req))
                .await?;
            output::emit(conn.output, &r, |r| {
                format!(
                    "rule {} created\n{}",
                    r.name,
                    rules_table(std::slice::from_ref(r))
                )
            })?;
        }
        RulesCmd::Delete { rule } => {
            let r: RuleView = api
                .call::<(), _>(
                    Method::DELETE,
                    &format!("/api/v1/approval-rules/{}", enc(&rule)),
                    None,
                )
                .await?;
            output::emit(conn.output, &r, |r| {
                format!("rule {} deleted; its approvals stay\n", r.name)
            })?;
        }
        RulesCmd::Run => {
            let out: serde_json::Value = api.post("/api/v1/approval-rules/run").await?;
            output::emit(conn.output, &out, |o| {
                format!("the rules approved {} updates\n", o["approved"])
            })?;
        }
    }
    Ok(())
}

/// Runs a `manifests` subcommand.
pub async fn run_manifests(conn: &Conn, cmd: ManifestsCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        ManifestsCmd::List => {
            let list: Vec<ManifestView> = api.get("/api/v1/manifests").await?;
            output::emit(conn.output, &list, |l| {
                let rows: Vec<Vec<String>> = l
                    .iter()
                    .map(|m| {
                        vec![
                            m.name.clone(),
                            m.group.clone(),
                            m.item_count.to_string(),
                            m.created_by.clone(),
                            output::ago(Some(m.created_at)),
                        ]
                    })
                    .collect();
                table(&["NAME", "GROUP", "PACKAGES", "BY", "WHEN"], &rows)
            })?;
        }
        ManifestsCmd::Show { manifest } => {
            let m: ManifestView = api
                .get(&format!("/api/v1/manifests/{}", enc(&manifest)))
                .await?;
            output::emit(conn.output, &m, manifest_text)?;
        }
        ManifestsCmd::Create { name, group } => {
            let m: ManifestView = api
                .call(
                    Method::POST,
                    "/api/v1/manifests",
                    Some(&ManifestRequest { name, group }),
                )
                .await?;
            output::emit(conn.output, &m, manifest_text)?;
        }
    }
    Ok(())
}
