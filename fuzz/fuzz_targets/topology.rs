//! parse -> validate -> allocate -> plan -> text/JSON -> the plan reader, on
//! arbitrary bytes. Must never panic; errors must be located diagnostics;
//! every compiled plan must read back as itself; whatever the YAML subset
//! reader (the fast path) reads, serde-saphyr must read the same.
#![no_main]

use std::path::Path;

use flannel_gen::input::MAX_INPUT_BYTES;
use flannel_gen::topology::parse::parse_topology;
use flannel_gen::topology::schema::TopologyDoc;
use flannel_gen::{alloc, plan, topology::validate, yaml};
use libfuzzer_sys::fuzz_target;

/// Planning is O(nodes²); the fuzzer need not build huge clusters.
const MAX_PLANNED_NODES: usize = 64;

fuzz_target!(|data: &[u8]| {
    if data.len() as u64 > MAX_INPUT_BYTES {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(fast) = yaml::read_subset::<TopologyDoc>(text) {
        assert_eq!(Some(fast), yaml::read_full::<TopologyDoc>(text), "the subset and serde-saphyr differ");
    }
    let path = Path::new("fuzz.yaml");
    let doc = match parse_topology(path, text) {
        Ok(doc) => doc,
        Err(d) => {
            assert!(!d.0.is_empty());
            return;
        }
    };
    let cluster = match validate::validate(path, &doc) {
        Ok(c) => c,
        Err(d) => {
            assert!(!d.0.is_empty());
            return;
        }
    };
    if cluster.nodes.len() > MAX_PLANNED_NODES {
        return;
    }
    let Ok(leases) = alloc::allocate(&cluster, None) else { return };
    let plans = plan::build_all(&cluster, &leases).expect("a valid cluster always plans");
    for p in plans {
        let json = p.to_json();
        let back = plan::parse_plan(Path::new("p.json"), &json).expect("a compiled plan reads back");
        assert_eq!(back, p);
        let _ = p.to_string();
    }
});
