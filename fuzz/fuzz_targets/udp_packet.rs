//! What `flannel-gen udp` reads from its TUN queue and its socket: arbitrary
//! bytes through the same steps the worker takes (virtio header, IPv4
//! checks, TTL, ICMP error, TSO segmentation, partial checksum, GRO merge).
//! Must never panic; every segment it cuts must be a whole IPv4 packet.
#![no_main]

use std::net::Ipv4Addr;

use flannel_gen::udp::gro::Gro;
use flannel_gen::udp::packet::{self, MAX_ICMP_LEN, VNET_HDR_LEN, VnetHdr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    let hdr = VnetHdr::parse(&buf).unwrap_or_default();
    let pkt = buf.get_mut(VNET_HDR_LEN.min(data.len())..).unwrap_or_default();
    let mut icmp = [0u8; MAX_ICMP_LEN];
    if let Some(n) = packet::net_unreachable(pkt, Ipv4Addr::new(10, 5, 1, 0), &mut icmp) {
        assert!(packet::ipv4(&icmp[..n]).is_some_and(|h| h.total_len == n));
    }
    if packet::ipv4(pkt).is_some() {
        let _ = packet::decrement_ttl(pkt);
    }
    let _ = packet::complete_checksum(pkt, usize::from(hdr.csum_start), usize::from(hdr.csum_offset));
    let mut out = vec![0u8; 140_000];
    let mut spans = Vec::new();
    if packet::segment(pkt, usize::from(hdr.gso_size), &mut out, &mut spans).is_ok() {
        let mut gro = Gro::default();
        for &(at, len) in &spans {
            let seg = &out[at..at + len];
            assert!(packet::ipv4(seg).is_some_and(|h| h.total_len == len), "a whole packet");
            if !gro.add(seg) {
                let _ = gro.take();
            }
        }
        let _ = gro.take();
    }
    let mut gro = Gro::default();
    for chunk in data.chunks(97) {
        if !gro.add(chunk) {
            let _ = gro.take();
        }
    }
});
