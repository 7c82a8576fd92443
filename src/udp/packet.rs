//! IPv4 packets as the udp backend handles them, on plain byte slices: no
//! allocation, no panics on any input (fuzzed: fuzz/fuzz_targets/udp_packet.rs).
//!
//! flanneld's behaviour (pkg/backend/udp/proxy_amd64.c): the TTL is
//! decremented on send and on receive with the header checksum patched
//! incrementally (RFC 1624); a packet whose TTL reaches 0 is dropped; a
//! packet for a subnet no node has gets an ICMP net unreachable written back
//! into the TUN device (source the TUN address, TTL 8), never for ICMP and
//! only for first fragments. The datagram payload is the inner packet alone.
//!
//! The offload half is what makes it fast: with IFF_VNET_HDR the kernel
//! hands over TCP segmentation offload super-packets (`virtio_net_hdr`
//! GSO_TCPV4) and partial checksums; [`segment`] cuts a super-packet into the
//! packets flanneld would have sent, each with full checksums.

use std::net::Ipv4Addr;

pub use crate::tun::VNET_HDR_LEN;

const IPV4_MIN_HEADER: usize = 20;
/// flanneld's MAX_IPOPTLEN: no ICMP error for a header with 40 bytes of options.
const MAX_IPOPTLEN: usize = 40;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_NET_UNREACH: u8 = 0;
/// TTL of flanneld's ICMP errors.
const ICMP_TTL: u8 = 8;
/// Length of flanneld's net-unreachable packets: IP header, ICMP header,
/// the offender's IP header and 8 bytes of its payload.
pub const MAX_ICMP_LEN: usize = IPV4_MIN_HEADER + 8 + IPV4_MIN_HEADER + MAX_IPOPTLEN + 8;

/// virtio_net_hdr flags and GSO types (linux/virtio_net.h).
pub const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
pub const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
pub const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Not an IPv4 packet with a sane header.
    NotIpv4,
    TtlExpired,
    /// A virtio header or GSO layout the forwarder does not take.
    BadOffload,
}

/// The fields of an IPv4 header the forwarder reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    pub header_len: usize,
    pub total_len: usize,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Fragment offset is zero (the first or only fragment).
    pub first_fragment: bool,
}

/// Reads an IPv4 header; `None` unless version 4, a header of at least 20
/// bytes inside the packet, and a total length that fits it.
pub fn ipv4(pkt: &[u8]) -> Option<Ipv4Header> {
    let (&b0, rest) = pkt.split_first()?;
    let header_len = usize::from(b0 & 0x0f) * 4;
    if b0 >> 4 != 4 || header_len < IPV4_MIN_HEADER || pkt.len() < header_len || rest.len() < 19 {
        return None;
    }
    let total_len = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if total_len < header_len || total_len > pkt.len() {
        return None;
    }
    let frag = u16::from_be_bytes([pkt[6], pkt[7]]) & 0x1fff;
    Some(Ipv4Header {
        header_len,
        total_len,
        protocol: pkt[9],
        src: Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]),
        dst: Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]),
        first_fragment: frag == 0,
    })
}

/// flanneld's `decrement_ttl`: false (drop) when the TTL reaches 0, else the
/// checksum patched as RFC 1624 does it. `pkt` holds a valid header.
pub fn decrement_ttl(pkt: &mut [u8]) -> bool {
    if pkt.len() < IPV4_MIN_HEADER {
        return false;
    }
    let ttl = pkt[8];
    if ttl <= 1 {
        return false;
    }
    pkt[8] = ttl - 1;
    // The TTL is the high byte of its 16-bit word: the sum drops by 0x0100,
    // so the complemented checksum rises by it, with end-around carry.
    let check = u16::from_be_bytes([pkt[10], pkt[11]]);
    let (sum, carry) = check.overflowing_add(0x0100);
    let sum = sum.wrapping_add(u16::from(carry));
    pkt[10..12].copy_from_slice(&sum.to_be_bytes());
    true
}

/// Ones' complement sum of `data` (odd length padded with zero), not folded.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc + u64::from(u32::from_be_bytes(tail))
}

/// Folds a sum to 16 bits and complements it.
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Recomputes the IPv4 header checksum of `pkt` (header length `hl`).
pub fn ipv4_checksum(pkt: &mut [u8], hl: usize) {
    pkt[10] = 0;
    pkt[11] = 0;
    let c = fold(sum(&pkt[..hl], 0));
    pkt[10..12].copy_from_slice(&c.to_be_bytes());
}

/// flanneld's `send_net_unreachable`: the ICMP error for `offender` into
/// `out`, from `tun_addr`; its length, or `None` when flanneld sends none.
pub fn net_unreachable(offender: &[u8], tun_addr: Ipv4Addr, out: &mut [u8; MAX_ICMP_LEN]) -> Option<usize> {
    let h = ipv4(offender)?;
    if h.header_len >= IPV4_MIN_HEADER + MAX_IPOPTLEN || h.protocol == PROTO_ICMP || !h.first_fragment {
        return None;
    }
    let quoted = h.header_len + 8;
    let len = IPV4_MIN_HEADER + 8 + quoted;
    out.fill(0);
    out[0] = 0x45;
    out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    out[8] = ICMP_TTL;
    out[9] = PROTO_ICMP;
    out[12..16].copy_from_slice(&tun_addr.octets());
    out[16..20].copy_from_slice(&h.src.octets());
    ipv4_checksum(&mut out[..], IPV4_MIN_HEADER);
    out[20] = ICMP_DEST_UNREACH;
    out[21] = ICMP_NET_UNREACH;
    // The offender's header and first 8 payload bytes (zeros past its end).
    let avail = quoted.min(offender.len());
    out[28..28 + avail].copy_from_slice(&offender[..avail]);
    let c = fold(sum(&out[20..len], 0));
    out[22..24].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

/// The `virtio_net_hdr` in front of a packet read from the TUN device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Native byte order: legacy virtio on a little-endian host, as TUN uses.
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = b.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }
}

/// Completes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the field at
/// `start + offset` holds the pseudo-header sum; the rest is summed from
/// `start` to the end.
pub fn complete_checksum(pkt: &mut [u8], start: usize, offset: usize) -> Result<(), Drop> {
    let at = start.checked_add(offset).filter(|a| a + 2 <= pkt.len() && start < pkt.len()).ok_or(Drop::BadOffload)?;
    let c = fold(sum(&pkt[start..], 0));
    pkt[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// A finished packet inside a segment buffer: where it starts and its length.
pub type Span = (usize, usize);

/// Cuts a GSO_TCPV4 super-packet (IPv4 + TCP headers, then payload) into
/// packets of at most `gso_size` payload bytes each, written back to back
/// into `out` with full IPv4 and TCP checksums, as the kernel's TCP
/// segmentation would. Returns the spans, in `spans` (cleared first).
pub fn segment(pkt: &[u8], gso_size: usize, out: &mut [u8], spans: &mut Vec<Span>) -> Result<(), Drop> {
    spans.clear();
    let h = ipv4(pkt).ok_or(Drop::NotIpv4)?;
    let tcp_off = h.header_len;
    let doff = usize::from(pkt.get(tcp_off + 12).ok_or(Drop::BadOffload)? >> 4) * 4;
    let hdr = tcp_off + doff;
    if h.protocol != PROTO_TCP || doff < 20 || hdr > h.total_len || gso_size == 0 {
        return Err(Drop::BadOffload);
    }
    let payload = &pkt[hdr..h.total_len];
    let seq = u32::from_be_bytes([pkt[tcp_off + 4], pkt[tcp_off + 5], pkt[tcp_off + 6], pkt[tcp_off + 7]]);
    let id = u16::from_be_bytes([pkt[4], pkt[5]]);
    let flags = pkt[tcp_off + 13];
    let count = payload.len().div_ceil(gso_size).max(1);
    let mut at = 0;
    for i in 0..count {
        let chunk = &payload[(i * gso_size).min(payload.len())..((i + 1) * gso_size).min(payload.len())];
        let len = hdr + chunk.len();
        let seg = out.get_mut(at..at + len).ok_or(Drop::BadOffload)?;
        seg[..hdr].copy_from_slice(&pkt[..hdr]);
        seg[hdr..].copy_from_slice(chunk);
        seg[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        seg[4..6].copy_from_slice(&id.wrapping_add(i as u16).to_be_bytes());
        ipv4_checksum(seg, tcp_off);
        let s = seq.wrapping_add((i * gso_size) as u32);
        seg[tcp_off + 4..tcp_off + 8].copy_from_slice(&s.to_be_bytes());
        // FIN and PSH only on the last segment, CWR only on the first.
        let keep_fin_psh: u8 = if i + 1 == count { 0xff } else { !0x09 };
        let keep_cwr: u8 = if i == 0 { 0xff } else { !0x80 };
        seg[tcp_off + 13] = flags & keep_fin_psh & keep_cwr;
        tcp_checksum(seg, tcp_off);
        spans.push((at, len));
        at += len;
    }
    Ok(())
}

/// The full TCP checksum of an IPv4 packet whose TCP header starts at `off`.
pub fn tcp_checksum(seg: &mut [u8], off: usize) {
    seg[off + 16] = 0;
    seg[off + 17] = 0;
    let tcp_len = (seg.len() - off) as u64;
    let pseudo = sum(&seg[12..20], 0) + u64::from(PROTO_TCP) + tcp_len;
    let c = fold(sum(&seg[off..], pseudo));
    seg[off + 16..off + 18].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests;
