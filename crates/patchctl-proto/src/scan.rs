//! The package scan as it crosses the wire (`POST /api/v1/agent/scan`): the whole state
//! once, then only what changed.
//!
//! A scan's state ([`ScanState`]) is the system identification, the installed
//! packages and the available updates. Both sides compute the same [`ScanState::digest`]
//! over its canonical form, so the agent can send
//!
//! - [`ScanBody::Unchanged`] when the digest equals the one the platform acknowledged
//!   last (about 130 bytes),
//! - [`ScanBody::Delta`] against that acknowledged state (added and removed package
//!   rows, and the system or the updates only when they changed),
//! - [`ScanBody::Full`] otherwise, gzip-compressed on the wire.
//!
//! The platform applies a delta only to the state whose digest is the delta's `base`,
//! and keeps the result only when its digest is the one the agent announced; otherwise
//! it answers [`ScanStatus::NeedFull`] and the agent sends the whole state. Nothing
//! stored is ever replaced by a state that does not verify.
//!
//! Packages travel as compact rows ([`PackageRow`]): a JSON array
//! `[name, version, arch, source_name, source_version, status]` where an empty source
//! name or version means "the same as the binary's" and an empty status means
//! `installed`. That halves the compressed size of a 2,000-package inventory.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::agent::{InstalledPackage, SystemInfo};
use crate::command::AvailableUpdate;

/// One installed package as a compact row; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackageRow(
    /// Binary package name.
    pub String,
    /// Installed version.
    pub String,
    /// Architecture.
    pub String,
    /// Source package name; empty when it is the binary's name.
    pub String,
    /// Source package version; empty when it is the binary's version.
    pub String,
    /// Package state; empty for `installed`.
    pub String,
);

impl PackageRow {
    /// The row of one package.
    pub fn from_package(p: &InstalledPackage) -> PackageRow {
        let same = |v: &Option<String>, binary: &str| match v {
            Some(s) if s != binary => s.clone(),
            _ => String::new(),
        };
        PackageRow(
            p.name.clone(),
            p.version.clone(),
            p.arch.clone(),
            same(&p.source_name, &p.name),
            same(&p.source_version, &p.version),
            if p.status == "installed" {
                String::new()
            } else {
                p.status.clone()
            },
        )
    }

    /// The package this row stands for; the source fields are always filled in.
    pub fn to_package(&self) -> InstalledPackage {
        let or = |v: &str, binary: &str| Some(if v.is_empty() { binary } else { v }.to_owned());
        InstalledPackage {
            name: self.0.clone(),
            version: self.1.clone(),
            arch: self.2.clone(),
            source_name: or(&self.3, &self.0),
            source_version: or(&self.4, &self.1),
            status: if self.5.is_empty() {
                "installed".to_owned()
            } else {
                self.5.clone()
            },
        }
    }

    /// The row's identity in a delta: name, arch and version (several versions of one
    /// package, such as kernels, may be installed side by side).
    pub fn key(&self) -> PackageKey {
        PackageKey(self.0.clone(), self.2.clone(), self.1.clone())
    }
}

/// A package row's identity: `[name, arch, version]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackageKey(
    /// Binary package name.
    pub String,
    /// Architecture.
    pub String,
    /// Installed version.
    pub String,
);

/// Why a delta does not apply to a stored state ([`ScanState::apply`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// A removed row is not in the stored state.
    #[error("the delta removes {} {} {}, which is not stored", .0.0, .0.1, .0.2)]
    RemovesMissing(PackageKey),
    /// An added row is already in the stored state.
    #[error("the delta adds {} {} {}, which is already stored", .0.0, .0.1, .0.2)]
    AddsPresent(PackageKey),
}

/// The available updates as the scan found them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanUpdates {
    /// True when the repository metadata was refreshed first.
    pub refreshed: bool,
    /// The available updates, sorted by name and architecture.
    pub updates: Vec<AvailableUpdate>,
    /// Installed packages a full upgrade would remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removals: Vec<String>,
    /// Why the updates could not be listed or refreshed, when that happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything one scan found.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanState {
    /// System identification and hardware.
    pub system: SystemInfo,
    /// The package database (`dpkg`, `rpm`, `apk`, `pacman`); `None` when none was found.
    pub package_manager: Option<String>,
    /// Installed packages, sorted.
    pub packages: Vec<PackageRow>,
    /// Available updates; `None` when the agent has no package manager to ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates: Option<ScanUpdates>,
}

impl ScanState {
    /// Puts the state in canonical order (packages and updates sorted), which the
    /// digest and deltas rely on.
    pub fn canonicalize(&mut self) {
        self.packages.sort();
        self.packages.dedup();
        if let Some(u) = &mut self.updates {
            u.updates.sort_by(|a, b| {
                (&a.name, &a.arch, &a.candidate_version).cmp(&(
                    &b.name,
                    &b.arch,
                    &b.candidate_version,
                ))
            });
            u.removals.sort();
        }
    }

    /// The system part as the digest sees it: disk usage changes all the time and
    /// travels with every heartbeat, so it is left out; the disks themselves count.
    fn stable_system(&self) -> SystemInfo {
        let mut s = self.system.clone();
        for d in &mut s.disks {
            d.used_bytes = 0;
        }
        s
    }

    /// SHA-256 (lower-case hex) of the canonical state. Call [`ScanState::canonicalize`]
    /// first.
    pub fn digest(&self) -> String {
        #[derive(Serialize)]
        struct Canonical<'a> {
            system: SystemInfo,
            package_manager: &'a Option<String>,
            packages: &'a [PackageRow],
            updates: &'a Option<ScanUpdates>,
        }
        let c = Canonical {
            system: self.stable_system(),
            package_manager: &self.package_manager,
            packages: &self.packages,
            updates: &self.updates,
        };
        // Serialising plain data to a Vec cannot fail.
        let bytes = serde_json::to_vec(&c).unwrap_or_default();
        hex(&Sha256::digest(&bytes))
    }

    /// What to send to a platform that holds `base` (with digest `base_digest`): a
    /// delta, or `None` when a full state is smaller or the package manager changed.
    pub fn delta_from(&self, base: &ScanState, base_digest: &str) -> Option<ScanBody> {
        if base.package_manager != self.package_manager {
            return None;
        }
        let old: std::collections::BTreeSet<&PackageRow> = base.packages.iter().collect();
        let new: std::collections::BTreeSet<&PackageRow> = self.packages.iter().collect();
        let added: Vec<PackageRow> = new.difference(&old).map(|r| (*r).clone()).collect();
        let removed: Vec<PackageKey> = old.difference(&new).map(|r| r.key()).collect();
        if added.len() + removed.len() > self.packages.len() {
            return None;
        }
        Some(ScanBody::Delta {
            base: base_digest.to_owned(),
            system: (self.stable_system() != base.stable_system()).then(|| self.system.clone()),
            added,
            removed,
            updates: (self.updates != base.updates).then(|| self.updates.clone()),
        })
    }

    /// Applies a delta's changes to this state. Fails, without changing anything, when
    /// a removed row is not there or an added one already is.
    pub fn apply(
        &self,
        system: Option<&SystemInfo>,
        added: &[PackageRow],
        removed: &[PackageKey],
        updates: Option<&Option<ScanUpdates>>,
    ) -> Result<ScanState, DeltaError> {
        let mut rows: std::collections::BTreeMap<PackageKey, PackageRow> =
            self.packages.iter().map(|r| (r.key(), r.clone())).collect();
        for k in removed {
            if rows.remove(k).is_none() {
                return Err(DeltaError::RemovesMissing(k.clone()));
            }
        }
        for r in added {
            if rows.insert(r.key(), r.clone()).is_some() {
                return Err(DeltaError::AddsPresent(r.key()));
            }
        }
        let mut next = ScanState {
            system: system.cloned().unwrap_or_else(|| self.system.clone()),
            package_manager: self.package_manager.clone(),
            packages: rows.into_values().collect(),
            updates: match updates {
                Some(u) => u.clone(),
                None => self.updates.clone(),
            },
        };
        next.canonicalize();
        Ok(next)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `POST /api/v1/agent/scan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanUpload {
    /// When the scan ran.
    pub scanned_at: DateTime<Utc>,
    /// [`ScanState::digest`] of the state after this scan.
    pub digest: String,
    /// The state, the changes, or nothing.
    pub body: ScanBody,
    /// Whether the host asks for a reboot, and why, found with this scan (outside the
    /// digest: it is not part of the state deltas apply to); absent from agents before
    /// reboot reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot: Option<crate::agent::RebootState>,
}

/// What a scan upload carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScanBody {
    /// Nothing changed: the state is the one with the upload's digest, which the
    /// platform holds.
    Unchanged,
    /// The whole state.
    Full {
        /// The state.
        state: ScanState,
    },
    /// Changes against the state with digest `base`.
    Delta {
        /// Digest of the state the changes apply to.
        base: String,
        /// The system, when it changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        system: Option<SystemInfo>,
        /// Package rows that are new (a changed version is a removal plus an addition).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        added: Vec<PackageRow>,
        /// Package rows that are gone.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removed: Vec<PackageKey>,
        /// The updates, when they changed (`Some(None)`: there are none to list any more).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        updates: Option<Option<ScanUpdates>>,
    },
}

/// What the platform did with a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    /// The new state is stored.
    Stored,
    /// The platform already had this state; only the scan time was recorded.
    Unchanged,
    /// The platform does not hold the base (or the digest did not verify): send the
    /// full state.
    NeedFull,
}

/// The platform's answer to a scan upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScanAck {
    /// What happened.
    pub status: ScanStatus,
    /// Packages stored for the host afterwards (0 with `need_full`).
    pub packages: u64,
    /// Why a full state is needed, for the agent's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

mod double_option {
    //! `Option<Option<T>>` that tells "absent" (no change) from `null` (now none).
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn pkg(name: &str, version: &str) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            source_name: Some(format!("{name}-src")),
            source_version: Some(version.into()),
            status: "installed".into(),
        }
    }

    fn state(pkgs: &[(&str, &str)]) -> ScanState {
        let mut s = ScanState {
            package_manager: Some("dpkg".into()),
            packages: pkgs
                .iter()
                .map(|(n, v)| PackageRow::from_package(&pkg(n, v)))
                .collect(),
            ..ScanState::default()
        };
        s.canonicalize();
        s
    }

    #[test]
    fn rows_are_compact_and_round_trip() {
        let p = pkg("libssl3", "3.0.15-1~deb12u1");
        let row = PackageRow::from_package(&p);
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"["libssl3","3.0.15-1~deb12u1","amd64","libssl3-src","","" ]"#.replace(' ', "")
        );
        assert_eq!(row.to_package(), p);
    }

    #[test]
    fn delta_applies_to_its_base_only() {
        let a = state(&[("a", "1"), ("b", "1"), ("c", "1"), ("e", "1"), ("f", "1")]);
        let b = state(&[("a", "1"), ("b", "2"), ("d", "1"), ("e", "1"), ("f", "1")]);
        let Some(ScanBody::Delta {
            base,
            added,
            removed,
            system,
            updates,
        }) = b.delta_from(&a, &a.digest())
        else {
            panic!("expected a delta");
        };
        assert_eq!(base, a.digest());
        assert_eq!(added.len(), 2);
        assert_eq!(removed.len(), 2);
        assert!(system.is_none() && updates.is_none());
        let got = a
            .apply(system.as_ref(), &added, &removed, updates.as_ref())
            .unwrap();
        assert_eq!(got.digest(), b.digest());
        // Applied to another state, it fails instead of producing something wrong.
        assert!(b.apply(None, &added, &removed, None).is_err());
    }

    #[test]
    fn disk_usage_does_not_change_the_digest() {
        let mut a = state(&[("a", "1")]);
        a.system.disks.push(crate::agent::DiskUsage {
            mount: "/".into(),
            fs_type: "ext4".into(),
            used_bytes: 1,
            total_bytes: 10,
        });
        let mut b = a.clone();
        b.system.disks[0].used_bytes = 5;
        assert_eq!(a.digest(), b.digest());
        b.system.hostname = "other".into();
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn updates_absent_null_and_present_are_told_apart() {
        for updates in [None, Some(None), Some(Some(ScanUpdates::default()))] {
            let body = ScanBody::Delta {
                base: "x".into(),
                system: None,
                added: vec![],
                removed: vec![],
                updates: updates.clone(),
            };
            let json = serde_json::to_string(&body).unwrap();
            let back: ScanBody = serde_json::from_str(&json).unwrap();
            assert_eq!(back, body, "{json}");
        }
    }

    /// A base inventory (name → version) and the one that follows it: at most half of
    /// the base's packages removed or upgraded (more would make a full state smaller
    /// than the delta) and any number of new packages, with at least one change in all.
    fn base_and_next() -> impl Strategy<Value = (BTreeMap<String, String>, BTreeMap<String, String>)>
    {
        prop::collection::btree_map("[a-z]{1,6}", "[0-9]{1,3}", 0..40)
            .prop_flat_map(|base| {
                let names: Vec<String> = base.keys().cloned().collect();
                let most = names.len() / 2;
                (Just(base), prop::sample::subsequence(names, 0..=most))
            })
            .prop_flat_map(|(base, touched)| {
                // Each touched package is removed (None) or upgraded (Some(suffix)).
                let edits = prop::collection::vec(prop::option::of("[0-9]{1,2}"), touched.len());
                // New packages; at least one when nothing else changes.
                let at_least = usize::from(touched.is_empty());
                let new = prop::collection::btree_map("[a-z]{1,6}", "[0-9]{1,3}", at_least..10);
                (Just(base), Just(touched), edits, new)
            })
            .prop_map(|(base, touched, edits, new)| {
                let mut next = base.clone();
                for (name, edit) in touched.iter().zip(edits) {
                    match edit {
                        None => {
                            next.remove(name);
                        }
                        Some(suffix) => {
                            let v = format!("{}.{suffix}", base[name]);
                            next.insert(name.clone(), v);
                        }
                    }
                }
                // A '-' keeps new names apart from the base's.
                for (name, version) in new {
                    next.insert(format!("{name}-new"), version);
                }
                (base, next)
            })
    }

    proptest! {
        #[test]
        fn any_delta_reproduces_the_new_state((old, new) in base_and_next()) {
            let o: Vec<(&str, &str)> = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let n: Vec<(&str, &str)> = new.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let a = state(&o);
            let b = state(&n);
            prop_assert_ne!(a.digest(), b.digest());
            let Some(ScanBody::Delta { added, removed, system, updates, .. }) = b.delta_from(&a, &a.digest()) else {
                return Err(TestCaseError::fail("expected a delta"));
            };
            let got = a.apply(system.as_ref(), &added, &removed, updates.as_ref()).unwrap();
            prop_assert_eq!(got.digest(), b.digest());
            prop_assert_eq!(got, b);
        }
    }
}
