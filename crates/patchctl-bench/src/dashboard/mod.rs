//! Dashboard render times (issue 13): the real platform on SQLite over TLS 1.3, a fleet
//! of `hosts` hosts written through the storage API ([`seed`]), an owner logged in
//! through the login form, and every page asked `samples` times in a row over one
//! connection, as one operator's browser would. Reports p50/p95/max per page against
//! the targets (fleet overview and hosts pages ≤ 150 ms p95, the host page with
//! 3,000 packages ≤ 100 ms p95).

mod browser;
pub mod seed;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use patchctl_net::ensure_dev_pki;
use patchctl_server::Settings;
use tokio::net::TcpListener;

use crate::stats::{ms, percentile, thousands};
use browser::Browser;
pub use seed::Shape;

/// The target for the fleet overview and the hosts pages.
pub const TARGET_LIST: Duration = Duration::from_millis(150);
/// The target for the host page.
pub const TARGET_HOST: Duration = Duration::from_millis(100);

const USERNAME: &str = "bench-owner";
const PASSWORD: &str = "bench-password-0123456789";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the CVE engine may take to load the fleet before the run gives up.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(600);

/// The run's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// The fleet.
    pub shape: Shape,
    /// Timed requests per page (after 3 untimed ones).
    pub samples: usize,
}

impl Config {
    /// The full benchmark: 100,000 hosts.
    pub fn full() -> Config {
        Config {
            shape: Shape {
                hosts: 100_000,
                small_packages: 6,
                big_packages: 3_000,
                commands: 2_000,
            },
            samples: 60,
        }
    }

    /// The smoke form: 5,000 hosts, fewer samples.
    pub fn smoke() -> Config {
        Config {
            shape: Shape {
                hosts: 5_000,
                ..Config::full().shape
            },
            samples: 10,
        }
    }
}

/// One page's measurement.
#[derive(Debug, Clone)]
pub struct PageTime {
    /// What was asked.
    pub label: String,
    /// The path.
    pub path: String,
    /// Bytes of the answer.
    pub bytes: usize,
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// Slowest.
    pub max: Duration,
    /// The target, when the issue sets one.
    pub target: Option<Duration>,
}

impl PageTime {
    /// Within the target (or without one).
    pub fn ok(&self) -> bool {
        self.target.is_none_or(|t| self.p95 <= t)
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The parameters.
    pub config: Config,
    /// Seeding: hosts, packages, time.
    pub seeded: seed::Seeded,
    /// Time until the CVE engine had correlated the fleet.
    pub engine_ready: Duration,
    /// The pages.
    pub pages: Vec<PageTime>,
}

impl Report {
    /// Every page with a target met it.
    pub fn meets_targets(&self) -> bool {
        self.pages.iter().all(PageTime::ok)
    }
}

fn settings(
    listen: std::net::SocketAddr,
    db: &str,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<Settings> {
    // only what differs from the defaults, so that new settings keep their defaults
    Ok(serde_json::from_value(serde_json::json!({
        "listen": listen.to_string(),
        "database_url": db,
        "tls_cert": cert,
        "tls_key": key,
        "vuln_feeds": [],
        "vuln_sync": false,
    }))?)
}

/// Runs the benchmark: seed, start the platform, log in, measure, stop.
pub fn run(cfg: Config) -> anyhow::Result<Report> {
    let tmp = tempfile::Builder::new()
        .prefix("patchctl-bench-dashboard-")
        .tempdir()?;
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let pki = ensure_dev_pki(&tmp.path().join("pki"), &names)?;
    let db = format!("sqlite://{}", tmp.path().join("patchctl.db").display());
    // the platform on its own runtime (its own threads), the browser on another
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("platform")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let seeded = server_rt.block_on(async {
        let store = patchctl_storage::open(&db).await?;
        eprintln!("dashboard: writing {} hosts ...", cfg.shape.hosts + 1);
        let s = seed::seed(&store, cfg.shape, USERNAME, PASSWORD).await?;
        eprintln!(
            "dashboard: {} hosts, {} packages written in {:.1} s",
            s.hosts,
            s.packages,
            s.took.as_secs_f64()
        );
        Ok::<_, anyhow::Error>(s)
    })?;
    let listener = server_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let s = settings(addr, &db, &pki.server_cert, &pki.server_key)?;
    let server = server_rt.spawn(async move {
        patchctl_server::launch_with_listener(s, listener, async move {
            let _ = stop_rx.await;
        })
        .await
        .map_err(anyhow::Error::from)
    });
    let base = format!("https://127.0.0.1:{}", addr.port());
    let measured = client_rt.block_on(measure(&base, &pki.ca_cert, cfg, &seeded));
    let _ = stop_tx.send(());
    let _ =
        server_rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), server).await });
    server_rt.shutdown_timeout(Duration::from_secs(5));
    let (engine_ready, pages) = measured?;
    Ok(Report {
        config: cfg,
        seeded,
        engine_ready,
        pages,
    })
}

/// Logs in through the login form.
async fn login(b: &mut Browser) -> anyhow::Result<()> {
    let form = b.get("/ui/login").await?;
    anyhow::ensure!(form.status.is_success(), "GET /ui/login: {}", form.status);
    let mut fields = vec![("username", USERNAME), ("password", PASSWORD)];
    let csrf = form.hidden("csrf");
    if let Some(c) = csrf.as_deref() {
        fields.push(("csrf", c));
    }
    let r = b.post_form("/ui/login", &fields).await?;
    anyhow::ensure!(
        r.status.is_redirection() || r.status.is_success(),
        "POST /ui/login: {}: {}",
        r.status,
        r.body.chars().take(300).collect::<String>()
    );
    let overview = b.get("/ui/").await?;
    anyhow::ensure!(
        overview.status.is_success(),
        "the login did not give a session: GET /ui/ answers {}",
        overview.status
    );
    Ok(())
}

/// Waits until the CVE engine has correlated the fleet (the summary answers).
async fn engine_ready(b: &mut Browser) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let p = b.get("/ui/vulns").await?;
        if p.status.is_success() && !p.body.contains("engine-loading") {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < ENGINE_TIMEOUT,
            "the CVE engine did not load the fleet within {ENGINE_TIMEOUT:?} (GET /ui/vulns: {})",
            p.status
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn time_page(
    b: &mut Browser,
    label: &str,
    path: &str,
    samples: usize,
    target: Option<Duration>,
) -> anyhow::Result<PageTime> {
    let mut bytes = 0;
    for _ in 0..3 {
        let p = b.get(path).await?;
        anyhow::ensure!(
            p.status.is_success(),
            "GET {path}: {}: {}",
            p.status,
            p.body.chars().take(300).collect::<String>()
        );
        bytes = p.body.len();
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t0 = Instant::now();
        let p = b.get(path).await?;
        times.push(t0.elapsed());
        anyhow::ensure!(p.status.is_success(), "GET {path}: {}", p.status);
    }
    times.sort_unstable();
    let t = PageTime {
        label: label.to_owned(),
        path: path.to_owned(),
        bytes,
        p50: percentile(&times, 0.50),
        p95: percentile(&times, 0.95),
        max: times[times.len() - 1],
        target,
    };
    eprintln!(
        "dashboard: {label}: p50 {} ms, p95 {} ms, max {} ms",
        ms(t.p50),
        ms(t.p95),
        ms(t.max)
    );
    Ok(t)
}

async fn measure(
    base: &str,
    ca: &Path,
    cfg: Config,
    seeded: &seed::Seeded,
) -> anyhow::Result<(Duration, Vec<PageTime>)> {
    let mut b = Browser::new(base, ca, REQUEST_TIMEOUT)?;
    // the platform answers once it listens
    let start = Instant::now();
    while b.get("/healthz").await.is_err() {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "the platform did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    login(&mut b).await.context("cannot log in")?;
    let ready = engine_ready(&mut b).await?;
    let n = cfg.samples.max(1);
    let deep = cfg.shape.hosts / 2;
    let mut pages = Vec::new();
    for (label, path, target) in [
        ("fleet overview", "/ui/".to_owned(), Some(TARGET_LIST)),
        (
            "hosts, first page",
            "/ui/hosts".to_owned(),
            Some(TARGET_LIST),
        ),
        (
            "hosts, filtered (search, online, by updates)",
            format!(
                "/ui/hosts?q={}&status=online&sort=updates",
                &seed::hostname(deep)[..8]
            ),
            Some(TARGET_LIST),
        ),
        (
            "hosts, deep page (middle of the fleet)",
            format!("/ui/hosts?page={}", deep / 50),
            Some(TARGET_LIST),
        ),
        (
            "host with 3,000 packages",
            format!("/ui/hosts/{}", seeded.big_host),
            Some(TARGET_HOST),
        ),
        ("vulnerabilities", "/ui/vulns".to_owned(), None),
        ("commands", "/ui/commands".to_owned(), None),
        ("audit log", "/ui/audit".to_owned(), None),
    ] {
        pages.push(time_page(&mut b, label, &path, n, target).await?);
    }
    Ok((ready, pages))
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let s = &r.seeded;
    let mut out = format!(
        "### Dashboard render (issue 13)\n\n\
         The platform on SQLite over TLS 1.3 on loopback; {} hosts ({} small hosts with \
         {} packages each and one with {} packages), {} packages stored in all, {} \
         vulnerability records, {} commands, written through the storage API in {:.1} s; \
         the CVE engine had the fleet {:.1} s after the platform started. One logged-in \
         owner, one connection, {} timed requests per page after 3 untimed ones; the \
         time is the whole answer read.\n\n\
         | Page | Path | Bytes | p50 ms | p95 ms | max ms | Target p95 | |\n\
         |---|---|---:|---:|---:|---:|---:|---|\n",
        thousands(s.hosts as u64),
        thousands(r.config.shape.hosts as u64),
        r.config.shape.small_packages,
        thousands(r.config.shape.big_packages as u64),
        thousands(s.packages),
        s.records,
        thousands(s.commands as u64),
        s.took.as_secs_f64(),
        r.engine_ready.as_secs_f64(),
        r.config.samples,
    );
    for p in &r.pages {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} | {} |\n",
            p.label,
            p.path.replace(&s.big_host.to_string(), "{big}"),
            thousands(p.bytes as u64),
            ms(p.p50),
            ms(p.p95),
            ms(p.max),
            p.target
                .map_or("—".to_owned(), |t| format!("≤ {} ms", t.as_millis())),
            if p.target.is_none() {
                ""
            } else if p.ok() {
                "met"
            } else {
                "**MISSED**"
            },
        ));
    }
    out
}
