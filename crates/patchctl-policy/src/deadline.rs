//! Remediation deadlines: when a finding is due, what state it is in at a given time,
//! and the compliance percentages of a set of hosts.
//!
//! A finding's clock starts when the platform first saw it on the host (its first-seen
//! time). Its deadline is the number of days the organisation's [`DeadlinePolicy`] gives
//! its severity. A finding whose CVE is in CISA's Known Exploited Vulnerabilities
//! catalog gets the earlier of that deadline and [`DeadlinePolicy::kev_days`] counted
//! from the later of its first-seen time and the day the catalog added the CVE: a CVE
//! that was known to be exploited before the host ever had it gets its KEV days from
//! when the host got it, and one that is added to the catalog while a host already has
//! it gets them from the day it was added (never a deadline in the past on the day the
//! catalog says so).
//!
//! The catalog's own `dueDate` is *not* used: it is set for US federal civilian
//! agencies under BOD 22-01 and counts from `dateAdded` whatever happened since, so a
//! host that receives a vulnerable version after that date would be overdue the moment
//! it is seen, and the deadline could not be set by the organisation. It is shown beside
//! the finding (the catalog entry travels with it) for whoever must meet it.
//!
//! Nothing here reads the clock: every function takes `now`.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// A finding's severity as the deadline policy sees it (the CVE engine's six levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Critical.
    Critical,
    /// High.
    High,
    /// Medium.
    Medium,
    /// Low.
    Low,
    /// Negligible (Debian `unimportant`): the low deadline.
    Negligible,
    /// Not assessed yet: the medium deadline (not known to be harmless, so not given
    /// the longest time either).
    Unknown,
}

impl Severity {
    /// Every severity, highest first.
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Negligible,
        Severity::Unknown,
    ];
}

/// The most days a deadline may be (five years): a longer one is a typo, not a policy.
pub const MAX_DAYS: u32 = 1825;
/// The most days "due soon" may start before a deadline.
pub const MAX_DUE_SOON_DAYS: u32 = 90;

/// An organisation's remediation deadlines, in days from a finding's first-seen time.
///
/// The defaults (critical 7, high 30, medium 90, low 180, KEV 14, due soon 3) follow
/// common practice: PCI DSS asks critical patches within a month and many SRE teams
/// and cyber-insurance questionnaires use 7/30/90/180; CISA's BOD 22-01 gives two to
/// three weeks for a known exploited vulnerability, and 14 days is the shorter end of
/// it, since an exploited CVE on a server deserves no more time than a critical one
/// needs to be scheduled into a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlinePolicy {
    /// Days for a critical finding.
    pub critical_days: u32,
    /// Days for a high finding.
    pub high_days: u32,
    /// Days for a medium (and unassessed) finding.
    pub medium_days: u32,
    /// Days for a low (and negligible) finding.
    pub low_days: u32,
    /// Days for a finding whose CVE is known to be exploited (CISA KEV), from the later
    /// of its first-seen time and the catalog's `dateAdded`; the earlier deadline wins.
    pub kev_days: u32,
    /// A finding is "due soon" from this many days before its deadline.
    pub due_soon_days: u32,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        DeadlinePolicy {
            critical_days: 7,
            high_days: 30,
            medium_days: 90,
            low_days: 180,
            kev_days: 14,
            due_soon_days: 3,
        }
    }
}

/// A policy value out of range ([`DeadlinePolicy::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A deadline of zero days or more than [`MAX_DAYS`].
    #[error("{field} must be between 1 and {MAX_DAYS} days, not {days}")]
    Days {
        /// The field.
        field: &'static str,
        /// The value given.
        days: u32,
    },
    /// A due-soon lead over [`MAX_DUE_SOON_DAYS`].
    #[error("due_soon_days must be between 0 and {MAX_DUE_SOON_DAYS}, not {0}")]
    DueSoon(u32),
}

impl DeadlinePolicy {
    /// Checks every value (the error names the field and the range).
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (field, days) in [
            ("critical_days", self.critical_days),
            ("high_days", self.high_days),
            ("medium_days", self.medium_days),
            ("low_days", self.low_days),
            ("kev_days", self.kev_days),
        ] {
            if days == 0 || days > MAX_DAYS {
                return Err(PolicyError::Days { field, days });
            }
        }
        if self.due_soon_days > MAX_DUE_SOON_DAYS {
            return Err(PolicyError::DueSoon(self.due_soon_days));
        }
        Ok(())
    }

    /// The days a severity gets.
    pub fn days_for(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Critical => self.critical_days,
            Severity::High => self.high_days,
            Severity::Medium | Severity::Unknown => self.medium_days,
            Severity::Low | Severity::Negligible => self.low_days,
        }
    }

    /// When a finding first seen at `first_seen` is due; `kev_added` is the day the KEV
    /// catalog added its CVE, if it did.
    pub fn due(
        &self,
        first_seen: DateTime<Utc>,
        severity: Severity,
        kev_added: Option<NaiveDate>,
    ) -> Due {
        let by_severity = first_seen + days(self.days_for(severity));
        let Some(added) = kev_added else {
            return Due {
                at: by_severity,
                basis: Basis::Severity,
            };
        };
        let added = added.and_time(NaiveTime::MIN).and_utc();
        let by_kev = first_seen.max(added) + days(self.kev_days);
        if by_kev < by_severity {
            Due {
                at: by_kev,
                basis: Basis::Kev,
            }
        } else {
            Due {
                at: by_severity,
                basis: Basis::Severity,
            }
        }
    }

    /// A finding's state at `now`: excepted while `excepted_until` is after `now`, else
    /// overdue from its deadline on, due soon from [`DeadlinePolicy::due_soon_days`]
    /// before it, open before that.
    pub fn state(
        &self,
        due: DateTime<Utc>,
        excepted_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> FindingState {
        if excepted_until.is_some_and(|until| until > now) {
            FindingState::Excepted
        } else if now >= due {
            FindingState::Overdue
        } else if now >= due - days(self.due_soon_days) {
            FindingState::DueSoon
        } else {
            FindingState::Open
        }
    }
}

fn days(n: u32) -> Duration {
    Duration::days(i64::from(n))
}

/// Which rule set a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The severity's days.
    Severity,
    /// The KEV days (earlier than the severity's).
    Kev,
}

/// A finding's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// When it is due.
    pub at: DateTime<Utc>,
    /// Why then.
    pub basis: Basis,
}

/// A finding's state at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    /// Within its deadline.
    Open,
    /// Within [`DeadlinePolicy::due_soon_days`] of its deadline.
    DueSoon,
    /// Past its deadline.
    Overdue,
    /// Covered by a valid exception: out of the fixable and overdue counts.
    Excepted,
}

/// Whether an exception is in force at `now` (all times Unix ms): not revoked by then
/// and not yet expired. Nothing runs to expire an exception: it stops being valid when
/// `now` reaches `expires_at`.
pub fn exception_valid(expires_at: i64, revoked_at: Option<i64>, now: i64) -> bool {
    revoked_at.is_none_or(|r| r > now) && expires_at > now
}

/// Compliance of a set of hosts, tallied host by host ([`Compliance::add_host`]).
///
/// A host is compliant when none of its findings is overdue (excepted ones do not
/// count against it). Hosts whose release the CVE data does not cover are counted
/// apart and never as compliant: nothing is known about them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compliance {
    /// Hosts the CVE data covers.
    pub hosts: u64,
    /// Of those, hosts without an overdue finding.
    pub compliant_hosts: u64,
    /// Hosts the CVE data does not cover (neither compliant nor not).
    pub hosts_without_data: u64,
    /// Findings with a deadline, excepted ones included.
    pub findings: u64,
    /// Of those, open ones.
    pub open: u64,
    /// Due soon.
    pub due_soon: u64,
    /// Overdue.
    pub overdue: u64,
    /// Excepted.
    pub excepted: u64,
}

impl Compliance {
    /// Adds one host: whether the data covers it, and its findings' states (ignored for
    /// a host without data).
    pub fn add_host(&mut self, covered: bool, states: impl IntoIterator<Item = FindingState>) {
        if !covered {
            self.hosts_without_data += 1;
            return;
        }
        self.hosts += 1;
        let mut overdue = false;
        for s in states {
            self.findings += 1;
            match s {
                FindingState::Open => self.open += 1,
                FindingState::DueSoon => self.due_soon += 1,
                FindingState::Overdue => {
                    self.overdue += 1;
                    overdue = true;
                }
                FindingState::Excepted => self.excepted += 1,
            }
        }
        self.compliant_hosts += u64::from(!overdue);
    }

    /// Adds another tally.
    pub fn merge(&mut self, o: &Compliance) {
        self.hosts += o.hosts;
        self.compliant_hosts += o.compliant_hosts;
        self.hosts_without_data += o.hosts_without_data;
        self.findings += o.findings;
        self.open += o.open;
        self.due_soon += o.due_soon;
        self.overdue += o.overdue;
        self.excepted += o.excepted;
    }

    /// Percentage of covered hosts that are compliant; `None` without covered hosts.
    pub fn host_percent(&self) -> Option<f64> {
        percent(self.compliant_hosts, self.hosts)
    }

    /// Percentage of findings (excepted ones left out) that are not overdue; `None`
    /// without such findings.
    pub fn finding_percent(&self) -> Option<f64> {
        let counted = self.findings - self.excepted;
        percent(counted - self.overdue, counted)
    }
}

fn percent(part: u64, whole: u64) -> Option<f64> {
    // one decimal, rounded down so that 99.96 % is never shown as 100 %
    (whole > 0).then(|| (part as f64 * 1000.0 / whole as f64).floor() / 10.0)
}

#[cfg(test)]
mod tests;
