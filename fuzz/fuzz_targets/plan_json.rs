//! `apply --plan` input: arbitrary bytes through the one validating plan
//! reader, then the pure half of apply (reconcile against an empty node) and
//! the plan's text form. Must never panic; a plan the reader accepts must
//! reconcile.
#![no_main]

use std::path::Path;

use flannel_gen::apply::live::Live;
use flannel_gen::apply::reconcile::{Options, Phase, reconcile_plan};
use flannel_gen::plan::parse_plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(p) = parse_plan(Path::new("fuzz.json"), text) else { return };
    for phase in [Phase::Prepare, Phase::Switch, Phase::Complete] {
        let ops = reconcile_plan(&p, &Live::default(), Options { phase, adopt: false }).expect("an empty node refuses nothing");
        for op in ops {
            let _ = op.to_string();
        }
    }
    let _ = p.to_string();
});
