use std::net::Ipv4Addr;

use super::*;
use crate::registry::LeaseAttrs;

fn conf(json: &str) -> NetConf {
    crate::topology::netconf::parse(Path::new("net-conf.json"), json).expect("net-conf").0
}

fn lease(subnet: &str, ip: [u8; 4], backend: &str, mac: Option<&str>, vni: u32) -> Lease {
    let data = mac.map(|m| BackendData::Vxlan(VxlanData { vni, vtep_mac: m.parse().expect("mac") }));
    Lease {
        subnet: Some(subnet.parse().expect("subnet")),
        subnet6: None,
        attrs: LeaseAttrs {
            public_ip: Ipv4Addr::from(ip),
            public_ipv6: None,
            backend_type: backend.into(),
            backend_data: data,
            backend_v6_data: None,
        },
        origin: Origin::Etcd { key: format!("/p/subnets/{subnet}"), lease_id: 0, ttl: None },
        name: None,
    }
}

fn opts<'a>(names: &'a Names) -> Options<'a> {
    Options {
        cluster: "t",
        ip_masq: true,
        prefix: [24, 64],
        interface: None,
        names,
        out: Path::new("t.yaml"),
        source: "a test".into(),
    }
}

use crate::registry::Origin;

const VXLAN: &str = r#"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}"#;

#[test]
fn leases_become_pinned_nodes_and_the_topology_is_exact() {
    let names = Names::default();
    let leases = [
        lease("10.5.2.0/24", [10, 0, 0, 12], "vxlan", Some("0a:00:00:00:00:02"), 1),
        lease("10.5.1.0/24", [10, 0, 0, 11], "vxlan", Some("0a:00:00:00:00:01"), 1),
    ];
    let i = import(&conf(VXLAN), &leases, &opts(&names)).expect("imports");
    assert_eq!(
        i.topology,
        "# Imported by flannel-gen from a test.
# Each node is pinned to its lease (subnet, VTEP MAC): plans program what flanneld programs.
version: 1
cluster: t
network: 10.5.0.0/16
ipMasq: true
backend:
  type: vxlan
nodes:
  - name: ip-10-0-0-11
    ip: 10.0.0.11/24
    subnet: 10.5.1.0/24
    vtepMAC: \"0a:00:00:00:00:01\"
  - name: ip-10-0-0-12
    ip: 10.0.0.12/24
    subnet: 10.5.2.0/24
    vtepMAC: \"0a:00:00:00:00:02\"
"
    );
    assert!(
        i.lock.contains("ip-10-0-0-12:\n    subnet: 10.5.2.0/24\n    vtepMAC: \"0a:00:00:00:00:02\""),
        "{}",
        i.lock
    );
}

#[test]
fn other_backends_are_skipped_and_a_foreign_vni_is_a_warning() {
    let names = Names::default();
    let leases = [
        lease("10.5.1.0/24", [10, 0, 0, 11], "vxlan", Some("0a:00:00:00:00:01"), 7),
        lease("10.5.3.0/24", [10, 0, 0, 13], "host-gw", None, 0),
    ];
    let i = import(&conf(VXLAN), &leases, &opts(&names)).expect("imports");
    assert_eq!(i.nodes.len(), 1);
    assert!(i.skipped[0].contains("backend `host-gw`"), "{:?}", i.skipped);
    assert!(i.warnings[0].contains("VNI 7 but the cluster runs VNI 1"), "{:?}", i.warnings);
}

#[test]
fn names_and_per_node_prefixes_come_from_the_names_file() {
    let names =
        crate::registry::names::parse(Path::new("names"), "10.0.1.11/23 rack-a\n10.9.9.9 ghost\n").expect("names");
    let leases = [lease("10.5.1.0/24", [10, 0, 1, 11], "vxlan", Some("0a:00:00:00:00:01"), 1)];
    let i = import(&conf(VXLAN), &leases, &opts(&names)).expect("imports");
    assert!(i.topology.contains("  - name: rack-a\n    ip: 10.0.1.11/23\n"), "{}", i.topology);
    assert!(i.warnings.iter().any(|w| w.contains("10.9.9.9") && w.contains("ghost")), "{:?}", i.warnings);
}

#[test]
fn leases_the_topology_cannot_hold_are_errors_naming_the_key() {
    let names = Names::default();
    let dual = r#"{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56","Backend":{"Type":"vxlan"}}"#;
    let leases = [lease("10.5.1.0/24", [10, 0, 0, 11], "vxlan", Some("0a:00:00:00:00:01"), 1)];
    let Err(ImportError::Invalid(d)) = import(&conf(dual), &leases, &opts(&names)) else { panic!("accepted") };
    assert!(d.to_string().starts_with("etcd:/p/subnets/10.5.1.0/24: error: no IPv6 subnet"), "{d}");
    let no_data = [lease("10.5.1.0/24", [10, 0, 0, 11], "vxlan", None, 1)];
    let Err(ImportError::Invalid(d)) = import(&conf(VXLAN), &no_data, &opts(&names)) else { panic!("accepted") };
    assert!(d.to_string().contains("without IPv4 backend data"), "{d}");
    // A subnet outside the network: the generated topology's own validation says so.
    let outside = [lease("10.6.1.0/24", [10, 0, 0, 11], "vxlan", Some("0a:00:00:00:00:01"), 1)];
    let Err(ImportError::Invalid(d)) = import(&conf(VXLAN), &outside, &opts(&names)) else { panic!("accepted") };
    assert!(d.to_string().contains("t.yaml (generated, not written)"), "{d}");
    assert!(d.to_string().contains("outside the network 10.5.0.0/16"), "{d}");
}

#[test]
fn host_gw_and_direct_routing_plans_still_equal_the_leases() {
    let names = Names::default();
    let hg = r#"{"Network":"10.5.0.0/16","Backend":{"Type":"host-gw"}}"#;
    let leases = [
        lease("10.5.1.0/24", [10, 0, 0, 11], "host-gw", None, 0),
        lease("10.5.2.0/24", [10, 0, 0, 12], "host-gw", None, 0),
    ];
    assert_eq!(import(&conf(hg), &leases, &opts(&names)).expect("host-gw").nodes.len(), 2);
    let dr = r#"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}"#;
    let leases = [
        lease("10.5.1.0/24", [10, 0, 0, 11], "vxlan", Some("0a:00:00:00:00:01"), 1),
        lease("10.5.2.0/24", [10, 0, 1, 12], "vxlan", Some("0a:00:00:00:00:02"), 1),
        lease("10.5.3.0/24", [10, 0, 0, 13], "vxlan", Some("0a:00:00:00:00:03"), 1),
    ];
    let i = import(&conf(dr), &leases, &opts(&names)).expect("direct routing");
    assert!(i.topology.contains("directRouting: true"), "{}", i.topology);
}

/// flanneld's udp backend writes leases without a BackendType (pkg/backend/udp/udp_amd64.go).
#[test]
fn udp_leases_carry_no_backend_type() {
    let names = Names::default();
    let udp = r#"{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}"#;
    let leases =
        [lease("10.5.1.0/24", [10, 0, 0, 11], "", None, 0), lease("10.5.2.0/24", [10, 0, 0, 12], "udp", None, 0)];
    let i = import(&conf(udp), &leases, &opts(&names)).expect("udp");
    assert_eq!(i.nodes.len(), 2);
    assert!(i.topology.contains("backend:\n  type: udp\n") && !i.topology.contains("vtepMAC"), "{}", i.topology);
    let mixed = [leases[0].clone(), lease("10.5.3.0/24", [10, 0, 0, 13], "vxlan", Some("0a:00:00:00:00:03"), 1)];
    let vxlan_view = import(&conf(VXLAN), &mixed, &opts(&names)).expect("imports");
    assert!(vxlan_view.skipped[0].contains("backend `udp (none given)`"), "{:?}", vxlan_view.skipped);
    let Err(ImportError::Invalid(d)) = import(&conf(VXLAN), &leases[..1], &opts(&names)) else { panic!("imported") };
    assert!(d.to_string().contains("of the 1 lease in a test, none belongs to the cluster's vxlan backend"), "{d}");
}

fn wg_lease(subnet: &str, ip: [u8; 4], key: &str, port: u16) -> Lease {
    let mut l = lease(subnet, ip, "wireguard", None, 0);
    let d = crate::registry::WireguardData { public_key: key.parse().expect("key"), port };
    l.attrs.backend_data = Some(BackendData::Wireguard(d));
    l
}

const KEY_1: &str = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=";
const KEY_2: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

/// wireguard leases (pkg/backend/wireguard): each node pinned with its
/// public key, the net-conf's port and keepalive carried over, the PSK
/// left for a file on the node.
#[test]
fn wireguard_leases_pin_each_nodes_public_key() {
    let names = Names::default();
    let wg = r#"{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard","ListenPort":51830,"PersistentKeepaliveInterval":25,"PSK":"x"}}"#;
    let leases =
        [wg_lease("10.5.1.0/24", [10, 0, 0, 11], KEY_1, 51830), wg_lease("10.5.2.0/24", [10, 0, 0, 12], KEY_2, 51999)];
    let i = import(&conf(wg), &leases, &opts(&names)).expect("imports");
    for want in [
        "backend:\n  type: wireguard\n  port: 51830\n  persistentKeepalive: 25\n  pskFile: /etc/flannel-gen/wireguard.psk\n",
        &format!("    subnet: 10.5.1.0/24\n    wireguardKey: \"{KEY_1}\"\n"),
        &format!("    subnet: 10.5.2.0/24\n    wireguardKey: \"{KEY_2}\"\n"),
        "pinned to its lease (subnet, WireGuard public key)",
    ] {
        assert!(i.topology.contains(want), "missing {want:?} in\n{}", i.topology);
    }
    assert!(i.lock.contains(&format!("wireguardKey: \"{KEY_2}\"")), "{}", i.lock);
    assert!(i.warnings.iter().any(|w| w.contains("port 51999 but the cluster's is 51830")), "{:?}", i.warnings);

    // A lease without data, or whose families disagree on the key, is refused.
    let mut no_data = leases.clone();
    no_data[1].attrs.backend_data = None;
    let Err(ImportError::Invalid(d)) = import(&conf(wg), &no_data, &opts(&names)) else { panic!("accepted") };
    assert!(d.to_string().contains("a wireguard lease without IPv4 backend data (PublicKey, Port)"), "{d}");
    let mut two_keys = leases.clone();
    let other = crate::registry::WireguardData { public_key: KEY_2.parse().expect("key"), port: 51831 };
    two_keys[0].attrs.backend_v6_data = Some(BackendData::Wireguard(other));
    let Err(ImportError::Invalid(d)) = import(&conf(wg), &two_keys, &opts(&names)) else { panic!("accepted") };
    assert!(d.to_string().contains("name different public keys"), "{d}");
    // vxlan leases are another backend's.
    let mixed = [leases[0].clone(), lease("10.5.3.0/24", [10, 0, 0, 13], "vxlan", Some("0a:00:00:00:00:03"), 1)];
    let i = import(&conf(wg), &mixed, &opts(&names)).expect("imports");
    assert!(i.skipped[0].contains("backend `vxlan`, not the cluster's wireguard"), "{:?}", i.skipped);
}

#[test]
fn wireguard_modes_other_than_separate_are_refused_at_the_key() {
    let bad = r#"{"Network":"10.5.0.0/16","Backend":{"Type":"wireguard","Mode":"auto"}}"#;
    let e = crate::topology::netconf::parse(Path::new("net-conf.json"), bad).expect_err("refused");
    assert!(
        e.to_string().starts_with("net-conf.json:1:63: error: Backend.Mode: wireguard mode `auto` is not built yet"),
        "{e}"
    );
}
