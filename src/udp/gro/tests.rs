use proptest::prelude::*;

use super::*;
use crate::udp::packet::{VnetHdr, complete_checksum, segment as split};

/// A TCP/IPv4 super-packet with timestamps-like options, as a sender's TSO hands it over.
fn super_packet(payload: &[u8], seq: u32, flags: u8) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0x10, 0x00, 0x40, 0, 63, TCP, 0, 0, 10, 5, 1, 2, 10, 5, 2, 3];
    p.extend_from_slice(&[0x1f, 0x90, 0xc0, 0x01]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&99u32.to_be_bytes());
    p.extend_from_slice(&[0x80, flags, 0x01, 0xf5, 0, 0, 0, 0]);
    p.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
    p.extend_from_slice(payload);
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p
}

fn segments(sp: &[u8], mss: usize) -> Vec<Vec<u8>> {
    let mut out = vec![0u8; 131_072];
    let mut spans = Vec::new();
    split(sp, mss, &mut out, &mut spans).expect("segments");
    spans.iter().map(|(a, l)| out[*a..a + l].to_vec()).collect()
}

#[test]
fn segments_of_one_flow_merge_into_a_gso_packet_the_kernel_can_split_again() {
    let payload: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    let segs = segments(&super_packet(&payload, 5000, ACK | PSH), 1400);
    let mut g = Gro::default();
    for s in &segs {
        assert!(g.add(s));
    }
    let (hdr, pkt) = g.take().expect("a packet");
    let v = VnetHdr::parse(&hdr).expect("header");
    assert_eq!((v.flags, v.gso_type, v.hdr_len, v.gso_size, v.csum_start, v.csum_offset), (1, 1, 52, 1400, 20, 16));
    let mut pkt = pkt.to_vec();
    assert_eq!(&pkt[52..], &payload[..]);
    assert_eq!(pkt[33], ACK | PSH, "the last segment's PSH");
    // What the kernel does with it: complete the checksum, segment by gso_size.
    complete_checksum(&mut pkt, 20, 16).expect("completes");
    assert_eq!(segments(&pkt, 1400), segs, "merging and splitting again gives the same packets");
    assert!(g.take().is_none(), "taken once");
}

#[test]
fn what_the_kernel_would_not_merge_is_not_merged() {
    let payload = vec![7u8; 2800];
    let segs = segments(&super_packet(&payload, 1, ACK), 1400);
    let mut g = Gro::default();
    assert!(g.add(&segs[0]));
    let mut gap = segs[1].clone();
    gap[27] ^= 1;
    assert!(!g.add(&gap), "a sequence gap");
    let mut other = segs[1].clone();
    other[21] ^= 1;
    assert!(!g.add(&other), "another flow");
    let mut opts = segs[1].clone();
    opts[47] ^= 1;
    assert!(!g.add(&opts), "other options (timestamp)");
    assert!(g.add(&segs[1]));
    let (hdr, _) = g.take().expect("two merged");
    assert_eq!(hdr[1], VIRTIO_NET_HDR_GSO_TCPV4);
    // A lone segment goes out untouched, with a plain header.
    assert!(g.add(&segs[0]));
    let (hdr, pkt) = g.take().expect("one");
    assert_eq!((hdr, pkt), ([0; VNET_HDR_LEN], &segs[0][..]));
    // SYN, FIN, RST are never merged; nothing follows a PSH or a short segment.
    let syn = segments(&super_packet(&[1], 1, 0x02), 1400);
    assert!(!g.add(&syn[0]));
    let first = segments(&super_packet(&[1; 100], 1, ACK), 1400);
    assert!(g.add(&first[0]), "its size is the packet's segment size");
    let short = segments(&super_packet(&[1; 50], 101, ACK), 1400);
    assert!(g.add(&short[0]));
    let next = segments(&super_packet(&[1; 10], 151, ACK), 1400);
    assert!(!g.add(&next[0]), "a short segment ends the packet");
}

proptest! {
    #[test]
    fn merge_then_split_is_the_identity(len in 1usize..12_000, mss in 536usize..1460, seq in any::<u32>()) {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let segs = segments(&super_packet(&payload, seq, ACK), mss);
        let mut g = Gro::default();
        for s in &segs {
            prop_assert!(g.add(s));
        }
        let (hdr, pkt) = g.take().expect("a packet");
        let mut pkt = pkt.to_vec();
        if segs.len() > 1 {
            complete_checksum(&mut pkt, 20, 16).expect("completes");
            prop_assert_eq!(hdr[1], VIRTIO_NET_HDR_GSO_TCPV4);
        }
        prop_assert_eq!(segments(&pkt, mss), segs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(a in proptest::collection::vec(any::<u8>(), 0..120), b in proptest::collection::vec(any::<u8>(), 0..120)) {
        let mut g = Gro::default();
        let _ = g.add(&a);
        let _ = g.add(&b);
        let _ = g.take();
    }
}
