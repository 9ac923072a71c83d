//! The fault tests of issue 16 §4, each with real processes and real databases:
//! `patchctl server` nodes started, SIGKILLed and started again by the shared harness
//! (`common/nodes.rs`), simulated agents over real TLS that write down every request
//! the platform acknowledged (`faults/sim.rs`), real `patchctl-agent` processes, a
//! private PostgreSQL instance, a small tmpfs for a full disk, a network namespace for
//! a partition (the dnf half of "killed in the middle of an install" is in
//! patchctl-agent's `dnf_real`). A missing prerequisite
//! (root, PostgreSQL, mount) is reported as a skip with its reason, and fails under
//! `CI=true` (patchctl-testkit's harness).
#![allow(clippy::disallowed_methods)] // Test harness: starts servers, agents, ip, mount, PostgreSQL.

mod common;

#[path = "faults/check.rs"]
mod check;
#[path = "faults/diskfull.rs"]
mod diskfull;
#[path = "faults/load.rs"]
mod load;
#[path = "faults/partition.rs"]
mod partition;
#[path = "faults/pg_restart.rs"]
mod pg_restart;
#[path = "faults/private_pg.rs"]
mod private_pg;
#[path = "faults/sigkill.rs"]
mod sigkill;
#[path = "faults/sim.rs"]
mod sim;

use patchctl_testkit::{Harness, Need, Test};

use common::nodes::Cluster;

/// The status line and headers (lower-case) of an operator `GET path` on node `node`,
/// read from a raw HTTP/1.1 exchange over the cluster's TLS.
fn raw_headers(cluster: &Cluster, node: usize, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tls = patchctl_net::client_config(Some(&cluster.ca_file)).unwrap();
    let url = cluster.url(node);
    let authority = url.trim_start_matches("https://").to_owned();
    let host = authority.rsplit_once(':').unwrap().0.to_owned();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        cluster.token
    );
    let answer = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host).unwrap();
            let mut s = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .unwrap();
            s.write_all(request.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            out
        });
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(
            Test::sync(
                "node_sigkilled_under_load_sqlite",
                sigkill::node_sigkilled_under_load_sqlite,
            )
            .needs([Need::Root]),
        )
        .test(
            Test::sync(
                "node_sigkilled_under_load_postgres",
                sigkill::node_sigkilled_under_load_postgres,
            )
            .needs([Need::Root, Need::Postgres]),
        )
        .test(
            Test::sync(
                "postgres_restarted_under_load",
                pg_restart::postgres_restarted_under_load,
            )
            .needs([Need::Check(&pg_restart::PRIVATE_POSTGRES)]),
        )
        .test(
            Test::sync(
                "partitioned_agent_delivers_its_outbox_in_order",
                partition::partitioned_agent_delivers_its_outbox_in_order,
            )
            .needs([Need::Check(&partition::NETNS)]),
        )
        .test(
            Test::sync(
                "sqlite_disk_full_under_load",
                diskfull::sqlite_disk_full_under_load,
            )
            .needs([Need::Check(&diskfull::TMPFS)]),
        )
        .run()
}
