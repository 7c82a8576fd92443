use std::path::Path;

use super::*;

fn import_ok(conf: &str) -> Imported {
    import(Path::new("net-conf.json"), conf, "prod", true).expect("imports")
}

fn errors(conf: &str) -> Vec<String> {
    match import(Path::new("net-conf.json"), conf, "prod", true) {
        Ok(i) => panic!("expected errors, got:\n{}", i.yaml),
        Err(d) => d.0.iter().map(ToString::to_string).collect(),
    }
}

/// kube-flannel.yml's ConfigMap (flannel-io/flannel Documentation/kube-flannel.yml).
#[test]
fn kube_flannel_configmap_imports() {
    let i = import_ok(r#"{ "Network": "10.244.0.0/16", "EnableNFTables": false, "Backend": { "Type": "vxlan" } }"#);
    assert_eq!(
        i.yaml,
        "# Imported from flannel's net-conf.json (net-conf.json); list the nodes below, then run `flannel-gen lock`.
version: 1
cluster: prod
network: 10.244.0.0/16
ipMasq: true
backend:
  type: vxlan
nodes: []
"
    );
    assert!(i.warnings.is_empty());
}

#[test]
fn every_vxlan_setting_is_honoured_in_any_case() {
    let i = import_ok(
        r#"{"network": "10.1.0.0/16", "SubnetLen": 26, "EnableNFTables": true,
            "backend": {"type": "VXLAN", "vni": 0, "Port": 0, "MTU": 1400, "GBP": true, "learning": true, "DirectRouting": true}}"#,
    );
    assert_eq!(
        i.yaml.lines().skip(1).collect::<Vec<_>>(),
        [
            "version: 1",
            "cluster: prod",
            "network: 10.1.0.0/16",
            "subnetLen: 26",
            "ipMasq: true",
            "trafficRules: nftables",
            "backend:",
            "  type: vxlan",
            "  vni: 0",
            "  directRouting: true",
            "  gbp: true",
            "  learning: true",
            "defaults:",
            "  mtu: 1400",
            "nodes: []",
        ]
    );
}

#[test]
fn host_bits_are_masked_with_a_warning() {
    let i = import_ok(r#"{"Network": "10.1.2.3/16", "Backend": {"Type": "host-gw"}}"#);
    assert!(i.yaml.contains("network: 10.1.0.0/16\n"), "{}", i.yaml);
    assert_eq!(
        i.warnings,
        ["Network `10.1.2.3/16` has host bits set; flanneld uses 10.1.0.0/16, and so does the topology"]
    );
}

#[test]
fn wrong_types_are_located_errors() {
    let e = errors(
        "{\n  \"Network\": \"10.1.0.0/16\",\n  \"SubnetLen\": \"26\",\n  \"Backend\": {\"Type\": \"vxlan\", \"VNl\": 4}\n}\n",
    );
    assert_eq!(
        e,
        [
            "net-conf.json:3:16: error: SubnetLen: expected a non-negative whole number, got \"26\" (flanneld refuses this config)"
        ]
    );
}

/// Go's encoding/json ignores unknown keys (pkg/subnet/config.go decodes
/// with json.Unmarshal, no DisallowUnknownFields), so flanneld accepts such
/// a file: the import does too, and says where each one is.
#[test]
fn unknown_keys_are_located_warnings_as_flanneld_ignores_them() {
    let i = import_ok(
        "{\n  \"Network\": \"10.1.0.0/16\",\n  \"Comment\": \"prod\",\n  \"Backend\": {\"Type\": \"vxlan\", \"VNl\": 4}\n}\n",
    );
    assert!(!i.yaml.contains("vni: 4"), "the misspelt VNI is ignored, as flanneld ignores it:\n{}", i.yaml);
    assert_eq!(
        i.warnings,
        [
            "3:14: Comment: `Comment` is not a key flanneld reads here; flanneld ignores it, and so does the import",
            "4:39: Backend.VNl: `VNl` is not a key flanneld reads here (did you mean `VNI`?); flanneld ignores it, and so does the import",
        ]
    );
}

#[test]
fn flanneld_rejections_are_rejections_here() {
    let e = errors(r#"{"Network": "10.1.0.0/16", "SubnetLen": 17, "Backend": {"Type": "vxlan"}}"#);
    assert_eq!(
        e,
        [
            "net-conf.json:1:41: error: SubnetLen: 17 is outside 18..=30: flanneld needs room for four subnets of at least four addresses"
        ]
    );
    let e = errors(r#"{"Network": "10.1.0.0/16", "Backend": {"Type": "ipip"}}"#);
    assert!(e[0].contains("Backend.Type: backend `ipip` is not one flannel-gen builds"), "{e:?}");
    let e = errors(r#"{"EnableIPv6": true, "Backend": {"Type": "vxlan"}}"#);
    assert!(
        e.iter().any(|l| l.contains("`Network` is required"))
            && e.iter().any(|l| l.contains("`IPv6Network` is required")),
        "{e:?}"
    );
}

#[test]
fn dual_stack_and_ipv6_only_import() {
    let i = import_ok(
        r#"{"Network": "10.42.0.0/16", "EnableIPv6": true, "IPv6Network": "fd00:42::/56", "IPv6SubnetLen": 64, "Backend": {"Type": "vxlan"}}"#,
    );
    assert!(i.yaml.contains("network: 10.42.0.0/16\nipv6Network: fd00:42::/56\nipv6SubnetLen: 64\n"), "{}", i.yaml);
    let i = import_ok(
        r#"{"EnableIPv4": false, "EnableIPv6": true, "IPv6Network": "fd00:42::/56", "Backend": {"Type": "host-gw"}}"#,
    );
    assert!(!i.yaml.contains("\nnetwork:") && i.yaml.contains("ipv6Network: fd00:42::/56\n"), "{}", i.yaml);
}

/// pkg/subnet/config.go: no Backend means udp; udp reads Port (pkg/backend/udp/udp_amd64.go).
#[test]
fn no_backend_is_flanneld_udp_and_udp_reads_its_port() {
    let i = import_ok(r#"{"Network": "10.0.0.0/16"}"#);
    assert!(i.yaml.contains("backend:\n  type: udp\nnodes: []\n"), "{}", i.yaml);
    assert!(i.warnings[0].contains("flanneld runs its udp backend"), "{:?}", i.warnings);
    let i = import_ok(r#"{"Network": "10.0.0.0/16", "Backend": {"Type": "udp", "Port": 7890}}"#);
    assert!(i.yaml.contains("backend:\n  type: udp\n  port: 7890\n"), "{}", i.yaml);
    let i = import_ok(r#"{"Network": "10.0.0.0/16", "Backend": {"Type": "udp", "VNI": 3}}"#);
    assert!(i.warnings.iter().any(|w| w.contains("`VNI` is not a key flanneld reads here")), "{:?}", i.warnings);
}
