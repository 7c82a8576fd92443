//! `--healthz-port`: the HTTP endpoints of the long-running modes (`apply
//! --watch`, `udp`), as flanneld serves them (main.go `mustRunHealthz`):
//! `/healthz` (200 while the process runs), `/readyz` (200 once the first
//! pass succeeded, 503 before), and `/metrics` in Prometheus' text
//! exposition format (version 0.0.4). One thread, one request per
//! connection, plain std networking.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where `/metrics` comes from.
pub type MetricsFn = dyn Fn() -> String + Send + Sync;

/// What the endpoints report, shared with the mode that runs.
pub struct Health {
    pub ready: AtomicBool,
    metrics: Box<MetricsFn>,
}

impl Health {
    pub fn new(metrics: Box<MetricsFn>) -> Arc<Health> {
        Arc::new(Health { ready: AtomicBool::new(false), metrics })
    }
}

/// Serves `listener` (bound by the caller, in the namespace it runs in, so
/// a taken port fails before anything else) until the process exits.
pub fn serve(listener: TcpListener, health: Arc<Health>, name: &'static str) -> io::Result<()> {
    std::thread::Builder::new().name("healthz".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            // A client that stalls cannot hold the endpoint for long.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = respond(stream, &health, name);
        }
    })?;
    Ok(())
}

fn respond(mut stream: TcpStream, health: &Health, name: &str) -> io::Result<()> {
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, kind, body) = match (method, path) {
        ("GET", "/healthz") => ("200 OK", "text/plain", format!("{name} is running")),
        ("GET", "/readyz") if health.ready.load(Ordering::Relaxed) => {
            ("200 OK", "text/plain", format!("{name} is ready"))
        }
        ("GET", "/readyz") => ("503 Service Unavailable", "text/plain", format!("{name} is not ready yet")),
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", (health.metrics)()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found".into()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET".into()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// One metric in the exposition format: HELP, TYPE and the sample.
pub fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

/// Seconds since the epoch, for `*_timestamp_seconds` gauges.
pub fn now_seconds() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The counters of `apply --watch`.
#[derive(Default)]
pub struct WatchMetrics {
    pub passes: AtomicU64,
    pub changes: AtomicU64,
    pub repairs: AtomicU64,
    pub failures: AtomicU64,
    /// Milliseconds since the epoch of the last successful pass (0: none).
    pub last_success_ms: AtomicU64,
}

impl WatchMetrics {
    /// Records one pass: its changes, or its failure.
    pub fn pass(&self, changes: Option<usize>) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        match changes {
            Some(n) => {
                self.changes.fetch_add(n as u64, Ordering::Relaxed);
                if n > 0 {
                    self.repairs.fetch_add(1, Ordering::Relaxed);
                }
                self.last_success_ms.store((now_seconds() * 1000.0) as u64, Ordering::Relaxed);
            }
            None => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let mut s = String::new();
        metric(
            &mut s,
            "flannel_gen_apply_passes_total",
            "counter",
            "Converge passes of apply --watch.",
            get(&self.passes),
        );
        metric(&mut s, "flannel_gen_apply_changes_total", "counter", "Kernel objects changed.", get(&self.changes));
        metric(
            &mut s,
            "flannel_gen_drift_repaired_total",
            "counter",
            "Passes that found and repaired drift (the first apply included).",
            get(&self.repairs),
        );
        metric(&mut s, "flannel_gen_apply_failures_total", "counter", "Passes that failed.", get(&self.failures));
        metric(
            &mut s,
            "flannel_gen_last_success_timestamp_seconds",
            "gauge",
            "When the last pass succeeded (seconds since the epoch).",
            get(&self.last_success_ms) / 1000.0,
        );
        s
    }
}
