//! Receive offload for the TUN writes: consecutive TCP segments of one flow
//! (as a UDP GRO buffer delivers them) are merged into one super-packet and
//! written once with a `virtio_net_hdr` (GSO_TCPV4, partial checksum); the
//! kernel carries it to the pod as it carries a GRO'd packet. The merge
//! rules are the kernel's `tcp_gro_receive`: same addresses, ports, ack and
//! options, contiguous sequence numbers, full-size segments until the last,
//! nothing but ACK (PSH closes the packet). Pure: no I/O, no panics.

use super::packet::{VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, VNET_HDR_LEN, fold, ipv4_checksum, sum};

const TCP: u8 = 6;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
/// The IPv4 total length limit of the merged packet.
const MAX_LEN: usize = 65_535;

/// A TCP/IPv4 segment the merger can take: its header lengths and fields.
struct Segment {
    /// IPv4 + TCP header bytes.
    hl: usize,
    seq: u32,
    flags: u8,
    payload: usize,
}

fn segment(pkt: &[u8]) -> Option<Segment> {
    // No IP options, not a fragment, exactly as long as it says.
    if pkt.len() < 40 || pkt[0] != 0x45 || pkt[9] != TCP {
        return None;
    }
    let frag = u16::from_be_bytes([pkt[6], pkt[7]]) & 0x3fff;
    if frag != 0 || usize::from(u16::from_be_bytes([pkt[2], pkt[3]])) != pkt.len() {
        return None;
    }
    let hl = 20 + usize::from(pkt[32] >> 4) * 4;
    let flags = pkt[33];
    if hl < 40 || hl >= pkt.len() || (flags != ACK && flags != ACK | PSH) {
        return None;
    }
    let seq = u32::from_be_bytes([pkt[24], pkt[25], pkt[26], pkt[27]]);
    Some(Segment { hl, seq, flags, payload: pkt.len() - hl })
}

/// One super-packet being built.
pub struct Gro {
    buf: Box<[u8]>,
    len: usize,
    segs: usize,
    hl: usize,
    mss: usize,
    next_seq: u32,
    /// The last merged segment was shorter than `mss`, or had PSH.
    closed: bool,
}

impl Default for Gro {
    fn default() -> Self {
        Gro { buf: vec![0u8; MAX_LEN].into_boxed_slice(), len: 0, segs: 0, hl: 0, mss: 0, next_seq: 0, closed: true }
    }
}

impl Gro {
    /// Takes `pkt` into the packet being built (or starts one); false when it
    /// cannot be merged: take what was built first, then try again.
    pub fn add(&mut self, pkt: &[u8]) -> bool {
        let Some(s) = segment(pkt) else { return false };
        if self.segs == 0 {
            self.buf[..pkt.len()].copy_from_slice(pkt);
            self.len = pkt.len();
            (self.segs, self.hl, self.mss) = (1, s.hl, s.payload);
            self.next_seq = s.seq.wrapping_add(s.payload as u32);
            self.closed = s.flags & PSH != 0;
            return true;
        }
        if !self.fits(pkt, &s) {
            return false;
        }
        self.buf[self.len..self.len + s.payload].copy_from_slice(&pkt[s.hl..]);
        self.len += s.payload;
        self.segs += 1;
        self.next_seq = s.seq.wrapping_add(s.payload as u32);
        self.closed = s.payload < self.mss || s.flags & PSH != 0;
        // The merged header carries the last segment's PSH.
        self.buf[33] |= s.flags & PSH;
        true
    }

    /// The kernel's merge rules (tcp_gro_receive), for a segment after the first.
    fn fits(&self, pkt: &[u8], s: &Segment) -> bool {
        let b = &self.buf;
        !self.closed
            && s.hl == self.hl
            && s.seq == self.next_seq
            && s.payload <= self.mss
            && self.len + s.payload <= MAX_LEN
            // Version, TOS; flags and fragment, TTL, protocol; addresses.
            && pkt[..2] == b[..2]
            && pkt[6..10] == b[6..10]
            && pkt[12..20] == b[12..20]
            // Ports; ack; header length; options.
            && pkt[20..24] == b[20..24]
            && pkt[28..33] == b[28..33]
            && pkt[40..s.hl] == b[40..self.hl]
    }

    /// The packet built so far, with the virtio header to write before it,
    /// and resets. One segment goes out as it came; more become a GSO packet
    /// whose TCP checksum the kernel completes.
    pub fn take(&mut self) -> Option<([u8; VNET_HDR_LEN], &[u8])> {
        if self.segs == 0 {
            return None;
        }
        let (len, segs) = (self.len, self.segs);
        self.segs = 0;
        let mut hdr = [0u8; VNET_HDR_LEN];
        if segs > 1 {
            let p = &mut self.buf[..len];
            p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            ipv4_checksum(p, 20);
            // The pseudo-header sum, not complemented: CHECKSUM_PARTIAL.
            let pseudo = sum(&p[12..20], 0) + u64::from(TCP) + (len - 20) as u64;
            p[36..38].copy_from_slice(&(!fold(pseudo)).to_be_bytes());
            hdr[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
            hdr[1] = VIRTIO_NET_HDR_GSO_TCPV4;
            let u = |v: usize| (v as u16).to_ne_bytes();
            hdr[2..4].copy_from_slice(&u(self.hl));
            hdr[4..6].copy_from_slice(&u(self.mss));
            hdr[6..8].copy_from_slice(&u(20));
            hdr[8..10].copy_from_slice(&u(16));
        }
        Some((hdr, &self.buf[..len]))
    }
}

#[cfg(test)]
mod tests;
