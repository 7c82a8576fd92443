use proptest::prelude::*;

use super::*;

/// A valid IPv4 header (no options) carrying `payload`.
fn ip(proto: u8, src: [u8; 4], dst: [u8; 4], ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, ttl, proto, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(payload);
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    ipv4_checksum(&mut p, 20);
    p
}

fn valid_ip_checksum(p: &[u8]) -> bool {
    fold(sum(&p[..usize::from(p[0] & 0x0f) * 4], 0)) == 0
}

fn valid_tcp_checksum(p: &[u8], off: usize) -> bool {
    let pseudo = sum(&p[12..20], 0) + u64::from(PROTO_TCP) + (p.len() - off) as u64;
    fold(sum(&p[off..], pseudo)) == 0
}

/// A TCP header: ports, seq, ack, flags.
fn tcp(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = vec![0x1f, 0x90, 0xc0, 0x01];
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&7u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

#[test]
fn ttl_is_decremented_with_a_checksum_that_stays_valid() {
    let mut p = ip(17, [10, 5, 1, 2], [10, 5, 2, 3], 64, &[1, 2, 3, 4]);
    assert!(decrement_ttl(&mut p));
    assert_eq!(p[8], 63);
    assert!(valid_ip_checksum(&p));
    let mut last = ip(17, [10, 5, 1, 2], [10, 5, 2, 3], 1, &[]);
    assert!(!decrement_ttl(&mut last), "TTL 1 reaches 0: dropped, as flanneld does");
}

proptest! {
    #[test]
    fn incremental_ttl_checksum_equals_a_full_recompute(hdr in proptest::array::uniform20(any::<u8>()), ttl in 2u8..) {
        let mut p = hdr.to_vec();
        p[0] = 0x45;
        p[8] = ttl;
        ipv4_checksum(&mut p, 20);
        prop_assert!(decrement_ttl(&mut p));
        let patched = [p[10], p[11]];
        ipv4_checksum(&mut p, 20);
        // Both are valid checksums of the header (0x0000 and 0xffff are the same sum).
        let full = [p[10], p[11]];
        prop_assert!(patched == full || (patched == [0xff, 0xff] && full == [0, 0]) || (patched == [0, 0] && full == [0xff, 0xff]));
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), gso in 0usize..2000) {
        let mut d = data.clone();
        let _ = ipv4(&d);
        let _ = decrement_ttl(&mut d);
        let mut out = [0u8; MAX_ICMP_LEN];
        let _ = net_unreachable(&data, Ipv4Addr::new(10, 5, 1, 0), &mut out);
        let mut seg = vec![0u8; 4096];
        let mut spans = Vec::new();
        let _ = segment(&data, gso, &mut seg, &mut spans);
        let _ = complete_checksum(&mut d, gso, 16);
        let _ = VnetHdr::parse(&data);
    }
}

/// Byte for byte what flanneld's send_net_unreachable builds (proxy_amd64.c).
#[test]
fn net_unreachable_is_flanneld_packet() {
    let offender = ip(17, [10, 5, 1, 2], [10, 5, 99, 1], 63, &[0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 0xaa, 0xbb]);
    let mut out = [0u8; MAX_ICMP_LEN];
    let n = net_unreachable(&offender, Ipv4Addr::new(10, 5, 1, 0), &mut out).expect("an ICMP error");
    let p = &out[..n];
    assert_eq!(n, 20 + 8 + 20 + 8);
    assert_eq!(&p[..12], &[0x45, 0, 0, 56, 0, 0, 0, 0, 8, 1, p[10], p[11]]);
    assert_eq!(&p[12..20], &[10, 5, 1, 0, 10, 5, 1, 2], "from the TUN address to the sender");
    assert!(valid_ip_checksum(p));
    assert_eq!(&p[20..24], &[3, 0, p[22], p[23]], "type 3 (dest unreachable), code 0 (net)");
    assert_eq!(&p[24..28], &[0, 0, 0, 0]);
    assert_eq!(&p[28..], &offender[..28], "the offender's header and 8 bytes");
    assert_eq!(fold(sum(&p[20..], 0)), 0, "ICMP checksum");
    // No error about an ICMP packet, nor about a later fragment.
    let icmp = ip(1, [10, 5, 1, 2], [10, 5, 99, 1], 63, &[8, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(net_unreachable(&icmp, Ipv4Addr::new(10, 5, 1, 0), &mut out), None);
    let mut frag = offender.clone();
    frag[6..8].copy_from_slice(&0x0010u16.to_be_bytes());
    assert_eq!(net_unreachable(&frag, Ipv4Addr::new(10, 5, 1, 0), &mut out), None);
}

#[test]
fn a_tso_super_packet_becomes_the_packets_tcp_would_have_sent() {
    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    // FIN|PSH|ACK on the super-packet.
    let sp = ip(PROTO_TCP, [10, 5, 1, 2], [10, 5, 2, 3], 63, &tcp(1000, 0x19, &payload));
    let mut out = vec![0u8; 8192];
    let mut spans = Vec::new();
    segment(&sp, 1432, &mut out, &mut spans).expect("segments");
    assert_eq!(spans.len(), 4);
    let mut seen = Vec::new();
    for (i, (at, len)) in spans.iter().enumerate() {
        let p = &out[*at..at + len];
        assert!(valid_ip_checksum(p), "segment {i}: IP checksum");
        assert!(valid_tcp_checksum(p, 20), "segment {i}: TCP checksum");
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), *len);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 0x1234 + i as u16, "IP ids count up");
        assert_eq!(u32::from_be_bytes([p[24], p[25], p[26], p[27]]), 1000 + 1432 * i as u32);
        let last = i == 3;
        assert_eq!(p[33], if last { 0x19 } else { 0x10 }, "FIN and PSH only on the last");
        seen.extend_from_slice(&p[40..]);
    }
    assert_eq!(seen, payload);
    assert_eq!(spans[3].1, 40 + 5000 - 3 * 1432);
}

#[test]
fn a_partial_checksum_is_completed() {
    // UDP with the pseudo-header sum in its checksum field, as the kernel leaves it.
    let mut udp = vec![0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4];
    let src_dst = [10, 5, 1, 2, 10, 5, 2, 3];
    let pseudo = !fold(sum(&src_dst, 0) + 17 + 12);
    udp[6..8].copy_from_slice(&pseudo.to_be_bytes());
    let mut p = ip(17, [10, 5, 1, 2], [10, 5, 2, 3], 64, &udp);
    complete_checksum(&mut p, 20, 6).expect("completes");
    let full = fold(sum(&p[20..], sum(&src_dst, 0) + 17 + 12));
    assert_eq!(full, 0, "the UDP checksum verifies");
    assert_eq!(complete_checksum(&mut p, 30, 6), Err(Drop::BadOffload));
}

#[test]
fn garbage_is_not_ipv4() {
    assert_eq!(ipv4(&[0x60; 40]), None, "IPv6");
    assert_eq!(ipv4(&[0x45, 0, 0, 10]), None, "short");
    let mut p = ip(17, [1, 1, 1, 1], [2, 2, 2, 2], 9, &[]);
    p[2] = 0xff;
    assert_eq!(ipv4(&p), None, "total length past the end");
}
