//! WireGuard devices on a kernel without the module: the userspace
//! implementation wg-quick would run (`WG_QUICK_USERSPACE_IMPLEMENTATION`,
//! else `wireguard-go`) makes the device and serves its UAPI socket; apply
//! starts it, reads it and configures it. The implementation exits when its
//! device is deleted, so teardown is deleting the device.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::desired::Desired;
use super::live::Live;
use super::netlink::NetlinkError;
use crate::plan::objects::WireguardDevice;
use crate::wireguard::{keyfile, uapi};

/// wg-quick's variable naming the userspace implementation.
pub const IMPLEMENTATION_ENV: &str = "WG_QUICK_USERSPACE_IMPLEMENTATION";
pub const DEFAULT_IMPLEMENTATION: &str = "wireguard-go";
/// How long a started implementation may take to serve its socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The program that makes userspace WireGuard devices here.
pub fn implementation() -> String {
    std::env::var(IMPLEMENTATION_ENV).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_IMPLEMENTATION.into())
}

/// Where the implementation is, if it can be found (a path, or on PATH).
pub fn find_implementation() -> Option<PathBuf> {
    let program = implementation();
    if program.contains('/') {
        return Some(PathBuf::from(&program)).filter(|p| p.is_file());
    }
    super::rules::find(&program)
}

/// Starts the implementation for `device` and waits until it serves the
/// device's socket. It detaches itself (wireguard-go forks into the
/// background); its output goes nowhere, so no pipe of ours is held open.
pub fn start(device: &WireguardDevice) -> Result<(), NetlinkError> {
    let err = |why: String| NetlinkError::Wireguard { dev: device.name.clone(), why };
    let program = find_implementation().ok_or_else(|| err(format!("{} not found", implementation())))?;
    std::fs::create_dir_all(uapi::SOCKET_DIR).map_err(|e| err(format!("{}: {e}", uapi::SOCKET_DIR)))?;
    let status = Command::new(&program)
        .arg(&device.name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| err(format!("{}: {e}", program.display())))?;
    if !status.success() {
        return Err(err(format!("{} {} failed ({status})", program.display(), device.name)));
    }
    let since = Instant::now();
    while uapi::get(&device.name).is_err() {
        if since.elapsed() > START_TIMEOUT {
            let path = uapi::socket_path(&device.name);
            return Err(err(format!(
                "{} did not serve {} within {START_TIMEOUT:?}",
                program.display(),
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Sets the device's key, port and peers as planned (replacing its peers).
pub fn configure(device: &WireguardDevice) -> Result<(), NetlinkError> {
    let err = |why: String| NetlinkError::Wireguard { dev: device.name.clone(), why };
    let private = keyfile::require(device.key_file.as_ref()).map_err(|e| err(e.to_string()))?.key;
    if private.public() != device.public_key {
        return Err(err(format!("{} is not the key the plan names ({})", device.key_file, device.public_key)));
    }
    let psk = match &device.psk_file {
        Some(f) => Some(keyfile::require(f.as_ref()).map_err(|e| err(e.to_string()))?.key),
        None => None,
    };
    let want = super::reconcile::wireguard::config_of(device, psk);
    uapi::set(&device.name, &uapi::set_request(&private, &want)).map_err(|e| err(e.to_string()))
}

/// The UAPI state of every userspace WireGuard device `desired` plans or
/// owns, and the pre-shared keys it names.
pub fn read(live: &mut Live, desired: &Desired) -> Result<(), NetlinkError> {
    let planned = desired.planned_names();
    let ours: Vec<String> = live
        .links
        .values()
        .filter(|l| l.kind.as_deref() == Some("tun"))
        .filter(|l| planned.contains(&l.name.as_str()) || l.alias.as_deref() == Some(desired.marker.as_str()))
        .filter(|l| uapi::serves(&l.name))
        .map(|l| l.name.clone())
        .collect();
    for name in ours {
        let config = uapi::get(&name).map_err(|e| NetlinkError::Wireguard { dev: name.clone(), why: e.to_string() })?;
        live.wireguard.insert(name, config);
    }
    for f in desired.wireguard.iter().filter_map(|w| w.device.psk_file.as_ref()) {
        let err =
            |e: keyfile::KeyFileError| NetlinkError::Wireguard { dev: "pre-shared key".into(), why: e.to_string() };
        live.psk_files.insert(f.clone(), keyfile::require(f.as_ref()).map_err(err)?.key);
    }
    Ok(())
}
