//! One statement as the index keeps it: compact, because a full database holds millions
//! (issue 12's benchmark: every family at full size is about 4.6 million statements).
//!
//! The ecosystem and package are not stored: they are the index's keys, handed to the
//! decision with the statement. Repeated texts (notes such as an advisory id, severity
//! words, module streams) are interned; the rare fields (OSV's `introduced` and
//! `last_affected`, a module stream) share one optional box. The model's [`Affected`]
//! is rebuilt only when a finding is shown.

use std::sync::Arc;

use crate::model::{Affected, Status};

/// The statement's status without its version (that is [`Entry::fixed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Fixed,
    NotAffected,
    AffectedNoFix,
    WillNotFix,
    EndOfLife,
    UnderInvestigation,
    UnknownVersion,
}

/// The fields few statements have.
#[derive(Debug)]
pub(super) struct Rare {
    pub(super) introduced: Option<Box<str>>,
    pub(super) last_affected: Option<Box<str>>,
    /// The module stream the fixed version follows, if the advisory names one.
    pub(super) stream: Option<Arc<str>>,
}

/// One statement of one record about one `(ecosystem, package)`, as indexed.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) advisory: Arc<super::Advisory>,
    pub(super) kind: Kind,
    /// `Some(is_module_build)` for RPM entries with a fixed version.
    pub(super) module: Option<bool>,
    /// The fixed version (for [`Kind::Fixed`]; the failing text for
    /// [`Kind::UnknownVersion`]).
    pub(super) text: Option<Box<str>>,
    pub(super) note: Option<Arc<str>>,
    pub(super) severity: Option<Arc<str>>,
    pub(super) rare: Option<Box<Rare>>,
}

impl Entry {
    /// The fixed version of a `fixed` statement.
    pub(super) fn fixed_version(&self) -> Option<&str> {
        match self.kind {
            Kind::Fixed => self.text.as_deref(),
            _ => None,
        }
    }

    pub(super) fn introduced(&self) -> Option<&str> {
        self.rare.as_ref()?.introduced.as_deref()
    }

    pub(super) fn last_affected(&self) -> Option<&str> {
        self.rare.as_ref()?.last_affected.as_deref()
    }

    pub(super) fn stream(&self) -> Option<&str> {
        self.rare.as_ref()?.stream.as_deref()
    }

    /// The statement's status, as the model writes it.
    pub(super) fn status(&self) -> Status {
        let text = || self.text.as_deref().unwrap_or_default().to_string();
        match self.kind {
            Kind::Fixed => Status::Fixed {
                fixed_version: text(),
            },
            Kind::NotAffected => Status::NotAffected,
            Kind::AffectedNoFix => Status::AffectedNoFix,
            Kind::WillNotFix => Status::WillNotFix,
            Kind::EndOfLife => Status::EndOfLife,
            Kind::UnderInvestigation => Status::UnderInvestigation,
            Kind::UnknownVersion => Status::UnknownVersion {
                failed_version: text(),
            },
        }
    }

    /// Whether the status leaves the host exposed (see `decide::is_vulnerable`).
    pub(super) fn exposes(&self) -> bool {
        matches!(
            self.kind,
            Kind::Fixed | Kind::AffectedNoFix | Kind::WillNotFix | Kind::EndOfLife
        )
    }

    /// The model's statement, rebuilt with its keys.
    pub(super) fn affected(&self, ecosystem: &str, package: &str) -> Affected {
        Affected {
            ecosystem: ecosystem.to_string(),
            package: package.to_string(),
            introduced: self.introduced().map(str::to_string),
            last_affected: self.last_affected().map(str::to_string),
            status: self.status(),
            note: self.note.as_deref().map(str::to_string),
            severity: self.severity.as_deref().map(str::to_string),
        }
    }
}

/// The kind and text of a model status.
pub(super) fn split_status(status: Status) -> (Kind, Option<Box<str>>) {
    match status {
        Status::Fixed { fixed_version } => (Kind::Fixed, Some(fixed_version.into())),
        Status::NotAffected => (Kind::NotAffected, None),
        Status::AffectedNoFix => (Kind::AffectedNoFix, None),
        Status::WillNotFix => (Kind::WillNotFix, None),
        Status::EndOfLife => (Kind::EndOfLife, None),
        Status::UnderInvestigation => (Kind::UnderInvestigation, None),
        Status::UnknownVersion { failed_version } => {
            (Kind::UnknownVersion, Some(failed_version.into()))
        }
    }
}
