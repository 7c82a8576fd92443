//! WireGuard devices: the userspace implementation's device made or
//! replaced, its link settings corrected, and its key, port and peers set
//! over its UAPI socket whenever they differ from the plan.

use super::{Ctx, Refusal};
use crate::apply::ops::Op;
use crate::plan::objects::WireguardDevice;
use crate::wireguard::key::Key;
use crate::wireguard::uapi::{DeviceConfig, PeerConfig};

/// What the device's UAPI should report: the plan's port and peers, its
/// own public key, and the pre-shared key `psk` on every peer.
pub fn config_of(d: &WireguardDevice, psk: Option<Key>) -> DeviceConfig {
    let mut peers: Vec<PeerConfig> = d
        .peers
        .iter()
        .map(|p| PeerConfig {
            public_key: Some(p.public_key),
            preshared_key: psk,
            endpoint: Some(p.endpoint),
            persistent_keepalive: d.persistent_keepalive,
            allowed_ips: p.allowed_ips.clone(),
        })
        .collect();
    sort(&mut peers);
    DeviceConfig { public_key: Some(d.public_key), listen_port: d.port, peers }
}

fn sort(peers: &mut [PeerConfig]) {
    for p in peers.iter_mut() {
        p.allowed_ips.sort_unstable();
    }
    peers.sort_by_key(|p| p.public_key.map(|k| k.to_string()));
}

/// How `have` differs from `want`, for the change line.
fn differences(want: &DeviceConfig, have: &DeviceConfig) -> Vec<String> {
    let mut why = Vec::new();
    if have.public_key != want.public_key {
        why.push("private key".to_string());
    }
    if have.listen_port != want.listen_port {
        why.push(format!("listen-port {}→{}", have.listen_port, want.listen_port));
    }
    let mut peers = have.peers.clone();
    sort(&mut peers);
    if peers != want.peers {
        let keys = |v: &[PeerConfig]| v.iter().filter_map(|p| p.public_key).collect::<Vec<_>>();
        let (w, h) = (keys(&want.peers), keys(&peers));
        let added = w.iter().filter(|k| !h.contains(k)).count();
        let removed = h.iter().filter(|k| !w.contains(k)).count();
        let changed = want
            .peers
            .iter()
            .filter(|p| p.public_key.is_some_and(|k| h.contains(&k)))
            .count()
            .saturating_sub(want.peers.iter().filter(|p| peers.contains(p)).count());
        why.push(format!("peers +{added} -{removed} ~{changed}"));
    }
    why
}

/// Every desired WireGuard device: made, replaced, corrected, configured.
pub(super) fn devices(ctx: &mut Ctx, ops: &mut Vec<Op>) -> Result<(), Refusal> {
    for want in &ctx.desired.wireguard {
        let d = &want.device;
        let create = Op::CreateWireguard { device: d.clone(), alias: want.alias.clone(), up: want.up };
        let Some(have) = ctx.live.links.get(&d.name) else {
            ops.push(create);
            ctx.fresh.insert(d.name.clone());
            continue;
        };
        let owned = have.alias.as_deref() == Some(ctx.desired.marker.as_str());
        let psk = d.psk_file.as_ref().and_then(|f| ctx.live.psk_files.get(f).copied());
        let want_config = config_of(d, psk);
        let why = match ctx.live.wireguard.get(&d.name) {
            Some(_) if have.kind.as_deref() == Some("tun") => Vec::new(),
            _ => vec![format!("kind {}, want a userspace WireGuard device", have.kind.as_deref().unwrap_or("none"))],
        };
        let config_why = ctx.live.wireguard.get(&d.name).map(|c| differences(&want_config, c)).unwrap_or_default();
        if !owned && !ctx.opts.adopt && (!why.is_empty() || !config_why.is_empty()) {
            let differences = why.iter().chain(&config_why).cloned().collect::<Vec<_>>().join(", ");
            return Err(Refusal::Unowned { name: d.name.clone(), differences });
        }
        if !why.is_empty() {
            ops.push(Op::DeleteLink { name: d.name.clone(), why: why.join(", "), replacing: true });
            ops.push(create);
            ctx.fresh.insert(d.name.clone());
            continue;
        }
        let f = super::links::simple_fix(d.mtu, want.up, &want.alias, have);
        if !f.is_empty() {
            ops.push(Op::FixLink { name: d.name.clone(), fix: f });
        }
        if !config_why.is_empty() {
            ops.push(Op::ConfigureWireguard { device: d.clone(), why: config_why.join(", ") });
        }
    }
    Ok(())
}
