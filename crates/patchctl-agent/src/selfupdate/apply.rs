//! The steps of one self-update, in order; see the module documentation.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use http::Method;
use patchctl_net::client::HttpsClient;
use patchctl_proto::release::{
    AgentUpdateOffer, MAX_ARTIFACT_BYTES, PRODUCT_AGENT, ReleaseBundle, UpdateStep,
};
use patchctl_release::{ReleaseVersion, TrustedRoots};

use super::files::{EventLog, KnownRelease, UpdateState, file_sha256};
use super::{SelfTest, TARGET};

/// How long the whole artifact download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the staged binary's self-test may take.
const SELF_TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A refused or rolled-back version is not tried again sooner than this.
const RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What an offer came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do: already running it, self-update off, or refused recently.
    Idle,
    /// Refused before anything changed (the reason is in the event log).
    Refused,
    /// The new binary did not come up healthy; the previous one is back in place.
    RolledBack,
    /// The new binary reached the platform: replace this process with it.
    HandOver(PathBuf),
}

/// A staged, verified release.
struct Staged {
    version: String,
    sha256: String,
}

/// Applies the platform's offers to this binary.
#[derive(Debug)]
pub struct Updater {
    exe: PathBuf,
    state_dir: PathBuf,
    roots: TrustedRoots,
    confirm: Duration,
    /// Why self-update is off, when it is.
    disabled: Option<String>,
    events: EventLog,
    running: String,
    refused: HashMap<String, Instant>,
    told_disabled: bool,
}

impl Updater {
    /// The updater of the binary at `exe` (fixed now: after a swap `/proc/self/exe`
    /// names the previous file), with its state in `state_dir`. `enabled` false, or a
    /// binary not named `patchctl-agent` (the agent inside `patchctl server --dev`),
    /// turns installing off; offers are then logged once and left alone.
    pub fn new(
        exe: PathBuf,
        state_dir: &Path,
        roots: TrustedRoots,
        confirm: Duration,
        enabled: bool,
    ) -> Updater {
        let state = UpdateState::load(state_dir);
        // Only an agent that ever installed a release hashes its binary at start; one
        // that never did runs its build's version.
        let sha = (state.running.is_some() || state.trial.is_some())
            .then(|| file_sha256(&exe).ok())
            .flatten();
        let running = state.running_version(sha.as_deref());
        let disabled = if !enabled {
            Some("self_update is false in the config".to_owned())
        } else if exe.file_name().and_then(|n| n.to_str()) != Some(PRODUCT_AGENT) {
            Some(format!(
                "this agent runs inside {} (only a patchctl-agent binary updates itself)",
                exe.display()
            ))
        } else {
            None
        };
        Updater {
            exe,
            state_dir: state_dir.to_owned(),
            roots,
            confirm,
            disabled,
            events: EventLog::new(state_dir),
            running,
            refused: HashMap::new(),
            told_disabled: false,
        }
    }

    /// The version this binary reports: the signed release it is, or its build's.
    pub fn running_version(&self) -> &str {
        &self.running
    }

    /// The steps not yet delivered to the platform.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    fn staging(&self) -> PathBuf {
        self.exe.with_file_name(".patchctl-agent.staging")
    }

    /// `<binary>.previous`: the binary before the last swap.
    pub fn previous(&self) -> PathBuf {
        let mut name = self.exe.file_name().unwrap_or_default().to_owned();
        name.push(".previous");
        self.exe.with_file_name(name)
    }

    /// Acts on an offer. `stopping` turns true when the agent is asked to stop: a
    /// trial in progress then ends with the previous binary restored.
    pub async fn apply(
        &mut self,
        offer: &AgentUpdateOffer,
        client: &HttpsClient,
        bearer: Option<&str>,
        stopping: &AtomicBool,
    ) -> Outcome {
        if offer.version == self.running {
            return Outcome::Idle;
        }
        if let Some(why) = &self.disabled {
            if !self.told_disabled {
                self.told_disabled = true;
                tracing::info!(target: "audit", version = %offer.version, reason = %why, "the platform offers another agent release; not installing it");
            }
            return Outcome::Idle;
        }
        if self
            .refused
            .get(&offer.version)
            .is_some_and(|t| t.elapsed() < RETRY_AFTER)
        {
            return Outcome::Idle;
        }
        tracing::info!(target: "audit", version = %offer.version, running = %self.running, "the platform offers another agent release");
        let staged = match self.stage(offer, client, bearer).await {
            Ok(s) => s,
            Err(reason) => {
                let _ = std::fs::remove_file(self.staging());
                self.refuse(&offer.version, reason);
                return Outcome::Refused;
            }
        };
        if let Err(e) = self.swap(&staged) {
            let _ = std::fs::remove_file(self.staging());
            self.refuse(
                &staged.version,
                format!(
                    "cannot put the new binary in place in {}: {e}; the running binary is unchanged",
                    self.exe.parent().unwrap_or(Path::new("/")).display()
                ),
            );
            return Outcome::Refused;
        }
        self.trial(staged, stopping).await
    }

    fn refuse(&mut self, version: &str, reason: String) {
        self.events
            .push(UpdateStep::Refused, version, Some(reason.clone()));
        self.refused.insert(version.to_owned(), Instant::now());
    }

    /// Steps 1–4: fetch and verify, download into the staging file, check, self-test,
    /// record the accepted version. Any failure is the reason for a refusal.
    async fn stage(
        &mut self,
        offer: &AgentUpdateOffer,
        client: &HttpsClient,
        bearer: Option<&str>,
    ) -> Result<Staged, String> {
        ReleaseVersion::parse(&offer.version).map_err(|e| e.to_string())?;
        if offer.target != TARGET {
            return Err(format!(
                "the platform offered a release for {:?}, but this agent runs on {TARGET:?}",
                offer.target
            ));
        }
        let base = format!("/api/v1/agent/releases/{}/{}", offer.version, offer.target);
        let bundle: ReleaseBundle = client
            .json::<(), _>(Method::GET, &base, bearer, None)
            .await
            .map_err(|e| format!("cannot fetch the release's manifest: {e}"))?;
        let verified = patchctl_release::verify_bundle(&self.roots, &bundle, Utc::now())
            .map_err(|e| e.to_string())?;
        verified
            .expect(PRODUCT_AGENT, TARGET, Some(&offer.version))
            .map_err(|e| e.to_string())?;
        let state = UpdateState::load(&self.state_dir);
        verified
            .newer_than(&state.highest(&self.running))
            .map_err(|e| e.to_string())?;
        let size = verified.manifest.size.min(MAX_ARTIFACT_BYTES);
        let staging = self.staging();
        let _ = std::fs::remove_file(&staging);
        let dir = staging.parent().unwrap_or(Path::new("/")).to_owned();
        let write_err = |e: std::io::Error| {
            format!(
                "cannot write the staging file {}: {e}; free space in {} (the download needs {size} bytes) or fix its permissions",
                staging.display(),
                dir.display()
            )
        };
        {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o700)
                .open(&staging)
                .map_err(write_err)?;
            let mut file = tokio::fs::File::from_std(file);
            let got = client
                .fetch_to(
                    &format!("{base}/artifact"),
                    bearer,
                    &mut file,
                    size,
                    DOWNLOAD_TIMEOUT,
                )
                .await
                .map_err(|e| match e {
                    patchctl_net::fetch::FetchError::Write(io) => write_err(io),
                    other => format!("download failed: {other}"),
                })?;
            file.sync_all().await.map_err(write_err)?;
            self.events.push(
                UpdateStep::Downloaded,
                &offer.version,
                Some(format!("{got} bytes into {}", staging.display())),
            );
        }
        let sha = file_sha256(&staging).map_err(write_err)?;
        let len = std::fs::metadata(&staging).map_err(write_err)?.len();
        verified
            .check_digest(len, &sha)
            .map_err(|e| e.to_string())?;
        // Only a native executable is ever started: a script, even a signed one, would
        // be run by an interpreter (a shell), which the agent never starts.
        let mut head = [0u8; 20];
        let n = std::io::Read::read(
            &mut std::fs::File::open(&staging).map_err(write_err)?,
            &mut head,
        )
        .map_err(write_err)?;
        super::native_executable(&head[..n], TARGET)?;
        let test = crate::exec::own::self_test(&staging, SELF_TEST_TIMEOUT)
            .await
            .map_err(|e| format!("the new binary's self-test did not run: {e}"))?;
        let said: Option<SelfTest> = serde_json::from_str(test.stdout.trim()).ok();
        match said {
            Some(t)
                if test.success()
                    && t.product == PRODUCT_AGENT
                    && t.target == TARGET
                    && t.roots > 0 => {}
            Some(t) if test.success() && t.roots == 0 => {
                return Err("the new binary trusts no release root, so it could never be updated again; refused".into());
            }
            _ => {
                let said = crate::text::truncate(test.stderr.trim(), 300);
                return Err(format!(
                    "the new binary's self-test failed (exit code {}){}{said}",
                    test.code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "none: killed".into()),
                    if said.is_empty() { "" } else { ": " },
                ));
            }
        }
        let mut state = UpdateState::load(&self.state_dir);
        state.highest_accepted = Some(verified.manifest.version.clone());
        state.save(&self.state_dir).map_err(|e| {
            format!(
                "cannot record the accepted version in {}: {e}",
                self.state_dir.display()
            )
        })?;
        self.events.push(
            UpdateStep::Verified,
            &offer.version,
            Some(format!(
                "signed by {} (root {}), sha256 {}",
                verified.signing_key_id, verified.root_key_id, sha
            )),
        );
        Ok(Staged {
            version: verified.manifest.version,
            sha256: sha,
        })
    }

    /// Step 5: the running binary becomes `.previous` (a hard link, so the binary's
    /// path never lacks a file) and the staged file is renamed over it.
    fn swap(&mut self, staged: &Staged) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let staging = self.staging();
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755))?;
        let link = self.exe.with_file_name(".patchctl-agent.previous.tmp");
        let _ = std::fs::remove_file(&link);
        std::fs::hard_link(&self.exe, &link)?;
        std::fs::rename(&link, self.previous())?;
        std::fs::rename(&staging, &self.exe)?;
        sync_dir(&self.exe)?;
        let mut state = UpdateState::load(&self.state_dir);
        state.trial = Some(KnownRelease {
            version: staged.version.clone(),
            sha256: staged.sha256.clone(),
        });
        if let Err(e) = state.save(&self.state_dir) {
            tracing::warn!(error = %e, "cannot record the release on trial; it reports the build's version until confirmed");
        }
        self.events.push(
            UpdateStep::Swapped,
            &staged.version,
            Some(format!(
                "{} is the new binary; the previous one is {}",
                self.exe.display(),
                self.previous().display()
            )),
        );
        Ok(())
    }

    /// Step 6 and the health confirmation: the new binary runs as a trial and must
    /// reach the platform in time; else the previous one is restored.
    async fn trial(&mut self, staged: Staged, stopping: &AtomicBool) -> Outcome {
        let deadline = tokio::time::Instant::now() + self.confirm;
        let failure = match crate::exec::own::spawn_trial(&self.exe, &staged.version) {
            Err(e) => format!("the new binary did not start: {e}"),
            Ok(mut child) => loop {
                tokio::select! {
                    status = child.wait() => {
                        match status {
                            Ok(s) if s.success() => break String::new(),
                            Ok(s) => break format!("the new binary exited ({s}) before it reached the platform"),
                            Err(e) => break format!("waiting for the new binary failed: {e}"),
                        }
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        let _ = child.start_kill();
                        let _ = child.wait().await;
                        break format!("the new binary did not reach the platform within {} s", self.confirm.as_secs());
                    }
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {
                        if stopping.load(Ordering::SeqCst) {
                            let _ = child.start_kill();
                            let _ = child.wait().await;
                            break "the agent was asked to stop during the new binary's trial".to_owned();
                        }
                    }
                }
            },
        };
        let mut state = UpdateState::load(&self.state_dir);
        let on_trial = state.trial.take();
        if failure.is_empty() {
            state.running = on_trial.or(Some(KnownRelease {
                version: staged.version.clone(),
                sha256: staged.sha256.clone(),
            }));
            if let Err(e) = state.save(&self.state_dir) {
                tracing::warn!(error = %e, "cannot record the confirmed release");
            }
            self.events.push(
                UpdateStep::Confirmed,
                &staged.version,
                Some("the new binary reached the platform".into()),
            );
            self.running = staged.version;
            return Outcome::HandOver(self.exe.clone());
        }
        let restored =
            std::fs::rename(self.previous(), &self.exe).and_then(|()| sync_dir(&self.exe));
        let _ = state.save(&self.state_dir);
        let detail = match restored {
            Ok(()) => format!("{failure}; the previous binary is restored and running"),
            Err(e) => format!(
                "{failure}; restoring {} failed: {e} (this process, the previous version, keeps running)",
                self.previous().display()
            ),
        };
        self.events
            .push(UpdateStep::RolledBack, &staged.version, Some(detail));
        self.refused.insert(staged.version, Instant::now());
        Outcome::RolledBack
    }
}

fn sync_dir(file: &Path) -> std::io::Result<()> {
    std::fs::File::open(file.parent().unwrap_or(Path::new("/")))?.sync_all()
}
