//! The per-peer templates written out in Rust. A node of a 5000-node cluster
//! has ~20 000 peer lines across these files, and minijinja spends ~13 ms on
//! them where this takes ~5. They are used only while the embedded template
//! of the same name is (no `--templates` override), and produce its exact
//! bytes: tests/render.rs renders every example both ways and compares.

use std::fmt::Write;

use super::view::{DeviceView, RouteView, View};

/// Writes one file of a view (and device, for per-device templates).
type Writer = fn(&View, Option<usize>) -> Option<String>;

/// The templates written here, each by the function that writes it.
const NATIVE: &[(&str, Writer)] = &[
    ("flannel.network.j2", network),
    ("neigh.batch.j2", neigh_batch),
    ("fdb.batch.j2", fdb_batch),
    ("route.batch.j2", route_batch),
    ("uplink.conf.j2", uplink_conf),
];

/// Whether `template` is written here (when not overridden).
pub fn has(template: &str) -> bool {
    NATIVE.iter().any(|(n, _)| *n == template)
}

/// The file `template` makes of `view` (and `device`, for per-device ones).
pub fn render(template: &str, view: &View, device: Option<usize>) -> Option<String> {
    NATIVE.iter().find(|(n, _)| *n == template).and_then(|(_, f)| f(view, device))
}

/// ~150 bytes per peer and file: one allocation for the whole file.
fn buffer(peers: usize) -> String {
    String::with_capacity(512 + peers * 160)
}

fn network(v: &View, device: Option<usize>) -> Option<String> {
    let d: &DeviceView = v.devices.get(device?)?;
    let mut o = buffer(d.peers.len() * 3);
    let _ = write!(
        o,
        "# flannel-gen: address, neighbours, FDB and routes of {} on node {}. Generated; do not edit.\n\
         [Match]\nName={}\n\n[Link]\nRequiredForOnline=no\n\n\
         [Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nConfigureWithoutCarrier=yes\n\n\
         [Address]\nAddress={}\n",
        d.name, v.node, d.name, d.address
    );
    for p in &d.peers {
        let _ = write!(
            o,
            "\n# peer {} ({})\n[Neighbor]\nAddress={}\nLinkLayerAddress={}\n\n\
             [BridgeFDB]\nMACAddress={}\nDestination={}\nAssociatedWith=self\n\n",
            p.node, p.public_ip, p.neighbour.ip, p.neighbour.lladdr, p.fdb.lladdr, p.fdb.dst
        );
        let r = &p.route;
        let via = Jinja(r.via);
        let _ = match r.nhid {
            Some(id) => write!(
                o,
                "[NextHop]\nId={id}\nGateway={via}\nOnLink=yes\n\n[Route]\nDestination={}\nNextHop={id}\nProtocol=static\n",
                r.dst
            ),
            None => {
                write!(o, "[Route]\nDestination={}\nGateway={via}\nGatewayOnLink=yes\nProtocol={}\n", r.dst, r.proto)
            }
        };
    }
    Some(o)
}

fn neigh_batch(v: &View, _: Option<usize>) -> Option<String> {
    let mut o = buffer(peers(v) / 2);
    let _ = writeln!(
        o,
        "# flannel-gen: permanent neighbours of node {}. Run: ip -batch neigh.batch (safe to repeat)",
        v.node
    );
    for p in v.devices.iter().flat_map(|d| &d.peers) {
        let n = &p.neighbour;
        let _ = writeln!(o, "neigh replace {} lladdr {} dev {} nud permanent", n.ip, n.lladdr, n.dev);
    }
    Some(o)
}

fn fdb_batch(v: &View, _: Option<usize>) -> Option<String> {
    let mut o = buffer(peers(v) / 2);
    let _ = writeln!(o, "# flannel-gen: VXLAN FDB of node {}. Run: bridge -batch fdb.batch (safe to repeat)", v.node);
    for p in v.devices.iter().flat_map(|d| &d.peers) {
        let f = &p.fdb;
        let _ = writeln!(o, "fdb replace {} dev {} dst {} self permanent", f.lladdr, f.dev, f.dst);
    }
    Some(o)
}

fn route_batch(v: &View, _: Option<usize>) -> Option<String> {
    let mut o = buffer(v.routes.len());
    let _ = writeln!(
        o,
        "# flannel-gen: routes to the other nodes' subnets from node {}. Run: ip -batch route.batch (safe to repeat)",
        v.node
    );
    for r in &v.routes {
        let onlink = if r.onlink { " onlink" } else { "" };
        let _ = match (r.nhid, r.via) {
            (Some(id), via) => {
                let via = Jinja(via);
                writeln!(o, "nexthop replace id {id} via {via} dev {}{onlink} proto static", r.dev)
                    .and_then(|_| writeln!(o, "route replace {} nhid {id} proto static", r.dst))
            }
            (None, Some(via)) => {
                writeln!(o, "route replace {} via {via} dev {}{onlink} proto {}", r.dst, r.dev, r.proto)
            }
            (None, None) => {
                writeln!(o, "route replace {} dev {}{onlink} scope {} proto {}", r.dst, r.dev, r.scope, r.proto)
            }
        };
    }
    for b in &v.blackholes {
        let _ = writeln!(o, "route replace blackhole {b} metric {} proto static", v.blackhole_metric);
    }
    Some(o)
}

fn uplink_conf(v: &View, _: Option<usize>) -> Option<String> {
    let mut o = buffer(v.direct_routes.len());
    let _ = writeln!(
        o,
        "# flannel-gen: drop-in for the network file of {} on node {}. Generated; do not edit.",
        v.uplink.name, v.node
    );
    if !v.devices.is_empty() {
        o.push_str("[Network]\n");
        for d in &v.devices {
            let _ = writeln!(o, "VXLAN={}", d.name);
        }
    }
    for r in &v.direct_routes {
        direct_route(&mut o, r);
    }
    for b in &v.blackholes {
        let _ = write!(
            o,
            "\n# this node's own subnet: an address no pod holds ends here\n\
             [Route]\nType=blackhole\nDestination={b}\nMetric={}\nProtocol=static\n",
            v.blackhole_metric
        );
    }
    Some(o)
}

fn direct_route(o: &mut String, r: &RouteView) {
    let via = Jinja(r.via);
    let _ = match r.nhid {
        Some(id) => write!(
            o,
            "\n# peer {}\n[NextHop]\nId={id}\nGateway={via}\n\n[Route]\nDestination={}\nNextHop={id}\nProtocol=static\n",
            r.node, r.dst
        ),
        None => write!(o, "\n# peer {}\n[Route]\nDestination={}\nGateway={via}\nProtocol={}\n", r.node, r.dst, r.proto),
    };
}

/// An optional value as the templates print it (minijinja writes `none`
/// for a missing one), without a string per peer.
struct Jinja<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Jinja<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("none"),
        }
    }
}

fn peers(v: &View) -> usize {
    v.devices.iter().map(|d| d.peers.len()).sum()
}
