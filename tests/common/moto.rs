//! A real EC2 API on loopback per test: moto's server (PyPI `moto[server]`)
//! on a free port, killed on drop (also on panic). The AWS CLI (PyPI
//! `awscli`, botocore: AWS's own Python SDK) builds the VPC world and reads
//! it back, so what a test checks was not read by flannel-gen's client.
//! `.ci/run` installs both into a venv and names its bin directory in
//! `FLANNEL_GEN_CLOUD_BIN`; elsewhere they are looked up on PATH.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub url: String,
    /// The server's log and its request recording.
    pub dir: tempfile::TempDir,
}

/// A program of the venv (or PATH).
fn program(name: &str) -> PathBuf {
    match std::env::var_os("FLANNEL_GEN_CLOUD_BIN") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => PathBuf::from(name),
    }
}

/// Whether moto's server and the AWS CLI are here; a loud skip (or, under
/// FLANNEL_GEN_E2E=require, a failure) when not.
pub fn available(test: &str) -> bool {
    let runs = |p: &str, arg: &str| Command::new(program(p)).arg(arg).output().is_ok_and(|o| o.status.success());
    let have = runs("moto_server", "--help") && runs("aws", "--version");
    if !have {
        if std::env::var("FLANNEL_GEN_E2E").as_deref() == Ok("require") {
            panic!("{test}: needs moto_server and aws (pip install 'moto[server]' awscli) (FLANNEL_GEN_E2E=require)");
        }
        eprintln!("SKIPPED {test}: needs moto_server and aws (pip install 'moto[server]' awscli)");
    }
    have
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let dir = tempfile::tempdir().expect("moto dir");
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("log");
        let child = Command::new(program("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", dir.path().join("recording"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("moto_server");
        let m = Moto { child, url: format!("http://127.0.0.1:{port}"), dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ureq::get(format!("{}/moto-api/", m.url)).call().is_ok() {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(m.dir.path().join("moto.log")).unwrap_or_default();
        panic!("moto_server did not answer at {}:\n{log}", m.url);
    }

    /// The environment the AWS CLI and flannel-gen share: this server, moto's
    /// test credentials, us-east-1.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
            // Never 169.254.169.254 from a test.
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// `aws ec2 ARGS --output text`, which must succeed; its stdout, trimmed.
    pub fn ec2(&self, args: &[&str]) -> String {
        let out = self.aws(args);
        assert!(out.status.success(), "aws ec2 {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn aws(&self, args: &[&str]) -> Output {
        Command::new(program("aws"))
            .arg("ec2")
            .args(args)
            .args(["--output", "text"])
            .envs(self.env())
            .output()
            .expect("aws")
    }

    /// A shell command with the AWS CLI on PATH and this server's environment.
    pub fn sh(&self, script: &std::path::Path) -> Output {
        let mut path = std::env::var_os("PATH").unwrap_or_default();
        if let Some(dir) = std::env::var_os("FLANNEL_GEN_CLOUD_BIN") {
            let mut p = dir;
            p.push(":");
            p.push(&path);
            path = p;
        }
        Command::new("sh").arg(script).env("PATH", path).envs(self.env()).output().expect("sh")
    }

    /// Start recording every request the server gets, from now.
    pub fn record(&self) {
        ureq::post(format!("{}/moto-api/recorder/reset-recording", self.url)).send_empty().expect("reset recording");
        ureq::post(format!("{}/moto-api/recorder/start-recording", self.url)).send_empty().expect("start recording");
    }

    /// The EC2 actions the server got since [`Moto::record`].
    pub fn recorded_actions(&self) -> Vec<String> {
        self.recorded().iter().filter_map(|(action, _)| action.clone()).collect()
    }

    /// Every request since [`Moto::record`]: its EC2 action (if any) and its
    /// Authorization header.
    pub fn recorded(&self) -> Vec<(Option<String>, String)> {
        ureq::post(format!("{}/moto-api/recorder/stop-recording", self.url)).send_empty().expect("stop recording");
        let text = ureq::get(format!("{}/moto-api/recorder/download-recording", self.url))
            .call()
            .expect("download recording")
            .body_mut()
            .read_to_string()
            .expect("recording");
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let auth = v["headers"]["Authorization"].as_str().unwrap_or_default().to_string();
                (action_of(&v), auth)
            })
            .collect()
    }
}

/// The `Action=` of a recorded request's form body (moto keeps bodies base64).
fn action_of(v: &serde_json::Value) -> Option<String> {
    use base64::Engine;
    let body = v.get("body")?.as_str()?;
    let body = if v.get("body_encoded").and_then(|e| e.as_bool()) == Some(true) {
        let bytes = base64::engine::general_purpose::STANDARD.decode(body).ok()?;
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        body.to_string()
    };
    body.split('&').find_map(|kv| kv.strip_prefix("Action=").map(str::to_string))
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
