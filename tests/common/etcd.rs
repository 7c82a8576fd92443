//! A real etcd (Debian `etcd-server`) per test: 127.0.0.1 with free ports
//! and a temporary data dir, killed and removed on drop (also on panic).
//! `etcdctl` (Debian `etcd-client`, API v3) plays flanneld's part in
//! writing leases, so what flannel-gen reads was not written by flannel-gen.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

use super::netns::must;

pub struct Etcd {
    child: Option<Child>,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// TLS files when started with [`Etcd::start_tls`].
    pub tls: Option<TlsFiles>,
}

pub struct TlsFiles {
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate (openssl).
fn make_certs(dir: &Path) -> (TlsFiles, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let sh = format!(
        "set -e; cd {d}
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > ext.cnf
for n in server client; do
  openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null
  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem -days 2 -extfile ext.cnf 2>/dev/null
done",
        d = dir.display()
    );
    must(Command::new("sh").args(["-c", &sh]));
    let files = TlsFiles { ca: p("ca.pem"), client_cert: p("client.pem"), client_key: p("client.key") };
    (files, p("server.pem"), p("server.key"))
}

impl Etcd {
    pub fn start() -> Etcd {
        Etcd::launch(false)
    }

    /// etcd serving https only, requiring client certificates.
    pub fn start_tls() -> Etcd {
        Etcd::launch(true)
    }

    fn launch(tls: bool) -> Etcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let (client, peer) = (free_port(), free_port());
        let scheme = if tls { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut cmd = Command::new("etcd");
        cmd.args(["--name", "test", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &url, "--advertise-client-urls", &url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("test={peer_url}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("etcd.log")).expect("log"));
        let mut files = None;
        if tls {
            let (f, cert, key) = make_certs(dir.path());
            cmd.args(["--client-cert-auth", "--trusted-ca-file"]).arg(&f.ca);
            cmd.arg("--cert-file").arg(cert).arg("--key-file").arg(key);
            files = Some(f);
        }
        let child = cmd.spawn().expect("etcd (Debian etcd-server)");
        let e = Etcd { child: Some(child), url, dir, tls: files };
        e.wait_ready();
        e
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.etcdctl(&["endpoint", "health"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        panic!("etcd did not become healthy at {}:\n{log}", self.url);
    }

    /// `etcdctl` (API v3) against this etcd.
    pub fn etcdctl(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3").args(["--endpoints", &self.url, "--command-timeout", "5s"]);
        if let Some(t) = &self.tls {
            cmd.arg("--cacert").arg(&t.ca).arg("--cert").arg(&t.client_cert).arg("--key").arg(&t.client_key);
        }
        cmd.args(args).output().expect("etcdctl (Debian etcd-client)")
    }

    pub fn must(&self, args: &[&str]) -> String {
        let o = self.etcdctl(args);
        assert!(o.status.success(), "etcdctl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A key with a TTL lease, as flanneld's `createSubnet` writes it
    /// (pkg/subnet/etcd/registry.go: Grant(ttl) then Put WithLease).
    pub fn put_leased(&self, key: &str, value: &str, ttl_secs: u64) {
        let granted = self.must(&["lease", "grant", &ttl_secs.to_string()]);
        let id = granted.split_whitespace().nth(1).expect("lease id").to_string();
        self.must(&["put", &format!("--lease={id}"), key, value]);
    }

    pub fn put(&self, key: &str, value: &str) {
        self.must(&["put", key, value]);
    }

    /// Every key under `prefix`: key -> (value, lease id, mod revision).
    pub fn dump(&self, prefix: &str) -> std::collections::BTreeMap<String, (String, i64, i64)> {
        let v: Value = serde_json::from_str(&self.must(&["get", "--prefix", prefix, "-w", "json"])).expect("json");
        let b64 = |s: &Value| {
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(s.as_str().unwrap_or_default()).expect("base64");
            String::from_utf8(bytes).expect("utf8")
        };
        v["kvs"]
            .as_array()
            .map(|kvs| {
                kvs.iter()
                    .map(|kv| {
                        let lease = kv["lease"].as_i64().unwrap_or(0);
                        let rev = kv["mod_revision"].as_i64().unwrap_or(0);
                        (b64(&kv["key"]), (b64(&kv["value"]), lease, rev))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Kills etcd now (to test an unreachable store); drop still cleans up.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}
