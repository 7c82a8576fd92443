//! The picture as SVG, laid out by layout-rs (no Graphviz at run time).
//! layout-rs draws no clusters, so a segment is a fill colour shared by its
//! nodes and named in their labels; the legend is a row of boxes.

use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::geometry::{Point, get_size_for_str};
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;

use super::{Change, Picture, change_colour, edge_colour, legend, segment_fill};

const FONT: usize = 13;

fn colour(hex: &str) -> Color {
    Color::from_name(hex).unwrap_or_else(|| Color::fast("black"))
}

fn boxed(label: &str, line: &str, fill: &str, width: usize) -> Element {
    let look = StyleAttr::new(colour(line), width, Some(colour(fill)), 6, FONT);
    let size = get_size_for_str(label, FONT);
    let size = Point::new(size.x + 24., size.y + 16.);
    Element::create(ShapeKind::new_box(label), look, Orientation::LeftToRight, size)
}

pub fn to_svg(p: &Picture) -> String {
    let mut g = VisualGraph::new(Orientation::LeftToRight);
    let mut handles = std::collections::BTreeMap::new();
    for v in &p.vertices {
        let segment = &p.segments[v.segment];
        let label = if v.id.starts_with("segment ") { v.label.clone() } else { format!("{}\n{segment}", v.label) };
        let (line, width) = match v.change {
            Change::Same => ("#424242", 1),
            c => (change_colour(c), 3),
        };
        handles.insert(v.id.clone(), g.add_node(boxed(&label, line, segment_fill(v.segment), width)));
    }
    for e in &p.edges {
        let (Some(&a), Some(&b)) = (handles.get(&e.a), handles.get(&e.b)) else { continue };
        let look =
            StyleAttr::new(colour(edge_colour(p, e)), if e.change == Change::Same { 1 } else { 2 }, None, 0, FONT - 2);
        let style = if e.change == Change::Removed { LineStyleKind::Dashed } else { LineStyleKind::Normal };
        let arrow = Arrow::new(LineEndKind::None, LineEndKind::None, style, &e.label(), &look, &None, &None);
        g.add_edge(arrow, a, b);
    }
    let mut previous = None;
    for (name, c) in legend(p) {
        let h = g.add_node(boxed(&format!("legend: {name}"), c, "#ffffff", 3));
        if let Some(prev) = previous {
            g.add_edge(Arrow::invisible(), prev, h);
        }
        previous = Some(h);
    }
    let mut svg = SVGWriter::new();
    g.do_it(false, false, false, &mut svg);
    let body = sorted_styles(&svg.finalize());
    // The title, for screen readers and for people hovering over the picture.
    let open = body.find("<svg").and_then(|s| body[s..].find('>').map(|e| s + e));
    match open {
        Some(i) => format!("{}<title>{}</title>{}", &body[..=i], escape(&p.title), &body[i + 1..]),
        None => body,
    }
}

/// layout-rs emits its font classes in hash order: sorted, the same picture
/// is the same bytes (README's picture is checked like a golden file).
fn sorted_styles(svg: &str) -> String {
    let (Some(a), Some(b)) = (svg.find("<style>\n"), svg.find("</style>")) else { return svg.to_string() };
    let start = a + "<style>\n".len();
    if start > b {
        return svg.to_string();
    }
    let mut lines: Vec<&str> = svg[start..b].lines().collect();
    lines.sort_unstable();
    format!("{}{}\n{}", &svg[..start], lines.join("\n"), &svg[b..])
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
