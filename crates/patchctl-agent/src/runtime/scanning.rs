//! Package scans: collect the state, send the smallest body that brings the platform to
//! it (unchanged, a delta against the acknowledged scan, or the full state), and keep
//! what was acknowledged.

use chrono::Utc;
use http::Method;
use patchctl_proto::scan::{ScanAck, ScanBody, ScanStatus, ScanUpload};

use super::{Agent, Failure};

impl Agent {
    pub(super) async fn scan_and_upload(&mut self) -> Result<(), Failure> {
        let mut state =
            crate::scan::collect(self.ops.backend().map(|b| b.as_ref()), self.exec.as_ref())
                .await
                .map_err(|e| Failure::Other(e.to_string()))?;
        state.system.tags = self.cfg.tags.clone();
        let scanned_at = Utc::now();
        if let Some(b) = self.ops.backend() {
            let packages: Vec<_> = state.packages.iter().map(|r| r.to_package()).collect();
            let running = crate::pkgmgr::reboot::running_release();
            // Part of the scan: its programs (`rpm -q kernel`, …) run at background
            // priority too.
            let exec = crate::scan::Background(self.exec.as_ref());
            let reboot = crate::pkgmgr::reboot::state(b.as_ref(), &exec, &packages, &running).await;
            self.reboot_state = Some(reboot);
        }
        let acked = crate::scan::Acked::load(&self.cfg.state_dir);
        let mut upload = crate::scan::upload_for(&state, acked.as_ref(), scanned_at);
        upload.reboot = self.reboot_state.clone();
        let mut ack = self.send_scan(&upload).await?;
        if ack.status == ScanStatus::NeedFull {
            tracing::info!(
                detail = ack.detail.as_deref().unwrap_or(""),
                "the platform asked for the full scan"
            );
            crate::scan::Acked::clear(&self.cfg.state_dir);
            upload = crate::scan::upload_for(&state, None, scanned_at);
            upload.reboot = self.reboot_state.clone();
            ack = self.send_scan(&upload).await?;
        }
        if ack.status == ScanStatus::NeedFull {
            return Err(Failure::Other(format!(
                "the platform did not accept the full scan: {}",
                ack.detail.unwrap_or_default()
            )));
        }
        let acked = crate::scan::Acked {
            digest: upload.digest,
            state,
        };
        if let Err(e) = acked.save(&self.cfg.state_dir) {
            tracing::warn!(error = %e, "cannot keep the acknowledged scan; the next one is sent in full");
        }
        Ok(())
    }

    pub(super) async fn send_scan(&self, upload: &ScanUpload) -> Result<ScanAck, Failure> {
        let (bytes, gzip) =
            crate::scan::encode(upload).map_err(|e| Failure::Other(e.to_string()))?;
        let sent = bytes.len();
        let kind = match &upload.body {
            ScanBody::Unchanged => "unchanged",
            ScanBody::Full { .. } => "full",
            ScanBody::Delta { .. } => "delta",
        };
        let ack: ScanAck = self
            .client
            .json_bytes(
                Method::POST,
                "/api/v1/agent/scan",
                self.bearer(),
                bytes,
                gzip,
            )
            .await?;
        tracing::info!(kind, bytes = sent, status = ?ack.status, packages = ack.packages, "scan uploaded");
        Ok(ack)
    }
}
