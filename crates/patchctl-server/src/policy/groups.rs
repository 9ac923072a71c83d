//! Groups and host tags: validation, the built-in group `all` kept as it is, group
//! references by name or id, and views with the number of hosts each group holds now.

use chrono::Utc;
use patchctl_proto::policy::groups::{
    GroupRequest, GroupView, HostTags, validate_group_name, validate_tags,
};
use patchctl_storage::{Group, NewGroup};
use uuid::Uuid;

use crate::AppState;
use crate::access::Principal;
use crate::error::ApiError;

/// The view of `g` holding `hosts` hosts.
pub fn view(g: &Group, hosts: u64) -> GroupView {
    GroupView {
        id: g.id,
        name: g.name.clone(),
        description: g.description.clone(),
        selector: g.selector.clone(),
        host_count: hosts,
        created_by: g.created_by.clone(),
        created_at: g.created_at,
        updated_at: g.updated_at,
    }
}

/// The group `reference` names (its id or its name) in `org`, or 404 saying how to
/// find one.
pub async fn resolve(st: &AppState, org: Uuid, reference: &str) -> Result<Group, ApiError> {
    let found = match Uuid::parse_str(reference) {
        Ok(id) => st.store.group(org, id).await?,
        Err(_) => st.store.group_by_name(org, reference).await?,
    };
    found.ok_or_else(|| {
        ApiError::not_found(format!(
            "no group {reference:?}; `patchctl groups list` shows the groups"
        ))
    })
}

/// Every group of the organisation, by name, with its size.
pub async fn list(st: &AppState, org: Uuid) -> Result<Vec<GroupView>, ApiError> {
    let groups = st.store.list_groups(org).await?;
    let sizes = st.store.group_sizes(org, &groups).await?;
    Ok(groups
        .iter()
        .map(|g| view(g, sizes.get(&g.id).copied().unwrap_or(0)))
        .collect())
}

/// One group with its size.
pub async fn show(st: &AppState, org: Uuid, reference: &str) -> Result<GroupView, ApiError> {
    let g = resolve(st, org, reference).await?;
    size_view(st, org, &g).await
}

async fn size_view(st: &AppState, org: Uuid, g: &Group) -> Result<GroupView, ApiError> {
    let sizes = st.store.group_sizes(org, std::slice::from_ref(g)).await?;
    Ok(view(g, sizes.get(&g.id).copied().unwrap_or(0)))
}

fn checked(by: &Principal, req: GroupRequest) -> Result<NewGroup, ApiError> {
    validate_group_name(&req.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    req.selector
        .validate()
        .map_err(|e| ApiError::bad_request(format!("selector.{e}")))?;
    if req.description.chars().count() > 500 {
        return Err(ApiError::bad_request("description: at most 500 characters"));
    }
    Ok(NewGroup {
        name: req.name,
        description: req.description,
        selector: req.selector,
        actor: by.label(),
        now: Utc::now(),
    })
}

fn builtin_refused(g: &Group, what: &str) -> ApiError {
    ApiError::conflict(format!(
        "the group {:?} holds every host and cannot be {what}; create a group of your own \
         (`patchctl groups create`)",
        g.name
    ))
}

/// Creates a group.
pub async fn create(
    st: &AppState,
    by: &Principal,
    req: GroupRequest,
) -> Result<GroupView, ApiError> {
    let new = checked(by, req)?;
    let g = st.store.create_group(by.org_id, &new).await?;
    size_view(st, by.org_id, &g).await
}

/// Replaces a group's name, description and selector (not the built-in `all`).
pub async fn update(
    st: &AppState,
    by: &Principal,
    reference: &str,
    req: GroupRequest,
) -> Result<GroupView, ApiError> {
    let g = resolve(st, by.org_id, reference).await?;
    if g.is_builtin() {
        return Err(builtin_refused(&g, "changed"));
    }
    let new = checked(by, req)?;
    let g = st
        .store
        .update_group(by.org_id, g.id, &new)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no group {reference:?}")))?;
    size_view(st, by.org_id, &g).await
}

/// Deletes a group (not the built-in `all`); the deleted group's view.
pub async fn delete(st: &AppState, by: &Principal, reference: &str) -> Result<GroupView, ApiError> {
    let g = resolve(st, by.org_id, reference).await?;
    if g.is_builtin() {
        return Err(builtin_refused(&g, "deleted"));
    }
    let v = size_view(st, by.org_id, &g).await?;
    if !st.store.delete_group(by.org_id, g.id).await? {
        return Err(ApiError::not_found(format!("no group {reference:?}")));
    }
    Ok(v)
}

/// A host's tags and the groups it is in now.
pub async fn host_tags(st: &AppState, org: Uuid, host: Uuid) -> Result<HostTags, ApiError> {
    let facts = st.store.host_facts(org, Some(host)).await?.pop();
    let Some(facts) = facts else {
        return Err(ApiError::not_found(
            "the host is revoked or unknown; revoked hosts carry no tags",
        ));
    };
    let groups = st.store.list_groups(org).await?;
    Ok(HostTags {
        tags: facts.facts.tags.clone(),
        agent_tags: facts.facts.agent_tags.clone(),
        groups: groups
            .iter()
            .filter(|g| g.selector.matches(&facts.facts))
            .map(|g| g.name.clone())
            .collect(),
    })
}

/// Replaces a host's operator-set tags.
pub async fn set_host_tags(
    st: &AppState,
    org: Uuid,
    host: Uuid,
    mut tags: Vec<String>,
) -> Result<HostTags, ApiError> {
    validate_tags("tags", &tags).map_err(|e| ApiError::bad_request(e.to_string()))?;
    tags.sort();
    if !st.store.set_host_tags(org, host, &tags).await? {
        return Err(ApiError::not_found("no such host"));
    }
    host_tags(st, org, host).await
}
