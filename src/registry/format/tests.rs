use super::*;

/// The lease shown in flannel's Documentation/reservations.md (etcdctl get of
/// a flanneld-written key), byte for byte.
const DOC_LEASE: &str = r#"{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}"#;

#[test]
fn flannels_documented_lease_round_trips_byte_for_byte() {
    let a = decode_attrs(DOC_LEASE).expect("decodes");
    assert_eq!(a.public_ip, Ipv4Addr::new(192, 168, 64, 3));
    assert_eq!(a.public_ipv6, None);
    assert_eq!(a.backend_type, "vxlan");
    let d = a.vxlan(crate::netaddr::Family::V4).expect("vxlan data");
    assert_eq!((d.vni, d.vtep_mac.to_string().as_str()), (1, "c6:d2:32:6f:8f:44"));
    assert_eq!(encode_attrs(&a), DOC_LEASE);
}

/// host-gw leases carry no BackendData (pkg/backend/hostgw/hostgw.go); a
/// dual-stack vxlan lease has both data members.
#[test]
fn host_gw_and_dual_stack_values() {
    let hg = LeaseAttrs {
        public_ip: Ipv4Addr::new(10, 0, 0, 11),
        public_ipv6: None,
        backend_type: "host-gw".into(),
        backend_data: None,
        backend_v6_data: None,
    };
    assert_eq!(encode_attrs(&hg), r#"{"PublicIP":"10.0.0.11","PublicIPv6":null,"BackendType":"host-gw"}"#);
    let mac: Mac = "0e:00:00:00:00:01".parse().expect("mac");
    let ds = LeaseAttrs {
        public_ip: Ipv4Addr::new(10, 0, 0, 11),
        public_ipv6: Some("fd00::11".parse().expect("v6")),
        backend_type: "vxlan".into(),
        backend_data: Some(BackendData::Vxlan(VxlanData { vni: 1, vtep_mac: mac })),
        backend_v6_data: Some(BackendData::Vxlan(VxlanData { vni: 1, vtep_mac: mac })),
    };
    let text = encode_attrs(&ds);
    assert_eq!(
        text,
        r#"{"PublicIP":"10.0.0.11","PublicIPv6":"fd00::11","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}}"#
    );
    assert_eq!(decode_attrs(&text).expect("decodes"), ds);
}

#[test]
fn decoding_matches_members_in_any_case_and_ignores_unknown_ones() {
    let a = decode_attrs(
        r#"{"publicip":"10.0.0.1","Extra":1,"backendtype":"vxlan","backenddata":{"vni":7,"vtepmac":"0E-4C-AA-01-02-03"}}"#,
    )
    .expect("decodes");
    let d = a.vxlan(crate::netaddr::Family::V4);
    assert_eq!(d.map(|d| (d.vni, d.vtep_mac.to_string())), Some((7, "0e:4c:aa:01:02:03".into())));
}

#[test]
fn undecodable_values_name_the_member() {
    let bad = |t: &str| decode_attrs(t).expect_err("refused").iter().map(|b| b.path.clone()).collect::<Vec<_>>();
    assert_eq!(bad(r#"{"PublicIP":"10.0.0.300","BackendType":"vxlan","BackendData":null}"#), ["PublicIP"]);
    assert_eq!(
        bad(r#"{"PublicIP":"10.0.0.3","BackendType":"vxlan","BackendData":{"VNI":-1,"VtepMAC":"x"}}"#),
        ["BackendData.VNI", "BackendData.VtepMAC"]
    );
    assert_eq!(bad(r#"{"PublicIP":"10.0.0.3","BackendType":"vxlan","BackendData":{"VNI":1}}"#), ["BackendData"]);
    assert_eq!(bad("[1]"), [""]);
    // Another backend's data is not read, as flanneld's vxlan backend skips the lease.
    assert!(decode_attrs(r#"{"PublicIP":"10.0.0.3","BackendType":"udp","BackendData":[1]}"#).is_ok());
}

#[test]
fn subnet_keys_as_flanneld_makes_and_parses_them() {
    let v4: Ipv4Net = "10.5.52.0/24".parse().expect("net");
    let v6: Ipv6Net = "fd00:10:5:34::/64".parse().expect("net");
    assert_eq!(subnet_key(v4, None), "10.5.52.0-24");
    assert_eq!(subnet_key(v4, Some(v6)), "10.5.52.0-24&fd00:10:5:34::-64");
    assert_eq!(parse_subnet_key("10.5.52.0-24&fd00:10:5:34::-64"), Ok((v4, Some(v6))));
    for bad in ["10.5.52.1-24", "10.5.52.0", "fd00::-64", "10.5.52.0-33", "10.5.52.0-24&10.0.0.0-8", "foo"] {
        assert!(parse_subnet_key(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn strings_are_escaped_as_go_escapes_them() {
    let a = LeaseAttrs {
        public_ip: Ipv4Addr::new(10, 0, 0, 1),
        public_ipv6: None,
        backend_type: "a\"b\n<&>\u{2028}".into(),
        backend_data: None,
        backend_v6_data: None,
    };
    let text = encode_attrs(&a);
    assert!(text.contains(r#""BackendType":"a\"b\n\u003c\u0026\u003e\u2028""#), "{text}");
    assert_eq!(decode_attrs(&text), Ok(a));
}

/// A wireguard lease as flanneld's newSubnetAttrs marshals it
/// (pkg/backend/wireguard/wireguard.go): `wireguardLeaseAttrs{PublicKey, Port}`
/// per family, the same key in both.
#[test]
fn wireguard_lease_values_round_trip_and_bad_keys_are_named() {
    const WG: &str = r#"{"PublicIP":"10.0.0.11","PublicIPv6":"fd00::11","BackendType":"wireguard","BackendData":{"PublicKey":"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=","Port":51820},"BackendV6Data":{"PublicKey":"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=","Port":51821}}"#;
    let a = decode_attrs(WG).expect("decodes");
    let v4 = a.wireguard(crate::netaddr::Family::V4).expect("v4 data");
    let v6 = a.wireguard(crate::netaddr::Family::V6).expect("v6 data");
    assert_eq!((v4.port, v6.port), (51820, 51821));
    assert_eq!(v4.public_key.to_string(), "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=");
    assert_eq!(encode_attrs(&a), WG);
    // No port: 0, which flanneld reads as its own.
    let no_port = decode_attrs(
        r#"{"PublicIP":"10.0.0.1","BackendType":"wireguard","BackendData":{"PublicKey":"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="}}"#,
    );
    assert_eq!(no_port.expect("decodes").wireguard(crate::netaddr::Family::V4).map(|d| d.port), Some(0));
    let bad = |t: &str| {
        decode_attrs(t).expect_err("refused").iter().map(|b| format!("{}: {}", b.path, b.message)).collect::<Vec<_>>()
    };
    let short =
        bad(r#"{"PublicIP":"10.0.0.3","BackendType":"wireguard","BackendData":{"PublicKey":"AAAA","Port":70000}}"#);
    assert_eq!(short.len(), 2, "{short:?}");
    assert!(short[0].starts_with("BackendData.Port: expected a port"), "{short:?}");
    assert!(short[1].starts_with("BackendData.PublicKey: `AAAA`: 3 bytes"), "{short:?}");
    let none = bad(r#"{"PublicIP":"10.0.0.3","BackendType":"wireguard","BackendData":{"Port":1}}"#);
    assert_eq!(none, ["BackendData: no `PublicKey`: flanneld could not add this node as a WireGuard peer"]);
}
