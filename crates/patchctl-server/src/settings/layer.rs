//! One layer of settings (a file or the environment) and how layers merge.

use super::*;

/// One layer of settings: what a file or the environment sets (`None`: not set there).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Layer {
    pub(super) listen: Option<SocketAddr>,
    pub(super) database_url: Option<String>,
    pub(super) tls_cert: Option<PathBuf>,
    pub(super) tls_key: Option<PathBuf>,
    pub(super) heartbeat_interval_secs: Option<u64>,
    pub(super) policy_tick_secs: Option<u64>,
    pub(super) command_lease_secs: Option<u64>,
    pub(super) metrics_history_len: Option<u32>,
    pub(super) vuln_feeds: Option<Vec<Feed>>,
    pub(super) vuln_sync: Option<bool>,
    pub(super) vuln_sync_interval_secs: Option<u64>,
    pub(super) vuln_sync_dir: Option<PathBuf>,
    pub(super) vuln_ca_file: Option<PathBuf>,
    pub(super) enroll_per_address_per_min: Option<u32>,
    pub(super) enroll_per_key_per_min: Option<u32>,
    pub(super) metrics_listen: Option<SocketAddr>,
    pub(super) session_idle_secs: Option<u64>,
    pub(super) session_max_secs: Option<u64>,
    pub(super) webhook_allow_networks: Option<Vec<Cidr>>,
    pub(super) webhook_ca_file: Option<PathBuf>,
    pub(super) webhook_retry_base_secs: Option<u64>,
    pub(super) command_signing_key: Option<PathBuf>,
    pub(super) long_poll_max_secs: Option<u64>,
    pub(super) drain_secs: Option<u64>,
    pub(super) agent_per_credential_per_min: Option<u32>,
    pub(super) agent_per_address_per_min: Option<u32>,
    pub(super) max_connections: Option<u32>,
    pub(super) header_read_timeout_secs: Option<u64>,
    pub(super) idle_timeout_secs: Option<u64>,
    pub(super) body_read_timeout_secs: Option<u64>,
    pub(super) agent_requests_in_flight: Option<u32>,
}

impl Layer {
    /// `top` over `self`: what `top` sets wins.
    pub(super) fn overlay(self, top: Layer) -> Layer {
        Layer {
            listen: top.listen.or(self.listen),
            database_url: top.database_url.or(self.database_url),
            tls_cert: top.tls_cert.or(self.tls_cert),
            tls_key: top.tls_key.or(self.tls_key),
            heartbeat_interval_secs: top.heartbeat_interval_secs.or(self.heartbeat_interval_secs),
            policy_tick_secs: top.policy_tick_secs.or(self.policy_tick_secs),
            command_lease_secs: top.command_lease_secs.or(self.command_lease_secs),
            metrics_history_len: top.metrics_history_len.or(self.metrics_history_len),
            vuln_feeds: top.vuln_feeds.or(self.vuln_feeds),
            vuln_sync: top.vuln_sync.or(self.vuln_sync),
            vuln_sync_interval_secs: top.vuln_sync_interval_secs.or(self.vuln_sync_interval_secs),
            vuln_sync_dir: top.vuln_sync_dir.or(self.vuln_sync_dir),
            vuln_ca_file: top.vuln_ca_file.or(self.vuln_ca_file),
            enroll_per_address_per_min: top
                .enroll_per_address_per_min
                .or(self.enroll_per_address_per_min),
            enroll_per_key_per_min: top.enroll_per_key_per_min.or(self.enroll_per_key_per_min),
            metrics_listen: top.metrics_listen.or(self.metrics_listen),
            session_idle_secs: top.session_idle_secs.or(self.session_idle_secs),
            session_max_secs: top.session_max_secs.or(self.session_max_secs),
            webhook_allow_networks: top.webhook_allow_networks.or(self.webhook_allow_networks),
            webhook_ca_file: top.webhook_ca_file.or(self.webhook_ca_file),
            webhook_retry_base_secs: top.webhook_retry_base_secs.or(self.webhook_retry_base_secs),
            command_signing_key: top.command_signing_key.or(self.command_signing_key),
            long_poll_max_secs: top.long_poll_max_secs.or(self.long_poll_max_secs),
            drain_secs: top.drain_secs.or(self.drain_secs),
            agent_per_credential_per_min: top
                .agent_per_credential_per_min
                .or(self.agent_per_credential_per_min),
            agent_per_address_per_min: top
                .agent_per_address_per_min
                .or(self.agent_per_address_per_min),
            max_connections: top.max_connections.or(self.max_connections),
            header_read_timeout_secs: top
                .header_read_timeout_secs
                .or(self.header_read_timeout_secs),
            idle_timeout_secs: top.idle_timeout_secs.or(self.idle_timeout_secs),
            body_read_timeout_secs: top.body_read_timeout_secs.or(self.body_read_timeout_secs),
            agent_requests_in_flight: top
                .agent_requests_in_flight
                .or(self.agent_requests_in_flight),
        }
    }

    /// The settings variables among `vars`; anything else is ignored.
    pub(super) fn from_env<I, K, V>(vars: I) -> Result<Layer, SettingsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut layer = Layer::default();
        for (name, value) in vars {
            let Some(var) = ENV_VARS
                .iter()
                .copied()
                .find(|v| OsStr::new(v) == name.as_ref())
            else {
                continue;
            };
            let value = value.as_ref();
            if value.is_empty() {
                continue;
            }
            let invalid = |reason: String| SettingsError::Env { var, reason };
            // Paths may be any bytes; every other value is text.
            let text = || {
                value
                    .to_str()
                    .ok_or_else(|| invalid("it is not valid UTF-8".to_owned()))
            };
            match var {
                ENV_LISTEN => {
                    let v = text()?;
                    layer.listen = Some(v.parse().map_err(|_| {
                        invalid(format!(
                            "{v:?} is not an address; use IP:PORT such as 0.0.0.0:8443"
                        ))
                    })?);
                }
                ENV_DATABASE_URL => layer.database_url = Some(text()?.to_owned()),
                ENV_TLS_CERT => layer.tls_cert = Some(PathBuf::from(value)),
                ENV_TLS_KEY => layer.tls_key = Some(PathBuf::from(value)),
                ENV_HEARTBEAT_INTERVAL_SECS => {
                    layer.heartbeat_interval_secs = Some(positive(text()?, "seconds", invalid)?);
                }
                ENV_POLICY_TICK_SECS => {
                    layer.policy_tick_secs = Some(positive(text()?, "seconds", invalid)?);
                }
                ENV_COMMAND_LEASE_SECS => {
                    layer.command_lease_secs = Some(positive(text()?, "seconds", invalid)?);
                }
                ENV_METRICS_HISTORY_LEN => {
                    layer.metrics_history_len = Some(positive(text()?, "samples", invalid)?);
                }
                ENV_VULN_FEEDS => {
                    // serde's message names the position, not the value (a feed URL may
                    // carry a token).
                    layer.vuln_feeds = Some(serde_json::from_str(text()?).map_err(|e| {
                        invalid(format!(
                            "{e}; give a JSON list such as [{{\"name\": \"osv-debian\", \"url\": \"https://...\"}}]"
                        ))
                    })?);
                }
                ENV_VULN_SYNC => {
                    layer.vuln_sync = Some(match text()? {
                        "true" | "1" | "yes" => true,
                        "false" | "0" | "no" => false,
                        v => {
                            return Err(invalid(format!("{v:?} is not true or false")));
                        }
                    });
                }
                ENV_VULN_SYNC_INTERVAL_SECS => {
                    layer.vuln_sync_interval_secs = Some(positive(text()?, "seconds", invalid)?);
                }
                ENV_ENROLL_PER_ADDRESS_PER_MIN => {
                    layer.enroll_per_address_per_min =
                        Some(positive(text()?, "attempts a minute", invalid)?);
                }
                ENV_ENROLL_PER_KEY_PER_MIN => {
                    layer.enroll_per_key_per_min =
                        Some(positive(text()?, "enrollments a minute", invalid)?);
                }
                ENV_METRICS_LISTEN => {
                    let v = text()?;
                    layer.metrics_listen = Some(v.parse().map_err(|_| {
                        invalid(format!(
                            "{v:?} is not an address; use IP:PORT such as 127.0.0.1:9464"
                        ))
                    })?);
                }
                ENV_SESSION_IDLE_SECS => {
                    layer.session_idle_secs = Some(positive(text()?, "seconds", invalid)?);
                }
                ENV_SESSION_MAX_SECS => {
                    layer.session_max_secs = Some(positive(text()?, "seconds", invalid)?);
                }
                ENV_WEBHOOK_ALLOW_NETWORKS => {
                    layer.webhook_allow_networks = Some(
                        text()?
                            .split(',')
                            .map(str::trim)
                            .filter(|c| !c.is_empty())
                            .map(|c| c.parse::<Cidr>().map_err(|e| invalid(e.to_string())))
                            .collect::<Result<_, _>>()?,
                    );
                }
                ENV_WEBHOOK_CA_FILE => layer.webhook_ca_file = Some(PathBuf::from(value)),
                ENV_COMMAND_SIGNING_KEY => layer.command_signing_key = Some(PathBuf::from(value)),
                ENV_DRAIN_SECS => {
                    layer.drain_secs = Some(text()?.parse().map_err(|_| {
                        invalid(format!("{value:?} is not a whole number of seconds"))
                    })?);
                }
                ENV_LONG_POLL_MAX_SECS => {
                    layer.long_poll_max_secs = Some(text()?.parse().map_err(|_| {
                        invalid(format!(
                            "{value:?} is not a whole number of seconds; give 0 to switch long-polls off"
                        ))
                    })?);
                }
                ENV_WEBHOOK_RETRY_BASE_SECS => {
                    layer.webhook_retry_base_secs = Some(positive(text()?, "seconds", invalid)?);
                }
                ENV_AGENT_PER_CREDENTIAL_PER_MIN => {
                    layer.agent_per_credential_per_min =
                        Some(positive(text()?, "requests a minute", invalid)?);
                }
                ENV_AGENT_PER_ADDRESS_PER_MIN => {
                    layer.agent_per_address_per_min =
                        Some(positive(text()?, "requests a minute", invalid)?);
                }
                ENV_MAX_CONNECTIONS => {
                    layer.max_connections = Some(positive(text()?, "connections", invalid)?);
                }
                ENV_HEADER_READ_TIMEOUT_SECS => {
                    layer.header_read_timeout_secs = Some(positive(text()?, "seconds", invalid)?);
                }
                ENV_IDLE_TIMEOUT_SECS => {
                    layer.idle_timeout_secs = Some(positive(text()?, "seconds", invalid)?);
                }
                ENV_BODY_READ_TIMEOUT_SECS => {
                    layer.body_read_timeout_secs = Some(positive(text()?, "seconds", invalid)?);
                }
                ENV_AGENT_REQUESTS_IN_FLIGHT => {
                    layer.agent_requests_in_flight = Some(positive(text()?, "requests", invalid)?);
                }
                _ => unreachable!("every name of ENV_VARS has its arm"),
            }
        }
        Ok(layer)
    }
}

/// A positive whole number of `unit` from an environment variable.
fn positive<T: std::str::FromStr + PartialEq + From<u8>>(
    v: &str,
    unit: &str,
    invalid: impl Fn(String) -> SettingsError,
) -> Result<T, SettingsError> {
    match v.parse::<T>() {
        Ok(n) if n != T::from(0) => Ok(n),
        _ => Err(invalid(format!(
            "{v:?} is not a positive whole number of {unit}"
        ))),
    }
}
