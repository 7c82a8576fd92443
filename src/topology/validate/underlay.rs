//! Rules across nodes: enough subnets for all of them, and for host-gw every
//! node reaching every other without a router.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::diag::Reporter;
use crate::netaddr::{Family, PerFamily, SubnetPool};
use crate::topology::Node;
use crate::topology::schema::TopologyDoc;
use crate::words::plural;

/// Node names listed before "and N more".
const MAX_NAMES_SHOWN: usize = 5;

pub fn capacity(r: &mut Reporter, doc: &TopologyDoc, pools: &PerFamily<SubnetPool>, nodes: usize) {
    for (_, p) in pools.iter() {
        let capacity = p.capacity();
        if (nodes as u128) > capacity {
            r.error(
                doc.nodes.pos,
                "nodes",
                format!(
                    "{} but {} has only {} between {} and {}",
                    plural(nodes, "node"),
                    p.network,
                    plural(usize::try_from(capacity).unwrap_or(usize::MAX), &format!("/{} subnet", p.len)),
                    p.min,
                    p.max
                ),
            );
        }
    }
}

/// host-gw routes each peer's subnet via the peer's underlay address, which
/// the kernel accepts only when that address is on-link. Nodes are grouped by
/// on-link prefix; each group that cannot reach some node is reported once.
pub fn check_host_gw(r: &mut Reporter, nodes: &[Node]) {
    for family in Family::ALL {
        let mut groups: BTreeMap<IpNet, Vec<&Node>> = BTreeMap::new();
        for n in nodes {
            if let Some(ip) = n.ips.get(family) {
                groups.entry(ip.trunc()).or_default().push(n);
            }
        }
        for (prefix, members) in &groups {
            let first = members[0];
            let unreachable: Vec<&Node> =
                nodes.iter().filter(|o| o.ips.get(family).is_some() && !first.on_link(family, o)).collect();
            if unreachable.is_empty() {
                continue;
            }
            r.error(
                first.pos,
                format!("nodes[{}]", first.index),
                format!(
                    "host-gw routes to every node directly, but {} ({prefix}) cannot reach {} without a router; use `type: vxlan` with `directRouting: true` to route directly where nodes share a subnet",
                    name_list(members),
                    name_list(&unreachable),
                ),
            );
        }
    }
}

fn name_list(nodes: &[&Node]) -> String {
    let shown: Vec<&str> = nodes.iter().take(MAX_NAMES_SHOWN).map(|n| n.name.as_str()).collect();
    match nodes.len().saturating_sub(MAX_NAMES_SHOWN) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}
