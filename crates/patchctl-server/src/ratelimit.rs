//! Rate limits: in-memory token buckets, kept by each platform process. Enrollment has
//! one per source address and one per enrollment key ([`EnrollLimits`]); the other agent
//! routes one per agent credential and one per source address ([`AgentLimits`]).
//!
//! Several nodes behind one address (issue 16 §3) divide each limit between them: a
//! bucket family built with a [`Share`] admits ceil(limit / N) a minute, N being the
//! nodes seen alive in the database (`crate::nodes` keeps the count), so that the sum
//! over the nodes stays within the configured limit (3 × ceil(30 / 3) = 30). The share
//! follows the count at the next attempt (a bucket that held more tokens than its new
//! share is cut down to it). The limits that guard secrets — enrollment per key, login
//! per username — are also kept in the database for every node at once
//! (`patchctl_storage::LimitStore`); their in-memory buckets keep the whole limit.
//!
//! A bucket holds up to a minute's worth of attempts (the burst) and refills at the
//! configured rate per minute; an attempt takes one token or is refused with the time
//! until the next token ([`RateLimited`]). Every enrollment attempt takes a token of its
//! source address before its key is looked at, so guessing keys is limited per address;
//! an attempt with an existing key also takes a token of that key. IPv6 addresses share
//! a bucket per /64 (one host usually holds a whole /64), IPv4 addresses have one
//! each. A request without a known address (the router called in-process) shares one
//! bucket.
//!
//! A bucket that has refilled completely is the same as no bucket: such entries are
//! dropped once the table grows past [`MAX_BUCKETS`], so an address spraying requests
//! costs memory only for a minute. A pruning that keeps most entries (all of them still
//! refilling) is not repeated before the table has doubled, so a full table never costs
//! a scan per request.
//!
//! An agent credential's bucket is keyed by the first 128 bits of the SHA-256 of the
//! bearer as sent, taken before the credential is looked up: an unknown or guessed
//! credential is limited as a known one is, without a database read.
//!
//! This module knows nothing of HTTP: `error.rs` turns [`RateLimited`] into a 429.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

/// Entries above which full buckets are dropped.
pub const MAX_BUCKETS: usize = 100_000;

/// What a request was limited by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// An enrollment's source address.
    Address,
    /// An enrollment's key.
    Key,
    /// An agent request's credential.
    Credential,
    /// An agent request's source address.
    AgentAddress,
}

impl Scope {
    /// Every scope, in the order of the metrics.
    pub const ALL: [Scope; 4] = [
        Scope::Address,
        Scope::Key,
        Scope::Credential,
        Scope::AgentAddress,
    ];

    /// The label of the metrics (`patchctl_rate_limited_total{scope=...}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Address => "enroll_address",
            Scope::Key => "enroll_key",
            Scope::Credential => "agent_credential",
            Scope::AgentAddress => "agent_address",
        }
    }
}

/// A request over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .scope {
    Scope::Address => "too many enrollment attempts from this address",
    Scope::Key => "too many enrollments with this enrollment key",
    Scope::Credential => "too many requests with this agent credential",
    Scope::AgentAddress => "too many agent requests from this address",
})]
pub struct RateLimited {
    /// The limit that refused it.
    pub scope: Scope,
    /// When the next attempt can pass.
    pub retry_after: Duration,
}

/// The live nodes this node shares its limits with (itself included): a bucket family
/// built with it admits [`Share::of`] its limit. Cloning gives the same count.
#[derive(Debug, Clone)]
pub struct Share(Arc<AtomicU32>);

impl Default for Share {
    /// Alone: the whole limit.
    fn default() -> Self {
        Share(Arc::new(AtomicU32::new(1)))
    }
}

impl Share {
    /// The live nodes (at least 1).
    pub fn nodes(&self) -> u32 {
        self.0.load(Ordering::Relaxed).max(1)
    }

    /// Sets the live nodes (0 counts as 1).
    pub fn set(&self, nodes: u32) {
        self.0.store(nodes.max(1), Ordering::Relaxed);
    }

    /// This node's part of `limit`: ceil(`limit` / nodes), at least 1.
    pub fn of(&self, limit: u32) -> u32 {
        limit.div_ceil(self.nodes()).max(1)
    }
}

/// One bucket: tokens at a time.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key: `per_min` attempts a minute, bursts of up to `per_min` (or this
/// node's [`Share`] of them).
#[derive(Debug)]
pub struct TokenBuckets<K> {
    per_min: u32,
    share: Share,
    map: Mutex<Table<K>>,
}

/// The buckets and the size at which the next pruning runs.
#[derive(Debug)]
struct Table<K> {
    buckets: HashMap<K, Bucket>,
    prune_at: usize,
}

impl<K: Hash + Eq + Clone> TokenBuckets<K> {
    /// Buckets of `per_min` attempts a minute (at least 1), the whole limit on this node.
    pub fn new(per_min: u32) -> Self {
        Self::shared(per_min, Share::default())
    }

    /// Buckets of this node's `share` of `per_min` attempts a minute.
    pub fn shared(per_min: u32, share: Share) -> Self {
        TokenBuckets {
            per_min: per_min.max(1),
            share,
            map: Mutex::new(Table {
                buckets: HashMap::new(),
                prune_at: MAX_BUCKETS,
            }),
        }
    }

    /// Attempts a minute this node admits now (its share of the limit).
    pub fn per_min(&self) -> u32 {
        self.share.of(self.per_min)
    }

    /// Takes a token of `key`'s bucket at `now`, or says how long until one is there.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let per_min = self.per_min();
        let burst = f64::from(per_min);
        let rate = f64::from(per_min) / 60.0;
        let mut table = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let Table { buckets, prune_at } = &mut *table;
        if buckets.len() >= *prune_at && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
            // Most still refilling: wait until the table has doubled before scanning
            // it again (memory stays within twice the live buckets).
            *prune_at = (buckets.len() * 2).max(MAX_BUCKETS);
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.at = now.max(b.at);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    /// Buckets held (for tests of the pruning).
    pub fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets
            .len()
    }

    /// True when no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The bucket an address falls in: the address (IPv4), its /64 (IPv6), or the shared
/// bucket of requests without an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKey {
    /// An IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
    /// No address known.
    Unknown,
}

impl AddrKey {
    /// The bucket of `addr`; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn of(addr: Option<IpAddr>) -> Self {
        match addr.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(a)) => AddrKey::V4(a.octets()),
            Some(IpAddr::V6(a)) => {
                let mut p = [0u8; 8];
                p.copy_from_slice(&a.octets()[..8]);
                AddrKey::V6(p)
            }
            None => AddrKey::Unknown,
        }
    }
}

/// The enrollment limits of one platform process.
#[derive(Debug)]
pub struct EnrollLimits {
    per_address: TokenBuckets<AddrKey>,
    per_key: TokenBuckets<Uuid>,
    refused: Refused,
}

/// Requests refused, per scope ([`Scope::ALL`] order), for the metrics.
#[derive(Debug, Default)]
pub struct Refused([AtomicU64; 4]);

impl Refused {
    fn count(&self, e: RateLimited) -> RateLimited {
        let i = Scope::ALL.iter().position(|s| *s == e.scope).unwrap_or(0);
        self.0[i].fetch_add(1, Ordering::Relaxed);
        e
    }

    /// Requests refused with `scope` so far.
    pub fn get(&self, scope: Scope) -> u64 {
        let i = Scope::ALL.iter().position(|s| *s == scope).unwrap_or(0);
        self.0[i].load(Ordering::Relaxed)
    }
}

impl EnrollLimits {
    /// Limits of `per_address` and `per_key` attempts a minute; this node admits its
    /// `share` of the address limit (the key's is also kept in the database, for every
    /// node at once).
    pub fn new(per_address: u32, per_key: u32, share: Share) -> Self {
        EnrollLimits {
            per_address: TokenBuckets::shared(per_address, share),
            per_key: TokenBuckets::new(per_key),
            refused: Refused::default(),
        }
    }

    /// Takes a token of the source address's bucket.
    pub fn check_address(&self, addr: Option<IpAddr>) -> Result<(), RateLimited> {
        self.per_address
            .take(&AddrKey::of(addr), Instant::now())
            .map_err(|retry_after| {
                self.refused.count(RateLimited {
                    scope: Scope::Address,
                    retry_after,
                })
            })
    }

    /// Takes a token of the enrollment key's bucket.
    pub fn check_key(&self, key_id: Uuid) -> Result<(), RateLimited> {
        self.per_key
            .take(&key_id, Instant::now())
            .map_err(|retry_after| {
                self.refused.count(RateLimited {
                    scope: Scope::Key,
                    retry_after,
                })
            })
    }

    /// Attempts refused so far, by scope.
    pub fn refused(&self) -> &Refused {
        &self.refused
    }
}

/// The key of an agent credential's bucket: the first 128 bits of the SHA-256 of the
/// bearer as sent (collisions between two credentials are as likely as guessing one).
pub fn credential_key(bearer: &str) -> u128 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bearer.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    u128::from_be_bytes(k)
}

/// The agent API's limits of one platform process (every agent route but enrollment).
#[derive(Debug)]
pub struct AgentLimits {
    per_credential: TokenBuckets<u128>,
    per_address: TokenBuckets<AddrKey>,
    refused: Refused,
}

impl AgentLimits {
    /// Limits of `per_credential` and `per_address` requests a minute, of which this
    /// node admits its `share`.
    pub fn new(per_credential: u32, per_address: u32, share: Share) -> Self {
        AgentLimits {
            per_credential: TokenBuckets::shared(per_credential, share.clone()),
            per_address: TokenBuckets::shared(per_address, share),
            refused: Refused::default(),
        }
    }

    /// Requests refused so far, by scope.
    pub fn refused(&self) -> &Refused {
        &self.refused
    }

    /// Takes a token of the credential's bucket (`bearer` as sent, unchecked).
    pub fn check_credential(&self, bearer: &str) -> Result<(), RateLimited> {
        self.per_credential
            .take(&credential_key(bearer), Instant::now())
            .map_err(|retry_after| {
                self.refused.count(RateLimited {
                    scope: Scope::Credential,
                    retry_after,
                })
            })
    }

    /// Takes a token of the source address's bucket.
    pub fn check_address(&self, addr: Option<IpAddr>) -> Result<(), RateLimited> {
        self.per_address
            .take(&AddrKey::of(addr), Instant::now())
            .map_err(|retry_after| {
                self.refused.count(RateLimited {
                    scope: Scope::AgentAddress,
                    retry_after,
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let b = TokenBuckets::new(30); // one token every 2 s
        let t0 = Instant::now();
        for _ in 0..30 {
            b.take(&"a", t0).unwrap();
        }
        let wait = b.take(&"a", t0).unwrap_err();
        assert!((wait.as_secs_f64() - 2.0).abs() < 0.01, "{wait:?}");
        // Another key has its own bucket.
        b.take(&"b", t0).unwrap();
        // One token back after 2 s, not two.
        let t2 = t0 + Duration::from_secs(2);
        b.take(&"a", t2).unwrap();
        assert!(b.take(&"a", t2).is_err());
        // Never more than the burst, however long it waited.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..30 {
            b.take(&"a", later).unwrap();
        }
        assert!(b.take(&"a", later).is_err());
    }

    #[test]
    fn a_node_admits_its_share_and_follows_the_count() {
        let share = Share::default();
        let b = TokenBuckets::shared(30, share.clone());
        let t0 = Instant::now();
        share.set(3);
        assert_eq!(b.per_min(), 10);
        for _ in 0..10 {
            b.take(&"a", t0).unwrap();
        }
        // A tenth of a minute's worth of tokens: one every 6 s.
        let wait = b.take(&"a", t0).unwrap_err();
        assert!((wait.as_secs_f64() - 6.0).abs() < 0.01, "{wait:?}");
        // Rounded up: 7 nodes of a limit of 30 admit 5 each.
        share.set(7);
        assert_eq!(b.per_min(), 5);
        // Alone again (no restart): the whole limit, the full bucket after a minute.
        share.set(1);
        let later = t0 + Duration::from_secs(60);
        for _ in 0..30 {
            b.take(&"a", later).unwrap();
        }
        assert!(b.take(&"a", later).is_err());
        // A full bucket is cut down to a smaller share at once.
        b.take(&"b", later).unwrap(); // 29 left of 30
        share.set(2);
        for _ in 0..15 {
            b.take(&"b", later).unwrap();
        }
        assert!(b.take(&"b", later).is_err());
        // Never less than one a minute.
        share.set(1000);
        assert_eq!(b.per_min(), 1);
        share.set(0);
        assert_eq!(share.nodes(), 1);
    }

    #[test]
    fn full_buckets_are_dropped_when_the_table_is_full() {
        let b = TokenBuckets::new(60);
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS {
            b.take(&i, t0).unwrap();
        }
        assert_eq!(b.len(), MAX_BUCKETS);
        // A minute later every bucket has refilled: the next new key prunes them.
        b.take(&usize::MAX, t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn a_table_of_refilling_buckets_is_not_scanned_on_every_new_key() {
        let b = TokenBuckets::new(1); // a bucket refills in a minute
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS {
            b.take(&i, t0).unwrap();
        }
        // Nothing has refilled: the pruning keeps everything and moves its threshold,
        // so the table grows instead of being scanned again for every new key.
        for i in MAX_BUCKETS..MAX_BUCKETS + 1000 {
            b.take(&i, t0).unwrap();
        }
        assert_eq!(b.len(), MAX_BUCKETS + 1000);
        let prune_at = b.map.lock().unwrap().prune_at;
        assert_eq!(prune_at, 2 * MAX_BUCKETS);
    }

    #[test]
    fn agent_credentials_have_buckets_of_their_own() {
        let l = AgentLimits::new(2, 1000, Share::default());
        l.check_credential("pcag_a").unwrap();
        l.check_credential("pcag_a").unwrap();
        let e = l.check_credential("pcag_a").unwrap_err();
        assert_eq!(e.scope, Scope::Credential);
        assert!(e.retry_after > Duration::from_secs(20), "{e:?}");
        l.check_credential("pcag_b").unwrap();
        assert_ne!(credential_key("pcag_a"), credential_key("pcag_b"));
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(AddrKey::of(Some(a)), AddrKey::of(Some(b)));
        assert_ne!(AddrKey::of(Some(a)), AddrKey::of(Some(c)));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(AddrKey::of(Some(v4)), AddrKey::of(Some(mapped)));
        assert_eq!(AddrKey::of(None), AddrKey::Unknown);
    }
}
