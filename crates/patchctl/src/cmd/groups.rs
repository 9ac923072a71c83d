//! `patchctl groups ...`: groups of hosts (selectors over operator tags, agent tags and
//! os-release facts) and the operator tags of a host, over the operator API.

use clap::{Args, Subcommand};
use http::Method;
use patchctl_proto::policy::groups::{GroupRequest, GroupSelector, GroupView, HostTags};

use crate::client::{Api, Conn, enc};
use crate::output::{self, table};

/// `patchctl groups ...`.
#[derive(Subcommand)]
pub enum GroupsCmd {
    /// List the groups with the number of hosts each holds now.
    List,
    /// Show one group (name or id).
    Show {
        /// Group name or id.
        group: String,
    },
    /// Create a group; a host is in it when it meets every condition given (none: every
    /// host).
    Create {
        /// Name (letters, digits, `._:/=-`).
        name: String,
        #[command(flatten)]
        def: GroupDef,
    },
    /// Replace a group's name, description and conditions.
    Update {
        /// Group name or id.
        group: String,
        /// The new name (default: unchanged).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        def: GroupDef,
    },
    /// Delete a group (not `all`).
    Delete {
        /// Group name or id.
        group: String,
    },
    /// Set a host's operator tags (replacing them; no tag clears them).
    Tag {
        /// Host name or id.
        host: String,
        /// The tags (letters, digits, `._:/=-`).
        tags: Vec<String>,
    },
    /// Show a host's tags (its own and its agent's) and the groups it is in.
    Host {
        /// Host name or id.
        host: String,
    },
}

/// A group's description and conditions.
#[derive(Args, Debug, Clone)]
pub struct GroupDef {
    /// What the group is for.
    #[arg(long, default_value = "")]
    description: String,
    /// Hosts carrying this operator tag (repeat: all of them).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Hosts whose agent config carries this tag (repeat: all of them).
    #[arg(long = "agent-tag", value_name = "TAG")]
    agent_tags: Vec<String>,
    /// Hosts whose os-release ID or ID_LIKE is this (`debian`, `rhel`).
    #[arg(long)]
    os: Option<String>,
    /// Hosts whose VERSION_ID is this, or starts with it and a dot (`12`, `9`, `22.04`).
    #[arg(long)]
    os_release: Option<String>,
}

impl GroupDef {
    fn request(self, name: String) -> GroupRequest {
        GroupRequest {
            name,
            description: self.description,
            selector: GroupSelector {
                tags: self.tags,
                agent_tags: self.agent_tags,
                os: self.os,
                os_release: self.os_release,
            },
        }
    }
}

fn conditions(s: &GroupSelector) -> String {
    let mut parts = Vec::new();
    for t in &s.tags {
        parts.push(format!("tag {t}"));
    }
    for t in &s.agent_tags {
        parts.push(format!("agent tag {t}"));
    }
    if let Some(os) = &s.os {
        parts.push(format!("os {os}"));
    }
    if let Some(r) = &s.os_release {
        parts.push(format!("release {r}"));
    }
    if parts.is_empty() {
        "every host".into()
    } else {
        parts.join(", ")
    }
}

fn list_table(groups: &[GroupView]) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                g.host_count.to_string(),
                conditions(&g.selector),
                g.description.clone(),
                g.id.to_string(),
            ]
        })
        .collect();
    table(&["NAME", "HOSTS", "CONDITIONS", "DESCRIPTION", "ID"], &rows)
}

/// Runs a `groups` subcommand.
pub async fn run(conn: &Conn, cmd: GroupsCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        GroupsCmd::List => {
            let groups: Vec<GroupView> = api.get("/api/v1/groups").await?;
            output::emit(conn.output, &groups, |g| list_table(g))?;
        }
        GroupsCmd::Show { group } => {
            let g: GroupView = api.get(&format!("/api/v1/groups/{}", enc(&group))).await?;
            output::emit(conn.output, &g, |g| list_table(std::slice::from_ref(g)))?;
        }
        GroupsCmd::Create { name, def } => {
            let g: GroupView = api
                .call(Method::POST, "/api/v1/groups", Some(&def.request(name)))
                .await?;
            output::emit(conn.output, &g, |g| {
                format!(
                    "group {} created: {} ({} hosts now)\n",
                    g.name,
                    conditions(&g.selector),
                    g.host_count
                )
            })?;
        }
        GroupsCmd::Update { group, name, def } => {
            let req = def.request(name.unwrap_or_else(|| group.clone()));
            let g: GroupView = api
                .call(
                    Method::PUT,
                    &format!("/api/v1/groups/{}", enc(&group)),
                    Some(&req),
                )
                .await?;
            output::emit(conn.output, &g, |g| {
                format!(
                    "group {} now holds: {} ({} hosts now)\n",
                    g.name,
                    conditions(&g.selector),
                    g.host_count
                )
            })?;
        }
        GroupsCmd::Delete { group } => {
            let g: GroupView = api
                .call::<(), _>(
                    Method::DELETE,
                    &format!("/api/v1/groups/{}", enc(&group)),
                    None,
                )
                .await?;
            output::emit(conn.output, &g, |g| format!("group {} deleted\n", g.name))?;
        }
        GroupsCmd::Tag { host, tags } => {
            let req = HostTags {
                tags,
                agent_tags: Vec::new(),
                groups: Vec::new(),
            };
            let t: HostTags = api
                .call(
                    Method::PUT,
                    &format!("/api/v1/hosts/{}/tags", enc(&host)),
                    Some(&req),
                )
                .await?;
            output::emit(conn.output, &t, |t| tags_text(&host, t))?;
        }
        GroupsCmd::Host { host } => {
            let t: HostTags = api
                .get(&format!("/api/v1/hosts/{}/tags", enc(&host)))
                .await?;
            output::emit(conn.output, &t, |t| tags_text(&host, t))?;
        }
    }
    Ok(())
}

fn tags_text(host: &str, t: &HostTags) -> String {
    let or_none = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.join(" ")
        }
    };
    format!(
        "{host}\n  tags:       {}\n  agent tags: {}\n  groups:     {}\n",
        or_none(&t.tags),
        or_none(&t.agent_tags),
        or_none(&t.groups)
    )
}
