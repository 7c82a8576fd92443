//! flanneld's network config (`<prefix>/config`, net-conf.json) from a
//! topology, and the check that an existing one describes the same network.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::netaddr::Family;
use crate::topology::netconf::{self, NetConf};
use crate::topology::{BackendKind, Cluster, RulesBackend};

/// The net-conf.json flanneld nodes need to join this cluster: every value
/// explicit, so flanneld's defaults never decide anything.
pub fn netconf_json(c: &Cluster) -> String {
    let mut out = String::from("{");
    let v4 = c.pools.get(Family::V4);
    if v4.is_none() {
        out.push_str(r#""EnableIPv4":false,"#);
    }
    if let Some(p) = v4 {
        let _ = write!(
            out,
            r#""Network":"{}","SubnetLen":{},"SubnetMin":"{}","SubnetMax":"{}","#,
            p.network, p.len, p.min, p.max
        );
    }
    if let Some(p) = c.pools.get(Family::V6) {
        let _ = write!(
            out,
            r#""EnableIPv6":true,"IPv6Network":"{}","IPv6SubnetLen":{},"IPv6SubnetMin":"{}","IPv6SubnetMax":"{}","#,
            p.network, p.len, p.min, p.max
        );
    }
    if c.traffic.rules == Some(RulesBackend::Nftables) {
        out.push_str(r#""EnableNFTables":true,"#);
    }
    let b = &c.backend;
    let _ = write!(out, r#""Backend":{{"Type":"{}""#, b.kind.as_str());
    if b.kind == BackendKind::Udp {
        let _ = write!(out, r#","Port":{}"#, b.port);
    }
    if let Some(crate::topology::CloudBackend::Aws { route_tables }) = &b.cloud
        && !route_tables.is_empty()
    {
        let _ = write!(out, r#","RouteTableID":{}"#, serde_json::json!(route_tables));
    }
    if let Some(w) = &b.wireguard {
        // The PSK is not in git: flanneld nodes of a cluster with pskFile
        // need it added by hand (publish warns).
        let _ = write!(out, r#","ListenPort":{},"ListenPortV6":{}"#, b.port, w.port_v6);
        if w.persistent_keepalive != 0 {
            let _ = write!(out, r#","PersistentKeepaliveInterval":{}"#, w.persistent_keepalive);
        }
    }
    if b.kind == BackendKind::Vxlan {
        let _ = write!(out, r#","VNI":{},"Port":{}"#, b.vni, b.port);
        for (on, key) in [(b.direct_routing, "DirectRouting"), (b.gbp, "GBP"), (b.learning, "Learning")] {
            if on {
                let _ = write!(out, r#","{key}":true"#);
            }
        }
    }
    out.push_str("}}");
    out
}

/// The existing config as a cluster, through the same validation a
/// topology gets (one stand-in node with the topology's first node's
/// addresses, so pools and backend resolve exactly as they would).
fn as_cluster(key: &str, conf: &NetConf, c: &Cluster) -> Result<Cluster, String> {
    let mut conf = conf.clone();
    // gce's project and network are not in the config (flanneld read them
    // from the metadata): the topology's stand in, as does an instance.
    if let Some(crate::topology::CloudBackend::Gce { project, network }) = &c.backend.cloud {
        conf.backend.gce = Some((project.clone(), network.clone()));
    }
    let mut yaml = conf.topology_head(&c.name, c.ip_masq, None);
    yaml.push_str("nodes:\n  - name: stand-in\n");
    match conf.backend.kind {
        BackendKind::AwsVpc => yaml.push_str("    instanceID: i-00000000\n"),
        BackendKind::Gce => yaml.push_str("    instance: stand-in\n    zone: us-central1-a\n"),
        _ => {}
    }
    if let Some(n) = c.nodes.first() {
        for (f, ip) in n.ips.iter() {
            let _ = writeln!(yaml, "    {}: {ip}", if f == Family::V4 { "ip" } else { "ip6" });
        }
    }
    let file = PathBuf::from(format!("etcd:{key}"));
    let doc = crate::topology::parse::parse_topology(&file, &yaml).map_err(|d| d.to_string())?;
    crate::topology::validate::validate(&file, &doc).map_err(|d| d.to_string())
}

/// Differences that break a mixed cluster (errors) and ones that only make
/// flanneld nodes behave differently (warnings).
pub fn compare(key: &str, value: &str, c: &Cluster) -> (Vec<String>, Vec<String>) {
    let conf = match netconf::parse(Path::new(&format!("etcd:{key}")), value) {
        Ok((conf, _)) => conf,
        Err(d) => return (vec![format!("{key} is not a config flannel-gen can check:\n{d}")], vec![]),
    };
    for f in Family::ALL {
        let (theirs, ours) = (conf.family(f).map(|x| x.network), c.pools.get(f).map(|p| p.network));
        if theirs != ours {
            let show = |n: Option<ipnet::IpNet>| n.map_or_else(|| "none".to_string(), |n| n.to_string());
            return (vec![format!("{key}: {f} network is {}, the topology's is {}", show(theirs), show(ours))], vec![]);
        }
    }
    let theirs = match as_cluster(key, &conf, c) {
        Ok(t) => t,
        Err(e) => return (vec![format!("{key} does not describe a network the topology can share:\n{e}")], vec![]),
    };
    differences(key, &theirs, c)
}

fn differences(key: &str, theirs: &Cluster, c: &Cluster) -> (Vec<String>, Vec<String>) {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let mut check = |breaks: bool, what: &str, a: String, b: String| {
        if a != b {
            let m = format!("{key}: {what} is {a}, the topology's is {b}");
            if breaks { errors.push(m) } else { warnings.push(format!("{m}; flanneld nodes run with {a}")) }
        }
    };
    for f in Family::ALL {
        if let (Some(t), Some(o)) = (theirs.pools.get(f), c.pools.get(f)) {
            check(true, &format!("{f} subnet length"), t.len.to_string(), o.len.to_string());
            check(
                false,
                &format!("{f} subnet range"),
                format!("{}..{}", t.min, t.max),
                format!("{}..{}", o.min, o.max),
            );
        }
    }
    let (tb, ob) = (&theirs.backend, &c.backend);
    check(true, "the backend", tb.kind.as_str().into(), ob.kind.as_str().into());
    if tb.kind == BackendKind::Udp && ob.kind == BackendKind::Udp {
        check(true, "the udp port", tb.port.to_string(), ob.port.to_string());
    }
    if let (Some(t), Some(o)) = (&tb.wireguard, &ob.wireguard) {
        check(true, "the wireguard port", tb.port.to_string(), ob.port.to_string());
        check(true, "the wireguard IPv6 port", t.port_v6.to_string(), o.port_v6.to_string());
        let psk =
            |w: &crate::topology::WireguardBackend| if w.psk_file.is_some() { "set" } else { "unset" }.to_string();
        check(true, "the pre-shared key (PSK)", psk(t), psk(o));
        check(
            false,
            "PersistentKeepaliveInterval",
            t.persistent_keepalive.to_string(),
            o.persistent_keepalive.to_string(),
        );
    }
    if tb.kind == BackendKind::Vxlan && ob.kind == BackendKind::Vxlan {
        check(true, "the VNI", tb.vni.to_string(), ob.vni.to_string());
        check(true, "the VXLAN port", tb.port.to_string(), ob.port.to_string());
        check(true, "GBP", tb.gbp.to_string(), ob.gbp.to_string());
        check(false, "DirectRouting", tb.direct_routing.to_string(), ob.direct_routing.to_string());
        check(false, "Learning", tb.learning.to_string(), ob.learning.to_string());
    }
    (errors, warnings)
}
