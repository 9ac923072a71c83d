//! `patchctl webhooks ...`: the organisation's webhook subscriptions, over the operator
//! API: list, show, create, update, delete, rotate-secret, deliveries, test. A secret
//! is printed once, when the subscription is created or its secret rotated.

use clap::Subcommand;
use http::Method;
use patchctl_proto::policy::webhooks::{
    CreateWebhook, EventSeverity, EventType, RotateWebhookSecret, UpdateWebhook, Webhook,
    WebhookDelivery, WebhookTestQueued, WebhookWithSecret,
};

use crate::client::{Api, Conn, enc, parse_duration};
use crate::output::{self, Format, table};

/// `patchctl webhooks ...`.
#[derive(Subcommand)]
pub enum WebhooksCmd {
    /// List the webhook subscriptions.
    List,
    /// Show one subscription (by id or name).
    Show {
        /// Webhook id or name.
        webhook: String,
    },
    /// Create a subscription; its signing secret is printed this once.
    Create {
        /// A name, unique in the organisation.
        #[arg(long)]
        name: String,
        /// Where to POST: https://..., or http:// inside the platform's
        /// webhook_allow_networks.
        #[arg(long)]
        url: String,
        /// An event type to send (repeat; default: every type): host.enrolled,
        /// host.offline, host.revoked, command.succeeded, command.failed,
        /// deployment.ring_completed, deployment.halted, deployment.completed,
        /// finding.new, deadline.missed.
        #[arg(long = "event", value_name = "TYPE", value_parser = parse_event)]
        events: Vec<EventType>,
        /// finding.new only at or above this severity (low, medium, high, critical, ...).
        #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
        min_severity: Option<EventSeverity>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Change a subscription: what is given changes.
    Update {
        /// Webhook id or name.
        webhook: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New URL.
        #[arg(long)]
        url: Option<String>,
        /// New event filter (repeat); replaces the old one.
        #[arg(long = "event", value_name = "TYPE", value_parser = parse_event)]
        events: Vec<EventType>,
        /// Send every event type again.
        #[arg(long, conflicts_with = "events")]
        all_events: bool,
        /// New minimum severity of finding.new.
        #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
        min_severity: Option<EventSeverity>,
        /// Drop the minimum severity.
        #[arg(long, conflicts_with = "min_severity")]
        no_min_severity: bool,
        /// Enable it.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Disable it (messages wait until it is enabled).
        #[arg(long)]
        disable: bool,
    },
    /// Delete a subscription with its queued messages and delivery log.
    Delete {
        /// Webhook id or name.
        webhook: String,
    },
    /// A new signing secret, printed this once; the previous one keeps signing beside
    /// it for --grace (default 24h).
    RotateSecret {
        /// Webhook id or name.
        webhook: String,
        /// How long the previous secret keeps signing, such as 1h or 2d; 0 for not at all.
        #[arg(long, value_name = "DURATION", value_parser = parse_grace)]
        grace: Option<u64>,
    },
    /// The messages sent to a subscription with each attempt, newest first.
    Deliveries {
        /// Webhook id or name.
        webhook: String,
        /// At most this many messages.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Queue a `webhook.test` message to a subscription.
    Test {
        /// Webhook id or name.
        webhook: String,
    },
}

fn parse_event(s: &str) -> Result<EventType, String> {
    EventType::parse(s).ok_or_else(|| {
        let all: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        format!("unknown event type {s:?}; use one of {}", all.join(", "))
    })
}

fn parse_severity(s: &str) -> Result<EventSeverity, String> {
    EventSeverity::parse(s).ok_or_else(|| {
        format!("unknown severity {s:?}; use unknown, negligible, low, medium, high or critical")
    })
}

fn parse_grace(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_duration(s)
}

/// Runs a `webhooks` subcommand.
pub async fn run(conn: &Conn, cmd: WebhooksCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let path = |w: &str, rest: &str| format!("/api/v1/webhooks/{}{rest}", enc(w));
    match cmd {
        WebhooksCmd::List => {
            let hooks: Vec<Webhook> = api.get("/api/v1/webhooks").await?;
            output::emit(conn.output, &hooks, |h| list_table(h))?;
            if conn.output == Format::Table && hooks.is_empty() {
                output::note(
                    "no webhooks: create one with `patchctl webhooks create --name NAME --url URL`",
                );
            }
        }
        WebhooksCmd::Show { webhook } => {
            let h: Webhook = api.get(&path(&webhook, "")).await?;
            output::emit(conn.output, &h, |h| list_table(std::slice::from_ref(h)))?;
        }
        WebhooksCmd::Create {
            name,
            url,
            events,
            min_severity,
            disabled,
        } => {
            let req = CreateWebhook {
                name,
                url,
                events,
                min_severity,
                enabled: Some(!disabled),
            };
            let c: WebhookWithSecret = api
                .call(Method::POST, "/api/v1/webhooks", Some(&req))
                .await?;
            output::emit(conn.output, &c, |c| secret_text("created", c))?;
        }
        WebhooksCmd::Update {
            webhook,
            name,
            url,
            events,
            all_events,
            min_severity,
            no_min_severity,
            enable,
            disable,
        } => {
            let req = UpdateWebhook {
                name,
                url,
                events: if all_events {
                    Some(Vec::new())
                } else if events.is_empty() {
                    None
                } else {
                    Some(events)
                },
                min_severity,
                clear_min_severity: no_min_severity,
                enabled: if enable {
                    Some(true)
                } else if disable {
                    Some(false)
                } else {
                    None
                },
            };
            let h: Webhook = api
                .call(Method::PUT, &path(&webhook, ""), Some(&req))
                .await?;
            output::emit(conn.output, &h, |h| list_table(std::slice::from_ref(h)))?;
        }
        WebhooksCmd::Delete { webhook } => {
            api.call::<(), ()>(Method::DELETE, &path(&webhook, ""), None)
                .await?;
            output::emit(
                conn.output,
                &serde_json::json!({"deleted": webhook}),
                |_| format!("webhook {webhook} deleted, with its queued messages and log\n"),
            )?;
        }
        WebhooksCmd::RotateSecret { webhook, grace } => {
            let req = RotateWebhookSecret { grace_secs: grace };
            let c: WebhookWithSecret = api
                .call(Method::POST, &path(&webhook, "/rotate-secret"), Some(&req))
                .await?;
            output::emit(conn.output, &c, |c| {
                let old = match c.webhook.previous_secret_until {
                    Some(t) => format!(
                        "the previous secret keeps signing until {}\n",
                        t.format("%Y-%m-%d %H:%M UTC")
                    ),
                    None => String::new(),
                };
                format!("{}{old}", secret_text("rotated", c))
            })?;
        }
        WebhooksCmd::Deliveries { webhook, limit } => {
            let (items, _next): (Vec<WebhookDelivery>, _) = api
                .get_page(&format!("{}?limit={limit}", path(&webhook, "/deliveries")))
                .await?;
            output::emit(conn.output, &items, |d| deliveries_table(d))?;
        }
        WebhooksCmd::Test { webhook } => {
            let q: WebhookTestQueued = api.post(&path(&webhook, "/test")).await?;
            output::emit(conn.output, &q, |q| {
                format!(
                    "test message {} queued; `patchctl webhooks deliveries {webhook}` shows its attempts\n",
                    q.message_id
                )
            })?;
        }
    }
    Ok(())
}

fn events_text(h: &Webhook) -> String {
    if h.events.is_empty() {
        "all".to_owned()
    } else {
        h.events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn list_table(hooks: &[Webhook]) -> String {
    let rows = hooks
        .iter()
        .map(|h| {
            vec![
                h.id.to_string(),
                h.name.clone(),
                h.url.clone(),
                events_text(h),
                h.min_severity
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                if h.enabled { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &["ID", "NAME", "URL", "EVENTS", "MIN SEVERITY", "ENABLED"],
        &rows,
    )
}

fn deliveries_table(items: &[WebhookDelivery]) -> String {
    let rows = items
        .iter()
        .map(|d| {
            let last = d.log.last();
            vec![
                d.message_id.clone(),
                d.event_type.clone(),
                d.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                d.state.as_str().to_owned(),
                d.attempts.to_string(),
                last.and_then(|a| a.status)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                last.and_then(|a| a.error.clone()).unwrap_or_default(),
                d.next_attempt_at
                    .map(|t| t.format("%H:%M:%S").to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "MESSAGE",
            "EVENT",
            "QUEUED",
            "STATE",
            "ATTEMPTS",
            "STATUS",
            "LAST ERROR",
            "NEXT",
        ],
        &rows,
    )
}

fn secret_text(verb: &str, c: &WebhookWithSecret) -> String {
    format!(
        "webhook {} ({}) {verb}\nsigning secret (shown this once; verify the webhook-signature header with it):\n{}\n",
        c.webhook.name,
        c.webhook.id,
        c.secret.expose()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_and_severity_names_parse_or_say_what_is_expected() {
        assert_eq!(parse_event("finding.new"), Ok(EventType::FindingNew));
        assert!(
            parse_event("host.up")
                .unwrap_err()
                .contains("deadline.missed")
        );
        assert_eq!(parse_severity("high"), Ok(EventSeverity::High));
        assert!(parse_severity("severe").is_err());
        assert_eq!(parse_grace("0"), Ok(0));
    }
}
