//! The outbox: durable, private, in the order results were made (also across a
//! reopen, and with files of older agents), bounded without dropping a result.

use std::os::unix::fs::MetadataExt;

use chrono::{Duration, Utc};
use patchctl_proto::command::ResultStatus;

use super::*;

fn result(summary: &str, finished_secs_ago: i64) -> CommandResult {
    let at = Utc::now() - Duration::seconds(finished_secs_ago);
    CommandResult {
        command_id: Uuid::new_v4(),
        status: ResultStatus::Succeeded,
        summary: summary.into(),
        started_at: at,
        finished_at: at,
        output: None,
    }
}

fn summaries(rs: &[CommandResult]) -> Vec<&str> {
    rs.iter().map(|r| r.summary.as_str()).collect()
}

#[test]
fn outbox_survives_reopen() {
    let d = tempfile::tempdir().unwrap();
    let ob = Outbox::open(d.path()).unwrap();
    let r = result("ok", 0);
    ob.put(&r).unwrap();
    let ob2 = Outbox::open(d.path()).unwrap();
    assert!(ob2.contains(r.command_id));
    assert_eq!(ob2.all(), vec![r.clone()]);
    let mode = std::fs::metadata(ob2.path(r.command_id)).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
    ob2.remove(&[r.command_id]);
    assert!(ob2.all().is_empty());
}

#[test]
fn results_come_back_in_the_order_they_were_made_even_against_the_clock() {
    let d = tempfile::tempdir().unwrap();
    let ob = Outbox::open(d.path()).unwrap();
    // The clock went back between the second and the third: finished_at disagrees
    // with the order of making, the sequence wins.
    let made = [
        result("a", 10),
        result("b", 5),
        result("c", 60),
        result("d", 0),
    ];
    for r in &made {
        ob.put(r).unwrap();
    }
    assert_eq!(summaries(&ob.all()), ["a", "b", "c", "d"]);
    assert_eq!(summaries(&ob.oldest(2)), ["a", "b"]);

    // Across a restart, and with new results after it.
    ob.remove(&[made[0].command_id]);
    let again = Outbox::open(d.path()).unwrap();
    again.put(&result("e", 3600)).unwrap();
    assert_eq!(summaries(&again.all()), ["b", "c", "d", "e"]);

    // Storing a result again keeps its place.
    again.put(&made[1]).unwrap();
    assert_eq!(summaries(&again.all()), ["b", "c", "d", "e"]);
}

#[test]
fn files_of_older_agents_come_first_by_finish_time() {
    let d = tempfile::tempdir().unwrap();
    let ob = Outbox::open(d.path()).unwrap();
    let (old1, old2) = (result("old-1", 100), result("old-2", 50));
    for r in [&old2, &old1] {
        let bytes = serde_json::to_vec(r).unwrap();
        write_private(&ob.path(r.command_id), &bytes).unwrap();
    }
    let ob = Outbox::open(d.path()).unwrap();
    ob.put(&result("new", 500)).unwrap();
    assert_eq!(summaries(&ob.all()), ["old-1", "old-2", "new"]);
}

#[test]
fn a_full_outbox_refuses_new_commands_but_keeps_every_result() {
    let d = tempfile::tempdir().unwrap();
    let limits = OutboxLimits {
        max_results: 3,
        max_bytes: 1 << 20,
    };
    let ob = Outbox::open_with(d.path(), limits).unwrap();
    let made: Vec<CommandResult> = (0..4).map(|i| result(&format!("r{i}"), 0)).collect();
    for r in &made[..2] {
        assert_eq!(ob.room(), Ok(()));
        ob.put(r).unwrap();
    }
    assert_eq!(ob.room(), Ok(()));
    ob.put(&made[2]).unwrap();
    let full = ob.room().unwrap_err();
    assert_eq!((full.results, full.max_results), (3, 3));
    assert!(
        full.to_string()
            .contains("no new command is taken until the platform acknowledges results"),
        "{full}"
    );
    // A result made anyway (a command that was already running) is kept.
    ob.put(&made[3]).unwrap();
    assert_eq!(summaries(&ob.all()), ["r0", "r1", "r2", "r3"]);
    // Deliveries drain it.
    ob.remove(&[made[0].command_id, made[1].command_id]);
    assert_eq!(ob.room(), Ok(()));

    // The byte bound counts too.
    let small = Outbox::open_with(
        &d.path().join("bytes"),
        OutboxLimits {
            max_results: 100,
            max_bytes: 300,
        },
    )
    .unwrap();
    let mut big = result("x", 0);
    big.summary = "y".repeat(400);
    small.put(&big).unwrap();
    let full = small.room().unwrap_err();
    assert!(full.bytes > 300, "{full:?}");
}

#[test]
fn an_unreadable_file_is_left_in_place() {
    let d = tempfile::tempdir().unwrap();
    let ob = Outbox::open(d.path()).unwrap();
    let r = result("ok", 0);
    ob.put(&r).unwrap();
    let junk = ob.dir.join(format!("{}.json", Uuid::new_v4()));
    std::fs::write(&junk, b"{not json").unwrap();
    let ob = Outbox::open(d.path()).unwrap();
    assert_eq!(ob.all(), vec![r]);
    assert!(junk.exists());
}

#[test]
fn a_result_the_disk_refuses_waits_in_memory_in_its_place() {
    let d = tempfile::tempdir().unwrap();
    let ob = Outbox::open(d.path()).unwrap();
    let (a, b, c) = (result("a", 0), result("b", 0), result("c", 0));
    ob.put(&a).unwrap();
    // The disk refuses writes: the outbox directory is a file now (ENOTDIR), a real
    // failure of the write, not a fake.
    let away = d.path().join("outbox.away");
    std::fs::rename(&ob.dir, &away).unwrap();
    std::fs::write(&ob.dir, b"not a directory").unwrap();
    let err = ob.put(&b).unwrap_err();
    assert!(!err.to_string().is_empty());
    assert_eq!(ob.in_memory(), 1);
    assert!(ob.contains(b.command_id), "kept, so it is not run twice");
    assert_eq!(ob.usage().0, 1, "it counts against the bound");
    assert_eq!(
        summaries(&ob.all()),
        ["b"],
        "the disk's results are out of reach"
    );
    // The disk comes back: the next result written takes the one in memory along, in
    // the order they were made.
    std::fs::remove_file(&ob.dir).unwrap();
    std::fs::rename(&away, &ob.dir).unwrap();
    assert_eq!(summaries(&ob.all()), ["a", "b"]);
    ob.put(&c).unwrap();
    assert_eq!(ob.in_memory(), 0);
    let reopened = Outbox::open(d.path()).unwrap();
    assert_eq!(summaries(&reopened.all()), ["a", "b", "c"]);
    reopened.remove(&[a.command_id, b.command_id, c.command_id]);
    assert!(reopened.all().is_empty());
}

#[test]
fn an_acknowledged_result_kept_in_memory_is_forgotten() {
    let d = tempfile::tempdir().unwrap();
    let ob = Outbox::open(d.path()).unwrap();
    std::fs::remove_dir(&ob.dir).unwrap();
    std::fs::write(&ob.dir, b"not a directory").unwrap();
    let r = result("r", 0);
    assert!(ob.put(&r).is_err());
    assert_eq!(ob.all(), vec![r.clone()]);
    ob.remove(&[r.command_id]);
    assert_eq!(ob.in_memory(), 0);
    assert!(ob.all().is_empty());
    assert!(!ob.contains(r.command_id));
}
