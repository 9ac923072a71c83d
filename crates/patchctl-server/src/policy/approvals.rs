//! Approvals, auto-approval rules and manifests: what the API and the dashboard share,
//! and the rule runner ([`run_rules`], called by the platform's policy tick and by tests
//! with the time they choose).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};
use patchctl_proto::policy::approvals::{
    ApprovalSource, ApprovalView, ApproveOutcome, ApproveRequest, MAX_ITEMS, ManifestRequest,
    ManifestView, MinSeverity, RuleRequest, RuleView, UpdateItem,
};
use patchctl_proto::policy::groups::validate_group_name;
use patchctl_proto::validate::{PackageName, PackageVersion};
use patchctl_storage::{Approval, ApprovalRule, Group, HostRow, Manifest, NewApprovals};
use uuid::Uuid;

use super::groups;
use crate::AppState;
use crate::access::Principal;
use crate::error::ApiError;

/// The ecosystem a host's packages are approved in: its release's main ecosystem
/// (`Debian:12`, `AlmaLinux:9`), as the CVE data names it.
pub fn host_ecosystem(h: &HostRow) -> String {
    patchctl_vuln::ecosystem::host_ecosystems(&h.system.os, false, None)
        .into_iter()
        .next()
        .unwrap_or_else(|| "unknown release".into())
}

fn view(a: &Approval, group_names: &HashMap<Uuid, String>) -> ApprovalView {
    ApprovalView {
        id: a.id,
        group_id: a.group_id,
        group: group_names.get(&a.group_id).cloned().unwrap_or_default(),
        item: a.item.clone(),
        source: match &a.rule {
            Some((rule_id, rule)) => ApprovalSource::Rule {
                rule_id: *rule_id,
                rule: rule.clone(),
            },
            None => ApprovalSource::Manual,
        },
        approved_by: a.approved_by.clone(),
        approved_at: a.approved_at,
        revoked_at: a.revoked.as_ref().map(|r| r.0),
        revoked_by: a.revoked.as_ref().map(|r| r.1.clone()),
    }
}

async fn group_names(st: &AppState, org: Uuid) -> Result<HashMap<Uuid, String>, ApiError> {
    Ok(st
        .store
        .list_groups(org)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect())
}

/// The organisation's approvals (of one group; active only unless `all`).
pub async fn list(
    st: &AppState,
    org: Uuid,
    group: Option<&str>,
    all: bool,
) -> Result<Vec<ApprovalView>, ApiError> {
    let group = match group {
        Some(g) => Some(groups::resolve(st, org, g).await?.id),
        None => None,
    };
    let names = group_names(st, org).await?;
    let rows = st.store.list_approvals(org, group, all).await?;
    Ok(rows.iter().map(|a| view(a, &names)).collect())
}

/// Checks one update item: a known ecosystem, a valid name, a version its family can
/// read.
pub fn check_item(item: &UpdateItem) -> Result<(), ApiError> {
    let Some(rules) = patchctl_vuln::ecosystem::rules(&item.ecosystem) else {
        return Err(ApiError::bad_request(format!(
            "ecosystem {:?} is not one PatchCTL installs into; use a host's ecosystem as \
             `patchctl hosts show` names it (`Debian:12`, `AlmaLinux:9`)",
            item.ecosystem
        )));
    };
    PackageName::parse(&item.name)
        .map_err(|e| ApiError::bad_request(format!("package name {:?}: {e}", item.name)))?;
    PackageVersion::parse(&item.version)
        .map_err(|e| ApiError::bad_request(format!("version {:?}: {e}", item.version)))?;
    rules.scheme.parse_check(&item.version).map_err(|e| {
        ApiError::bad_request(format!(
            "version {:?} of {} is not a {} version: {e}",
            item.version,
            item.name,
            rules.scheme.name()
        ))
    })?;
    Ok(())
}

/// A host's available updates as approvable items, with the highest severity of the
/// findings each fixes and whether it is a security update.
pub async fn host_candidates(
    st: &AppState,
    h: &HostRow,
) -> Result<Vec<(UpdateItem, bool, Option<String>)>, ApiError> {
    let Some(mut updates) = st.store.host_updates(h.org_id, h.id).await? else {
        return Ok(Vec::new());
    };
    st.vulns.annotate_updates(h.id, &mut updates).await;
    let ecosystem = host_ecosystem(h);
    Ok(updates
        .updates
        .iter()
        .map(|u| {
            let best = u
                .advisories
                .iter()
                .filter_map(|a| a.severity.clone())
                .max_by_key(|s| MinSeverity::rank_of(s));
            let item = UpdateItem {
                ecosystem: ecosystem.clone(),
                name: u.name.clone(),
                version: u.candidate_version.clone(),
            };
            (item, u.security, best)
        })
        .collect())
}

/// Approves the request's updates (and a host's, when it names one) for its group.
pub async fn approve(
    st: &AppState,
    by: &Principal,
    req: ApproveRequest,
) -> Result<ApproveOutcome, ApiError> {
    let group = groups::resolve(st, by.org_id, &req.group).await?;
    let mut items = req.updates;
    for i in &items {
        check_item(i)?;
    }
    if let Some(host) = &req.from_host {
        let h = crate::lookup::resolve_host(st, by.org_id, host).await?;
        let candidates = host_candidates(st, &h).await?;
        if candidates.is_empty() {
            return Err(ApiError::conflict(format!(
                "host {} has reported no available updates; run `patchctl commands queue \
                 {} check_updates` and try again after its next scan",
                h.hostname, h.hostname
            )));
        }
        items.extend(
            candidates
                .into_iter()
                .filter(|(_, security, _)| *security || !req.security_only)
                .map(|(i, _, _)| i),
        );
    } else if req.security_only {
        return Err(ApiError::bad_request(
            "security_only applies to from_host; name the host whose security updates to approve",
        ));
    }
    items.sort();
    items.dedup();
    if items.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to approve: name updates, or a host (from_host) that has some",
        ));
    }
    if items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(format!(
            "{} updates named; at most {MAX_ITEMS} per request",
            items.len()
        )));
    }
    let wanted = items.len() as u64;
    let made = st
        .store
        .approve(
            by.org_id,
            &NewApprovals {
                group_id: group.id,
                items,
                rule: None,
                actor: by.label(),
                now: Utc::now(),
            },
        )
        .await?;
    let names = HashMap::from([(group.id, group.name.clone())]);
    Ok(ApproveOutcome {
        already: wanted - made.len() as u64,
        approved: made.iter().map(|a| view(a, &names)).collect(),
    })
}

/// Withdraws an approval.
pub async fn revoke(st: &AppState, by: &Principal, id: &str) -> Result<ApprovalView, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| {
        ApiError::bad_request(format!(
            "{id:?} is not an approval id; `patchctl approvals list` shows them"
        ))
    })?;
    let a = st
        .store
        .revoke_approval(by.org_id, id, &by.label(), Utc::now())
        .await?
        .ok_or_else(|| ApiError::not_found("no active approval with that id"))?;
    Ok(view(&a, &group_names(st, by.org_id).await?))
}

fn rule_view(r: &ApprovalRule, names: &HashMap<Uuid, String>) -> RuleView {
    RuleView {
        id: r.id,
        name: r.name.clone(),
        group_id: r.group_id,
        group: names.get(&r.group_id).cloned().unwrap_or_default(),
        security_only: r.security_only,
        min_severity: r.min_severity,
        after_days: r.after_days,
        created_by: r.created_by.clone(),
        created_at: r.created_at,
        last_run_at: r.last_run_at,
    }
}

/// The organisation's rules.
pub async fn rules(st: &AppState, org: Uuid) -> Result<Vec<RuleView>, ApiError> {
    let names = group_names(st, org).await?;
    Ok(st
        .store
        .list_rules(org)
        .await?
        .iter()
        .map(|r| rule_view(r, &names))
        .collect())
}

/// Creates a rule.
pub async fn create_rule(
    st: &AppState,
    by: &Principal,
    req: RuleRequest,
) -> Result<RuleView, ApiError> {
    validate_group_name(&req.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if req.after_days > 365 {
        return Err(ApiError::bad_request(
            "after_days: at most 365 (a rule that waits longer approves nothing useful)",
        ));
    }
    let group = groups::resolve(st, by.org_id, &req.group).await?;
    let rule = ApprovalRule {
        id: Uuid::new_v4(),
        name: req.name,
        group_id: group.id,
        security_only: req.security_only,
        min_severity: req.min_severity,
        after_days: req.after_days,
        created_by: by.label(),
        created_at: Utc::now(),
        last_run_at: None,
    };
    st.store.create_rule(by.org_id, &rule).await?;
    Ok(rule_view(&rule, &HashMap::from([(group.id, group.name)])))
}

/// Deletes a rule (by id or name); its approvals stay.
pub async fn delete_rule(
    st: &AppState,
    by: &Principal,
    reference: &str,
) -> Result<RuleView, ApiError> {
    let names = group_names(st, by.org_id).await?;
    let rule = st
        .store
        .list_rules(by.org_id)
        .await?
        .into_iter()
        .find(|r| r.name == reference || r.id.to_string() == reference)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no rule {reference:?}; `patchctl approvals rules` lists them"
            ))
        })?;
    st.store.delete_rule(by.org_id, rule.id).await?;
    Ok(rule_view(&rule, &names))
}

/// Runs every rule of every organisation at `now`: each host of the rule's group offers
/// its available updates; those passing the rule (security, severity) and first seen at
/// least `after_days` before `now` are approved for the group. Answers how many
/// approvals were made.
pub async fn run_rules(st: &AppState, now: DateTime<Utc>) -> Result<u64, ApiError> {
    let mut made = 0;
    for (org, rule) in st.store.all_rules().await? {
        let Some(hosts) = st.store.group_host_ids(org, rule.group_id).await? else {
            continue;
        };
        let mut passing: BTreeSet<UpdateItem> = BTreeSet::new();
        let mut offered = Vec::new();
        for id in hosts {
            let Some(h) = st.store.host(org, id).await? else {
                continue;
            };
            for (item, security, best) in host_candidates(st, &h).await? {
                offered.push(item.clone());
                if (security || !rule.security_only) && rule.min_severity.admits(best.as_deref()) {
                    passing.insert(item);
                }
            }
        }
        offered.sort();
        offered.dedup();
        let seen = st.store.sight_updates(org, &offered, now).await?;
        let due = now - Duration::days(i64::from(rule.after_days));
        let items: Vec<UpdateItem> = passing
            .into_iter()
            .filter(|i| seen.get(i).is_some_and(|first| *first <= due))
            .collect();
        if !items.is_empty() {
            let new = NewApprovals {
                group_id: rule.group_id,
                items,
                rule: Some((rule.id, rule.name.clone())),
                actor: format!("rule {}", rule.name),
                now,
            };
            let approved = st.store.approve(org, &new).await?;
            for a in &approved {
                tracing::info!(
                    target: "audit",
                    org = %org,
                    rule = %rule.name,
                    ecosystem = %a.item.ecosystem,
                    package = %a.item.name,
                    version = %a.item.version,
                    "update approved by rule"
                );
            }
            made += approved.len() as u64;
        }
        st.store.rule_ran(org, rule.id, now).await?;
    }
    Ok(made)
}

fn manifest_view(m: &Manifest, items: Vec<UpdateItem>, group: Option<&Group>) -> ManifestView {
    ManifestView {
        id: m.id,
        name: m.name.clone(),
        group_id: m.group_id,
        group: group.map_or_else(|| m.group_name.clone(), |g| g.name.clone()),
        created_by: m.created_by.clone(),
        created_at: m.created_at,
        item_count: m.item_count,
        items,
    }
}

/// Freezes a group's active approvals into a manifest: per ecosystem and package the
/// highest approved version (in the family's own order).
pub async fn freeze(
    st: &AppState,
    by: &Principal,
    req: ManifestRequest,
) -> Result<ManifestView, ApiError> {
    validate_group_name(&req.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let group = groups::resolve(st, by.org_id, &req.group).await?;
    let approvals = st
        .store
        .list_approvals(by.org_id, Some(group.id), false)
        .await?;
    let mut best: BTreeMap<(String, String), String> = BTreeMap::new();
    for a in approvals {
        let key = (a.item.ecosystem.clone(), a.item.name.clone());
        let Some(rules) = patchctl_vuln::ecosystem::rules(&a.item.ecosystem) else {
            continue;
        };
        match best.get(&key) {
            Some(have) => {
                let newer = rules.scheme.compare(&a.item.version, have).map_err(|e| {
                    ApiError::conflict(format!(
                        "{} is approved at {} and {}, which cannot be ordered ({e}); withdraw \
                         one of them (`patchctl approvals revoke`)",
                        a.item.name, have, a.item.version
                    ))
                })?;
                if newer.is_gt() {
                    best.insert(key, a.item.version);
                }
            }
            None => {
                best.insert(key, a.item.version);
            }
        }
    }
    if best.is_empty() {
        return Err(ApiError::conflict(format!(
            "the group {:?} has no active approvals to freeze; approve updates first \
             (`patchctl approvals add`)",
            group.name
        )));
    }
    let items: Vec<UpdateItem> = best
        .into_iter()
        .map(|((ecosystem, name), version)| UpdateItem {
            ecosystem,
            name,
            version,
        })
        .collect();
    let m = Manifest {
        id: Uuid::new_v4(),
        name: req.name,
        group_id: group.id,
        group_name: group.name.clone(),
        created_by: by.label(),
        created_at: Utc::now(),
        item_count: items.len() as u64,
    };
    st.store.create_manifest(by.org_id, &m, &items).await?;
    Ok(manifest_view(&m, items, Some(&group)))
}

/// The organisation's manifests, without their items.
pub async fn manifests(st: &AppState, org: Uuid) -> Result<Vec<ManifestView>, ApiError> {
    Ok(st
        .store
        .list_manifests(org)
        .await?
        .iter()
        .map(|m| manifest_view(m, Vec::new(), None))
        .collect())
}

/// One manifest (id or name) with its items.
pub async fn manifest(st: &AppState, org: Uuid, reference: &str) -> Result<ManifestView, ApiError> {
    let (m, items) = st.store.manifest(org, reference).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no manifest {reference:?}; `patchctl manifests list` shows them"
        ))
    })?;
    Ok(manifest_view(&m, items, None))
}
