//! Conformance case of the shared rate limits (migration 0018): a bucket of 3 a minute
//! passes 3 attempts, refuses the 4th with the time until one passes, passes again once
//! that time has gone, is not refilled by a clock that goes backwards, and is forgotten
//! once untouched.

use std::sync::Arc;

use patchctl_storage::Storage;

use super::t;

pub async fn case_shared_rate_limits(store: Arc<dyn Storage>) {
    let b = "enroll-key:test";
    for _ in 0..3 {
        assert_eq!(store.take_token(b, 3, t(0)).await.unwrap(), None);
    }
    let wait = store
        .take_token(b, 3, t(0))
        .await
        .unwrap()
        .expect("the 4th is refused");
    // One token in debt: two tokens' time (20 s each) until an attempt passes.
    assert!(wait.as_secs() >= 39 && wait.as_secs() <= 40, "{wait:?}");
    // Another bucket is not touched.
    assert_eq!(
        store.take_token("login-user:x", 3, t(0)).await.unwrap(),
        None
    );
    // A node whose clock is behind refills nothing.
    assert!(store.take_token(b, 3, t(-30)).await.unwrap().is_some());
    // Retrying while refused keeps the debt at one minute's worth at most.
    for _ in 0..20 {
        assert!(store.take_token(b, 3, t(0)).await.unwrap().is_some());
    }
    let wait = store.take_token(b, 3, t(0)).await.unwrap().unwrap();
    assert!(wait.as_secs() <= 80, "{wait:?}");
    // After the wait it passes.
    let later = 1 + wait.as_secs() as i64;
    assert_eq!(store.take_token(b, 3, t(later)).await.unwrap(), None);
    assert_eq!(store.trim_rate_buckets(t(later + 1)).await.unwrap(), 2);
    assert_eq!(store.take_token(b, 3, t(later + 2)).await.unwrap(), None);
}
