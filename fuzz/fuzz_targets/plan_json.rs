//! `apply --plan` input: arbitrary JSON into a plan, then the pure half of
//! apply (reconcile against an empty node). Must never panic.
#![no_main]

use flannel_gen::apply::live::Live;
use flannel_gen::apply::reconcile::{Phase, reconcile};
use flannel_gen::plan::NodePlan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = serde_json::from_slice::<NodePlan>(data) else { return };
    for phase in [Phase::Prepare, Phase::Complete] {
        for op in reconcile(&p, &Live::default(), phase) {
            let _ = op.to_string();
        }
    }
    let _ = p.to_string();
});
