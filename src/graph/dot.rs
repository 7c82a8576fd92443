//! The picture as Graphviz source: segments as clusters, a legend cluster.

use std::fmt::Write;

use super::{Change, Picture, edge_colour, legend, segment_fill};

/// A double-quoted DOT ID.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

pub fn to_dot(p: &Picture) -> String {
    let mut o = String::from("digraph flannel {\n");
    let _ = writeln!(o, "  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", label={}];", q(&p.title));
    o.push_str("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n");
    o.push_str("  edge [dir=none, fontname=\"Helvetica\", fontsize=10];\n");
    for (i, s) in p.segments.iter().enumerate() {
        let _ = writeln!(o, "  subgraph {} {{", q(&format!("cluster_segment_{i}")));
        let _ = writeln!(
            o,
            "    label={}; style=\"rounded,filled\"; fillcolor={};",
            q(&format!("segment {s}")),
            q(segment_fill(i))
        );
        for v in p.vertices.iter().filter(|v| v.segment == i) {
            let (colour, width) = match v.change {
                Change::Same => ("#424242", 1),
                c => (super::change_colour(c), 3),
            };
            let _ = writeln!(
                o,
                "    {} [label={}, fillcolor=\"#ffffff\", color={}, penwidth={width}];",
                q(&v.id),
                q(&v.label),
                q(colour)
            );
        }
        o.push_str("  }\n");
    }
    for e in &p.edges {
        let style = if e.change == Change::Removed { "dashed" } else { "solid" };
        let width = if e.change == Change::Same { 1 } else { 2 };
        let _ = writeln!(
            o,
            "  {} -> {} [label={}, color={}, fontcolor={}, style={style}, penwidth={width}];",
            q(&e.a),
            q(&e.b),
            q(&e.label()),
            q(edge_colour(p, e)),
            q(edge_colour(p, e))
        );
    }
    let entries = legend(p);
    if !entries.is_empty() {
        o.push_str("  subgraph \"cluster_legend\" {\n    label=\"legend\"; style=rounded;\n");
        for (i, (name, colour)) in entries.iter().enumerate() {
            let _ = writeln!(
                o,
                "    \"legend_{i}_a\" [shape=point, width=0.05]; \"legend_{i}_b\" [shape=point, width=0.05];\n    \"legend_{i}_a\" -> \"legend_{i}_b\" [label={}, color={}, fontcolor={}];",
                q(name),
                q(colour),
                q(colour)
            );
        }
        o.push_str("  }\n");
    }
    o.push_str("}\n");
    o
}
