//! `cloud apply` reads EC2's XML answers: arbitrary text through the
//! instance and route table readers must never panic, and every route read
//! is an IPv4 prefix.
#![no_main]

use flannel_gen::cloud::ec2::{xml_instances, xml_route_tables};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = xml_instances(text);
    if let Ok(tables) = xml_route_tables(text) {
        for t in tables {
            for r in t.routes {
                assert!(r.dst.prefix_len() <= 32);
            }
        }
    }
});
