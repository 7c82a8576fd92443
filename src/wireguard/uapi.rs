//! The configuration protocol of userspace WireGuard implementations
//! (wireguard-go, boringtun): a Unix socket at
//! `/var/run/wireguard/<device>.sock` that takes `get=1` and `set=1`
//! requests of `key=value` lines ending in an empty line, and answers
//! `errno=N` (https://www.wireguard.com/xplatform/). Keys are hex there.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::key::Key;

/// Where implementations put their sockets (wg(8) and wg-quick look there).
pub const SOCKET_DIR: &str = "/var/run/wireguard";
/// An answer larger than this is not a device's configuration.
const MAX_ANSWER: u64 = 64 << 20;
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum UapiError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: the implementation answered errno={errno}")]
    Refused { path: PathBuf, errno: i32 },
    #[error("line {line}: {why}")]
    Parse { line: usize, why: String },
}

/// One peer as the device has it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerConfig {
    pub public_key: Option<Key>,
    pub preshared_key: Option<Key>,
    pub endpoint: Option<SocketAddr>,
    pub persistent_keepalive: u16,
    pub allowed_ips: Vec<IpNet>,
}

/// What `get=1` answers, less the counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceConfig {
    /// The public key of the device's private key (the private key itself
    /// is not kept).
    pub public_key: Option<Key>,
    pub listen_port: u16,
    pub peers: Vec<PeerConfig>,
}

pub fn socket_path(device: &str) -> PathBuf {
    PathBuf::from(SOCKET_DIR).join(format!("{device}.sock"))
}

/// Whether an implementation serves `device` here.
pub fn serves(device: &str) -> bool {
    std::fs::symlink_metadata(socket_path(device)).is_ok()
}

/// The device's configuration.
pub fn get(device: &str) -> Result<DeviceConfig, UapiError> {
    let text = exchange(device, "get=1\n\n")?;
    parse_get(&text)
}

/// Sends a `set=1` request made by [`set_request`].
pub fn set(device: &str, request: &str) -> Result<(), UapiError> {
    let text = exchange(device, request)?;
    match errno(&text) {
        Some(0) => Ok(()),
        Some(errno) => Err(UapiError::Refused { path: socket_path(device), errno }),
        None => Err(UapiError::Parse { line: 1, why: "no errno in the answer".into() }),
    }
}

fn exchange(device: &str, request: &str) -> Result<String, UapiError> {
    let path = socket_path(device);
    let io = |source| UapiError::Io { path: path.clone(), source };
    let mut s = UnixStream::connect(&path).map_err(io)?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    s.write_all(request.as_bytes()).map_err(io)?;
    // The answer ends with an empty line; the implementation keeps the
    // connection open for more requests, so read until then.
    let mut text = Vec::new();
    let mut buf = [0u8; 8192];
    let mut reader = (&mut s).take(MAX_ANSWER);
    while !text.ends_with(b"\n\n") {
        let n = reader.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(text).map_err(|_| UapiError::Parse { line: 0, why: "not UTF-8".into() })
}

fn errno(text: &str) -> Option<i32> {
    text.lines().find_map(|l| l.strip_prefix("errno=")).and_then(|v| v.parse().ok())
}

/// Parses a `get=1` answer. Unknown keys are skipped (newer implementations
/// add some); known keys with bad values are errors.
pub fn parse_get(text: &str) -> Result<DeviceConfig, UapiError> {
    let mut dev = DeviceConfig::default();
    let mut errno_seen = None;
    for (i, line) in text.lines().enumerate() {
        let bad = |why: String| UapiError::Parse { line: i + 1, why };
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| bad(format!("`{line}` is not key=value")))?;
        let key = || Key::from_hex(v).ok_or_else(|| bad(format!("{k}: not 64 hex digits")));
        let no_peer = || bad(format!("{k} before any public_key"));
        match k {
            "private_key" => dev.public_key = Some(key()?.public()),
            "listen_port" => dev.listen_port = v.parse().map_err(|_| bad(format!("listen_port: `{v}`")))?,
            "public_key" => dev.peers.push(PeerConfig { public_key: Some(key()?), ..PeerConfig::default() }),
            "preshared_key" => {
                let k = key()?;
                last_peer(&mut dev).ok_or_else(no_peer)?.preshared_key = (k != Key::ZERO).then_some(k);
            }
            "endpoint" => {
                last_peer(&mut dev).ok_or_else(no_peer)?.endpoint =
                    Some(v.parse().map_err(|_| bad(format!("endpoint: `{v}`")))?)
            }
            "persistent_keepalive_interval" => {
                last_peer(&mut dev).ok_or_else(no_peer)?.persistent_keepalive =
                    v.parse().map_err(|_| bad(format!("keepalive: `{v}`")))?;
            }
            "allowed_ip" => {
                let net: IpNet = v.parse().map_err(|_| bad(format!("allowed_ip: `{v}`")))?;
                last_peer(&mut dev).ok_or_else(no_peer)?.allowed_ips.push(net);
            }
            "errno" => errno_seen = Some(v.parse::<i32>().map_err(|_| bad(format!("errno: `{v}`")))?),
            _ => {}
        }
    }
    match errno_seen {
        Some(0) => Ok(dev),
        Some(e) => Err(UapiError::Parse { line: 0, why: format!("the implementation answered errno={e}") }),
        None => Err(UapiError::Parse { line: 0, why: "no errno in the answer".into() }),
    }
}

fn last_peer(dev: &mut DeviceConfig) -> Option<&mut PeerConfig> {
    dev.peers.last_mut()
}

/// A `set=1` request that makes the device exactly `want`: its key, port
/// and peers, replacing whatever peers it had.
pub fn set_request(private: &Key, want: &DeviceConfig) -> String {
    use std::fmt::Write as _;
    let mut s = format!("set=1\nprivate_key={}\nlisten_port={}\nreplace_peers=true\n", private.hex(), want.listen_port);
    for p in &want.peers {
        let Some(k) = p.public_key else { continue };
        let _ = writeln!(s, "public_key={}", k.hex());
        if let Some(psk) = p.preshared_key {
            let _ = writeln!(s, "preshared_key={}", psk.hex());
        }
        if let Some(e) = p.endpoint {
            let _ = writeln!(s, "endpoint={e}");
        }
        let _ = writeln!(s, "persistent_keepalive_interval={}", p.persistent_keepalive);
        s.push_str("replace_allowed_ips=true\n");
        for a in &p.allowed_ips {
            let _ = writeln!(s, "allowed_ip={a}");
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_request_reads_back_as_the_same_device() {
        let private = Key::generate().unwrap();
        let peer = Key::generate().unwrap().public();
        let want = DeviceConfig {
            public_key: Some(private.public()),
            listen_port: 51820,
            peers: vec![PeerConfig {
                public_key: Some(peer),
                preshared_key: None,
                endpoint: Some("[fd00::2]:51821".parse().unwrap()),
                persistent_keepalive: 25,
                allowed_ips: vec!["fd00:10:244:2::/64".parse().unwrap()],
            }],
        };
        // What wireguard-go answers has the same lines, minus the set-only
        // ones, plus counters and errno.
        let answer: String = set_request(&private, &want)
            .lines()
            .filter(|l| !l.starts_with("set=") && !l.starts_with("replace_"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .trim_end()
            .to_string()
            + "\nrx_bytes=0\nprotocol_version=1\nerrno=0\n\n";
        assert_eq!(parse_get(&answer).unwrap(), want);
    }

    #[test]
    fn bad_answers_are_located() {
        let e = parse_get("listen_port=1\nallowed_ip=10.0.0.0/8\nerrno=0\n\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: allowed_ip before any public_key");
        let e = parse_get("private_key=zz\nerrno=0\n\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: private_key: not 64 hex digits");
        assert!(parse_get("listen_port=1\n\n").is_err(), "no errno");
        assert!(parse_get("errno=2\n\n").is_err());
        assert_eq!(parse_get("errno=0\n\n").unwrap(), DeviceConfig::default());
    }
}
