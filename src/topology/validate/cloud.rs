//! The cloud route backends' keys: route tables (aws-vpc), project and
//! network (gce), and each node's instance. Keys of another backend are
//! refused where they are written, so a topology never says more than it does.

use foldhash::HashMap;

use crate::diag::{Pos, Reporter};
use crate::topology::schema::{NodeDoc, S, TopologyDoc};
use crate::topology::{BackendKind, CloudBackend, NodeCloud};

/// An EC2 id: `prefix-` and 8 or 17 lowercase hex digits (the old and the long form).
pub fn is_ec2_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A GCE resource name (RFC 1035 label: `[a-z]([-a-z0-9]{0,61}[a-z0-9])?`).
pub fn is_gce_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

/// A GCP project id: 6-30 characters, a lowercase letter first, no hyphen last.
pub fn is_gce_project(s: &str) -> bool {
    (6..=30).contains(&s.len()) && is_gce_name(s)
}

/// A GCE zone, `<region>-<letter>` such as `europe-west1-b`.
pub fn is_gce_zone(s: &str) -> bool {
    let Some((region, letter)) = s.rsplit_once('-') else { return false };
    let Some((area, place)) = region.split_once('-') else { return false };
    letter.len() == 1
        && letter.bytes().all(|b| b.is_ascii_lowercase())
        && !area.is_empty()
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && place.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && place.bytes().last().is_some_and(|b| b.is_ascii_digit())
        && place.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The backend's cloud settings; `None` for the other backends (and their
/// cloud keys are errors).
pub fn backend(r: &mut Reporter, doc: &TopologyDoc, kind: Option<BackendKind>) -> Option<CloudBackend> {
    let b = &doc.backend.value;
    let other =
        |k: &str| format!("`{k}` is a setting of the {} backend", if k == "routeTableIDs" { "aws-vpc" } else { "gce" });
    if kind != Some(BackendKind::AwsVpc)
        && let Some(t) = &b.route_table_ids
    {
        r.error(t.pos, "backend.routeTableIDs", other("routeTableIDs"));
    }
    if kind != Some(BackendKind::Gce) {
        for (v, key) in [(&b.project, "project"), (&b.network, "network")] {
            if let Some(v) = v {
                r.error(v.pos, format!("backend.{key}"), other(key));
            }
        }
    }
    match kind {
        Some(BackendKind::AwsVpc) => Some(CloudBackend::Aws { route_tables: route_tables(r, doc)? }),
        Some(BackendKind::Gce) => {
            let project = required(
                r,
                doc,
                &b.project,
                "project",
                is_gce_project,
                "a GCP project id (6-30 of [a-z0-9-], a letter first)",
            );
            let network = required(
                r,
                doc,
                &b.network,
                "network",
                is_gce_name,
                "a GCE network name (1-63 of [a-z0-9-], a letter first)",
            );
            Some(CloudBackend::Gce { project: project?, network: network? })
        }
        _ => None,
    }
}

fn required(
    r: &mut Reporter,
    doc: &TopologyDoc,
    v: &Option<S<String>>,
    key: &str,
    ok: fn(&str) -> bool,
    form: &str,
) -> Option<String> {
    let field = format!("backend.{key}");
    let Some(v) = v else {
        r.error(doc.backend.pos, field, format!("required key `{key}` is missing: gce routes name their {key}"));
        return None;
    };
    if !ok(&v.value) {
        r.error(v.pos, field, format!("`{}` is not {form}", v.value));
        return None;
    }
    Some(v.value.clone())
}

fn route_tables(r: &mut Reporter, doc: &TopologyDoc) -> Option<Vec<String>> {
    let Some(list) = &doc.backend.value.route_table_ids else { return Some(Vec::new()) };
    if list.value.is_empty() {
        let m = "an empty list; leave `routeTableIDs` out to use each node's subnet's route table";
        r.error(list.pos, "backend.routeTableIDs", m);
        return None;
    }
    let before = r.count();
    let mut seen: HashMap<&str, Pos> = HashMap::default();
    for (i, t) in list.value.iter().enumerate() {
        let field = format!("backend.routeTableIDs[{i}]");
        if !is_ec2_id(&t.value, "rtb") {
            r.error(t.pos, field, format!("`{}` is not a route table id (rtb- and 8 or 17 hex digits)", t.value));
        } else if let Some(first) = seen.insert(&t.value, t.pos) {
            r.error(t.pos, field, format!("route table `{}` is listed twice (first at line {})", t.value, first.line));
        }
    }
    (r.count() == before).then(|| list.value.iter().map(|t| t.value.clone()).collect())
}

/// Each node's instance, by node index; an error for every missing,
/// malformed, duplicated or foreign key.
pub fn nodes(r: &mut Reporter, doc: &TopologyDoc, kind: Option<BackendKind>) -> Vec<Option<NodeCloud>> {
    let mut seen: HashMap<String, (Pos, &str)> = HashMap::default();
    let mut out = Vec::with_capacity(doc.nodes.value.len());
    for (i, n) in doc.nodes.value.iter().enumerate() {
        let cloud = node(r, i, n, kind);
        if let Some(c) = &cloud {
            let id = match c {
                NodeCloud::Aws { instance_id } => instance_id.clone(),
                NodeCloud::Gce { instance, zone } => format!("{zone}/{instance}"),
            };
            let name = n.value.name.value.as_str();
            let (key, at) = match c {
                NodeCloud::Aws { .. } => ("instanceID", n.value.instance_id.as_ref().map_or(n.pos, |v| v.pos)),
                NodeCloud::Gce { .. } => ("instance", n.value.instance.as_ref().map_or(n.pos, |v| v.pos)),
            };
            if let Some((_, first)) = seen.insert(id.clone(), (at, name)) {
                r.error(at, format!("nodes[{i}].{key}"), format!("instance `{id}` is node `{first}`'s too"));
            }
        }
        out.push(cloud);
    }
    out
}

fn node(r: &mut Reporter, i: usize, n: &S<NodeDoc>, kind: Option<BackendKind>) -> Option<NodeCloud> {
    let d = &n.value;
    let field = |key: &str| format!("nodes[{i}].{key}");
    let foreign: &[(&Option<S<String>>, &str)] = match kind {
        Some(BackendKind::AwsVpc) => &[(&d.instance, "instance"), (&d.zone, "zone")],
        Some(BackendKind::Gce) => &[(&d.instance_id, "instanceID")],
        _ => &[(&d.instance_id, "instanceID"), (&d.instance, "instance"), (&d.zone, "zone")],
    };
    for (v, key) in foreign {
        if let Some(v) = v {
            let owner = if *key == "instanceID" { "aws-vpc" } else { "gce" };
            r.error(v.pos, field(key), format!("`{key}` is a setting of the {owner} backend"));
        }
    }
    let mut get = |v: &Option<S<String>>, key: &str, ok: fn(&str) -> bool, form: &str| -> Option<String> {
        match v {
            None => {
                let m =
                    format!("required key `{key}` is missing: {} routes point at the node's instance", kind_name(kind));
                r.error(n.pos, field(key), m);
                None
            }
            Some(v) if !ok(&v.value) => {
                r.error(v.pos, field(key), format!("`{}` is not {form}", v.value));
                None
            }
            Some(v) => Some(v.value.clone()),
        }
    };
    match kind {
        Some(BackendKind::AwsVpc) => {
            let id = get(
                &d.instance_id,
                "instanceID",
                |s| is_ec2_id(s, "i"),
                "an EC2 instance id (i- and 8 or 17 hex digits)",
            );
            Some(NodeCloud::Aws { instance_id: id? })
        }
        Some(BackendKind::Gce) => {
            let instance =
                get(&d.instance, "instance", is_gce_name, "a GCE instance name (1-63 of [a-z0-9-], a letter first)");
            let zone = get(&d.zone, "zone", is_gce_zone, "a GCE zone such as `us-central1-a`");
            Some(NodeCloud::Gce { instance: instance?, zone: zone? })
        }
        _ => None,
    }
}

fn kind_name(kind: Option<BackendKind>) -> &'static str {
    kind.map_or("cloud", BackendKind::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_ids_have_eight_or_seventeen_hex_digits() {
        assert!(is_ec2_id("i-0123abcd", "i"));
        assert!(is_ec2_id("rtb-0123456789abcdef0", "rtb"));
        for bad in ["i-0123abc", "i-0123ABCD", "rtb-0123abcd", "i0123abcd", "i-0123456789abcdef", "i-g123abcd"] {
            assert!(!is_ec2_id(bad, "i"), "{bad}");
        }
    }

    #[test]
    fn gce_names_and_zones() {
        assert!(is_gce_zone("us-central1-a") && is_gce_zone("europe-west4-b"));
        for bad in ["us-central1", "us-central-a", "us-central1-ab", "US-central1-a", "-central1-a"] {
            assert!(!is_gce_zone(bad), "{bad}");
        }
        assert!(is_gce_project("my-project-1") && !is_gce_project("short") && !is_gce_project("1project"));
        assert!(is_gce_name("node-1") && !is_gce_name("node-") && !is_gce_name("Node1"));
    }
}
