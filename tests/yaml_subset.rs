//! The YAML subset reader (src/yaml/block.rs) against serde-saphyr: whatever
//! the subset reads must be exactly what the full parser reads, positions
//! included, and the layouts people write must stay in the subset (or the
//! front end silently loses its speed).

use std::path::Path;

use flannel_gen::synth::{self, SynthSpec};
use flannel_gen::topology::BackendKind;
use flannel_gen::topology::schema::TopologyDoc;
use flannel_gen::yaml::{read_full, read_subset};
use proptest::prelude::*;

/// `Some(doc)` from the subset implies the same doc from serde-saphyr.
fn agrees(text: &str) -> Result<bool, String> {
    let Some(fast) = read_subset::<TopologyDoc>(text) else { return Ok(false) };
    match read_full::<TopologyDoc>(text) {
        Some(full) if full == fast => Ok(true),
        Some(full) => {
            let (f, s) = (format!("{full:#?}"), format!("{fast:#?}"));
            let at = f.lines().zip(s.lines()).position(|(a, b)| a != b).unwrap_or(0);
            let around = |t: &str| t.lines().skip(at.saturating_sub(8)).take(10).collect::<Vec<_>>().join("\n");
            Err(format!("different documents for\n{text}\nsubset:\n{}\nfull:\n{}", around(&s), around(&f)))
        }
        None => Err(format!("the subset read what serde-saphyr refuses:\n{text}")),
    }
}

fn files(dir: &str, ext: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| ext.is_empty() || p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn examples_and_generated_topologies_are_read_by_the_subset_alike() {
    let mut texts: Vec<(String, String)> =
        files("examples", "yaml").iter().map(|p| (p.display().to_string(), read(p))).collect();
    for (backend, direct_routing) in
        [(BackendKind::Vxlan, true), (BackendKind::HostGw, false), (BackendKind::Udp, false)]
    {
        let spec = SynthSpec { nodes: 300, backend, direct_routing, segments: 1, cluster: "c".into() };
        texts.push((format!("generate {backend:?}"), synth::topology_yaml(&spec)));
    }
    for (name, text) in texts {
        assert_eq!(agrees(&text), Ok(true), "{name} must be read by the subset, as serde-saphyr reads it");
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn bad_inputs_and_the_fuzz_corpus_agree() {
    let (mut read_by_subset, mut total) = (0, 0);
    for p in files("tests/bad", "yaml").into_iter().chain(files("fuzz/corpus/topology", "")) {
        let Ok(text) = String::from_utf8(std::fs::read(&p).expect("read")) else { continue };
        total += 1;
        match agrees(&text) {
            Ok(true) => read_by_subset += 1,
            Ok(false) => {}
            Err(e) => panic!("{}: {e}", p.display()),
        }
    }
    // The corpus holds many near-valid topologies: some must take the subset.
    assert!(read_by_subset * 20 > total, "only {read_by_subset} of {total} documents were read by the subset");
}

/// Values a topology might hold, including ones YAML reads as something else
/// than the text (null, booleans, octal, sexagesimal...) and ones only the
/// full parser can read.
const ODD: &[&str] = &[
    "",
    "~",
    "null",
    "NULL",
    "true",
    "false",
    "True",
    "yes",
    "no",
    "on",
    "010",
    "0x1F",
    "0o17",
    "+1",
    "1_000",
    "1e3",
    "-1",
    "1.5",
    ".inf",
    ".nan",
    "0",
    "65536",
    "18446744073709551616",
    "a: b",
    "a:b",
    "a #c",
    "x#y",
    "${HOME}",
    "'it''s'",
    "\"a\\tb\"",
    "\"q\"",
    "'s'",
    "\"\"",
    "''",
    "06:61:37:32:2f:c4",
    "1:30",
    "[a]",
    "{a: 1}",
    "&x a",
    "*x",
    "!!str 1",
    "|",
    ">",
    "- a",
    "? a",
    "@a",
    "`a`",
    "a ",
    "\"a\" x",
    "'a'#c",
    "%x",
    "10.0.0.0/16",
    "fd00::/56",
    "eth0",
    "node-1",
];

/// A topology written with the layout choices in `r` (indentation,
/// sequence style, quoting, comments, blank lines, odd values, unknown and
/// repeated keys).
fn topology(r: &mut Rng) -> String {
    let w = [2, 3, 4][r.below(3)];
    let mut out = String::new();
    let top =
        [("version", "1"), ("cluster", "c"), ("network", "10.244.0.0/16"), ("subnetLen", "24"), ("ipMasq", "true")];
    for (k, v) in top {
        if k == "version" || r.below(4) != 0 {
            line(&mut out, r, 0, k, v);
        }
    }
    line(&mut out, r, 0, "backend", "");
    for (k, v) in [("type", "vxlan"), ("vni", "1"), ("port", "8472"), ("directRouting", "false"), ("gbp", "true")] {
        if k == "type" || r.below(3) == 0 {
            line(&mut out, r, w, k, v);
        }
    }
    line(&mut out, r, 0, "nodes", "");
    let seq = [0, w][r.below(2)];
    for i in 0..r.below(4) {
        let (name, ip) = (format!("n{i}"), format!("10.1.0.{}/24", i + 1));
        let mut fields = vec![("name", name.as_str()), ("ip", ip.as_str()), ("mtu", "1450")];
        fields.truncate(1 + r.below(3));
        if r.below(10) == 0 {
            fields.push([("name", "dup"), ("vtepMac", "x"), ("subnet", "10.244.9.0/24")][r.below(3)]);
        }
        for (j, (k, v)) in fields.into_iter().enumerate() {
            let (indent, head) = if j == 0 { (seq, "- ") } else { (seq + 2, "") };
            line(&mut out, r, indent, &format!("{head}{k}"), v);
        }
    }
    out
}

/// One `key: value` line, sometimes after a comment or a blank line,
/// sometimes with a trailing comment or an odd value instead.
fn line(out: &mut String, r: &mut Rng, indent: usize, key: &str, value: &str) {
    if r.below(8) == 0 {
        out.push_str(&format!("{}# note\n", " ".repeat(r.below(6))));
    }
    if r.below(10) == 0 {
        out.push('\n');
    }
    let comment = if r.below(6) == 0 { " # why" } else { "" };
    let value = if r.below(40) == 0 { ODD[r.below(ODD.len())].to_string() } else { quote(r, value) };
    let sep = if value.is_empty() { "" } else { [" ", "  "][r.below(2)] };
    out.push_str(&format!("{}{key}:{sep}{value}{comment}\n", " ".repeat(indent)));
}

/// Strings are sometimes quoted; numbers and booleans are written plain
/// (quoted ones come from [`ODD`]).
fn quote(r: &mut Rng, v: &str) -> String {
    let typed = v.is_empty() || v.bytes().all(|b| b.is_ascii_digit()) || v == "true" || v == "false";
    match if typed { 9 } else { r.below(6) } {
        0 => format!("\"{v}\""),
        1 => format!("'{v}'"),
        _ => v.to_string(),
    }
}

/// xorshift: the layout choices of one case, from proptest's seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn most_generated_layouts_take_the_subset() {
    let texts: Vec<String> = (1..=1000u64).map(|seed| topology(&mut Rng(seed))).collect();
    let valid = texts.iter().filter(|t| read_full::<TopologyDoc>(t).is_some()).count();
    let taken = texts.iter().filter(|t| agrees(t) == Ok(true)).count();
    assert!(taken * 10 > valid * 8, "the subset read only {taken} of the {valid} generated layouts serde-saphyr reads");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]
    #[test]
    fn generated_layouts_read_alike(seed in 1u64..) {
        let text = topology(&mut Rng(seed));
        agrees(&text).map_err(TestCaseError::fail)?;
    }
}

/// Block nesting costs the subset reader a stack frame per level; past a
/// small depth it leaves the document to serde-saphyr (whose budget refuses
/// it with a located error) instead of recursing thousands of levels.
#[test]
fn deep_block_nesting_is_left_to_the_full_parser() {
    let deep: String = (0..3000).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    let text = format!("version: 1\ncluster: c\nbackend:\n  type: vxlan\nnodes:\n  - name: n\n    ip:\n{deep}");
    assert!(read_subset::<TopologyDoc>(&text).is_none());
    let shallow = "version: 1\ncluster: c\nbackend:\n  type: vxlan\nnodes:\n  - name: n\n    ip: 10.0.0.1/24\n";
    assert!(read_subset::<TopologyDoc>(shallow).is_some(), "a topology is well within the depth");
}
