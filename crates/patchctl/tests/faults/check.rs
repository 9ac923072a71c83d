//! What every fault test checks at the end, in the database itself (through
//! `patchctl_storage`): every heartbeat, inventory and result a simulated agent got a
//! 2xx for is stored.

use std::collections::{BTreeSet, HashMap};

use uuid::Uuid;

use super::sim::Ledger;

/// Fails the test, naming what is missing, unless everything `ledger` holds as
/// acknowledged is in the database at `database_url`.
pub async fn nothing_acknowledged_lost(database_url: &str, ledger: &Ledger) {
    let store = patchctl_storage::open(database_url)
        .await
        .unwrap_or_else(|e| panic!("cannot open the cluster's database to check it: {e}"));
    let org = store
        .org_by_name("default")
        .await
        .unwrap()
        .expect("the organisation of the cluster");

    let mut by_host: HashMap<Uuid, BTreeSet<u64>> = HashMap::new();
    for (host, n) in ledger.heartbeats.lock().unwrap().iter() {
        by_host.entry(*host).or_default().insert(*n);
    }
    let mut heartbeats = 0;
    for (host, acked) in &by_host {
        let stored: BTreeSet<u64> = store
            .metrics_history(org.id, *host)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, m)| m.uptime_secs)
            .collect();
        let lost: Vec<&u64> = acked.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "host {host}: {} acknowledged heartbeats are not in the database (numbers {:?})",
            lost.len(),
            lost.iter().take(20).collect::<Vec<_>>()
        );
        heartbeats += acked.len();
    }

    let scans = ledger.scans.lock().unwrap().clone();
    for (host, n) in &scans {
        let packages = store.host_packages(org.id, *host).await.unwrap();
        let stored = packages
            .iter()
            .find(|p| p.name == "faults-marker")
            .and_then(|p| p.version.strip_prefix("1.")?.parse::<u64>().ok());
        assert!(
            stored.is_some_and(|m| m >= *n),
            "host {host}: inventory {n} was acknowledged, the database holds {stored:?}"
        );
    }

    let results = ledger.results.lock().unwrap().clone();
    for id in &results {
        let cmd = store.command(org.id, *id).await.unwrap();
        assert!(
            cmd.as_ref().is_some_and(|c| c.result.is_some()),
            "the result of command {id} was acknowledged, the database holds {cmd:?}"
        );
    }
    eprintln!(
        "checked in the database: {heartbeats} heartbeats of {} hosts, the latest inventory of {} hosts, {} results",
        by_host.len(),
        scans.len(),
        results.len()
    );
}
