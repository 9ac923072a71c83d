//! Tests of the runtime's pure parts.
use super::*;
use backoff::MIN_BACKOFF;

#[test]
fn backoff_grows_to_cap_and_resets() {
    let mut b = Backoff::new(Duration::from_secs(60));
    let mut last_max = Duration::ZERO;
    for _ in 0..10 {
        let d = b.delay();
        assert!(d <= Duration::from_secs(60));
        last_max = last_max.max(d);
    }
    assert!(last_max >= Duration::from_secs(30));
    b.reset();
    assert!(b.delay() <= MIN_BACKOFF);
}

fn status(status: u16, code: Option<&str>) -> ClientError {
    ClientError::Status {
        status,
        message: "the platform's words".into(),
        code: code.map(str::to_owned),
    }
}

#[test]
fn answers_are_sorted_by_status_and_code() {
    assert_eq!(
        Failure::from(status(403, Some("credential_revoked"))),
        Failure::Revoked("the platform's words".into())
    );
    assert_eq!(
        Failure::from(status(403, Some("pending_approval"))),
        Failure::Pending
    );
    assert_eq!(
        Failure::from(status(401, Some("credential_unknown"))),
        Failure::Unauthorized
    );
    // A platform from before the codes: 401 still means enroll again.
    assert_eq!(Failure::from(status(401, None)), Failure::Unauthorized);
    // A code on the wrong status, or a 403 without a code, is no revocation.
    assert!(matches!(
        Failure::from(status(500, Some("credential_revoked"))),
        Failure::Other(_)
    ));
    assert!(matches!(
        Failure::from(status(403, None)),
        Failure::Other(_)
    ));
    assert!(matches!(
        Failure::from(ClientError::Timeout),
        Failure::Other(_)
    ));
}

#[test]
fn jitter_stays_within_ten_percent() {
    for _ in 0..1000 {
        let d = jittered(Duration::from_secs(300));
        assert!(d >= Duration::from_secs(270) && d <= Duration::from_secs(330));
    }
}
