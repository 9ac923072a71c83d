//! A FAKE agent binary for the self-update tests, compiled by the test with rustc
//! (`selfupdate.rs`, `fake_agent`): a real native executable (the agent
//! runs nothing else, see `patchctl_agent::selfupdate::native_executable`) whose
//! behaviour is chosen by a trailer the test appends to the file, so that each test
//! artifact is a different signed file:
//!
//! - `PATCHCTL-FAKE:mark=PATH` — touch PATH whenever it runs (even for `self-test`), so a
//!   test can show that a refused artifact never ran;
//! - `PATCHCTL-FAKE:fail-self-test` — `self-test` exits 7;
//! - `PATCHCTL-FAKE:hang` — as the agent, run without ever reaching the platform;
//! - otherwise, as the agent, exit 3 at once.
//!
//! `self-test` otherwise answers like the real agent (product, target, one root).

use std::io::Write;
use std::time::Duration;

fn trailer() -> Vec<String> {
    let me = std::fs::read("/proc/self/exe").unwrap_or_default();
    let text = String::from_utf8_lossy(&me[me.len().saturating_sub(4096)..]).into_owned();
    text.lines()
        .filter_map(|l| l.strip_prefix("PATCHCTL-FAKE:").map(str::to_owned))
        .collect()
}

fn main() {
    let modes = trailer();
    for m in &modes {
        if let Some(path) = m.strip_prefix("mark=") {
            let _ = std::fs::write(path, b"ran\n");
        }
    }
    let has = |m: &str| modes.iter().any(|x| x == m);
    if std::env::args().nth(1).as_deref() == Some("self-test") {
        if has("fail-self-test") {
            std::process::exit(7);
        }
        let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
        let _ = writeln!(
            std::io::stdout(),
            "{{\"product\":\"patchctl-agent\",\"version\":\"9.9.9\",\"target\":\"{target}\",\"roots\":1}}"
        );
        return;
    }
    if has("hang") {
        std::thread::sleep(Duration::from_secs(600));
    }
    std::process::exit(3);
}
