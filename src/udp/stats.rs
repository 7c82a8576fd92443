//! Packet, byte and drop counters of the forwarder, shared by its workers
//! (each adds its local counts once per batch) and printed on SIGUSR1 and
//! at exit.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// One worker's counts since it last flushed them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// TUN -> UDP: inner packets sent, and their bytes.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// UDP -> TUN.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Datagrams or TUN reads that were not IPv4.
    pub not_ipv4: u64,
    pub ttl_expired: u64,
    /// Packets for a subnet no node has (an ICMP net unreachable went back).
    pub no_route: u64,
    /// Offload layouts the forwarder does not take.
    pub bad_offload: u64,
    /// sendmsg/write failures (the packet is lost, as flanneld loses it).
    pub send_errors: u64,
    pub tun_write_errors: u64,
    /// Datagrams from an address that is no peer's, and packets whose inner
    /// source is not in the sending peer's subnet (the source filter).
    pub foreign: u64,
}

/// Each counter of [`Counts`], once: what a worker flushes and a snapshot reads.
const FIELDS: [fn(&mut Counts) -> &mut u64; 11] = [
    |c| &mut c.tx_packets,
    |c| &mut c.tx_bytes,
    |c| &mut c.rx_packets,
    |c| &mut c.rx_bytes,
    |c| &mut c.not_ipv4,
    |c| &mut c.ttl_expired,
    |c| &mut c.no_route,
    |c| &mut c.bad_offload,
    |c| &mut c.send_errors,
    |c| &mut c.tun_write_errors,
    |c| &mut c.foreign,
];

/// Each counter's Prometheus name and help, in [`FIELDS`]' order.
const METRICS: [(&str, &str); 11] = [
    ("flannel_gen_udp_tun_to_udp_packets_total", "Inner packets read from the TUN device and sent over UDP."),
    ("flannel_gen_udp_tun_to_udp_bytes_total", "Bytes of those packets."),
    ("flannel_gen_udp_udp_to_tun_packets_total", "Inner packets received over UDP and written to the TUN device."),
    ("flannel_gen_udp_udp_to_tun_bytes_total", "Bytes of those packets."),
    ("flannel_gen_udp_dropped_not_ipv4_total", "Dropped: not IPv4."),
    ("flannel_gen_udp_dropped_ttl_expired_total", "Dropped: TTL expired."),
    ("flannel_gen_udp_dropped_no_route_total", "Dropped: no node has the destination (ICMP net unreachable sent)."),
    ("flannel_gen_udp_dropped_bad_offload_total", "Dropped: an offload layout the forwarder does not take."),
    ("flannel_gen_udp_send_errors_total", "Dropped: sending over UDP failed."),
    ("flannel_gen_udp_tun_write_errors_total", "Dropped: writing to the TUN device failed."),
    (
        "flannel_gen_udp_dropped_not_from_a_peer_total",
        "Dropped: not from a peer, or an inner source outside the sender's subnet.",
    ),
];

impl Counts {
    /// Every counter in Prometheus' text exposition format.
    pub fn prometheus(&self) -> String {
        let mut copy = *self;
        let mut s = String::new();
        for ((name, help), field) in METRICS.iter().zip(FIELDS) {
            crate::health::metric(&mut s, name, "counter", help, *field(&mut copy) as f64);
        }
        s
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    c: [AtomicU64; FIELDS.len()],
}

impl Counts {
    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }
}

impl Stats {
    /// Adds a worker's counts and zeroes them.
    pub fn flush(&self, local: &mut Counts) {
        if local.is_zero() {
            return;
        }
        for (slot, field) in self.c.iter().zip(FIELDS) {
            let v = std::mem::take(field(local));
            if v != 0 {
                slot.fetch_add(v, Ordering::Relaxed);
            }
        }
    }

    pub fn snapshot(&self) -> Counts {
        let mut out = Counts::default();
        for (slot, field) in self.c.iter().zip(FIELDS) {
            *field(&mut out) = slot.load(Ordering::Relaxed);
        }
        out
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tun->udp {} packets {} bytes; udp->tun {} packets {} bytes; dropped: {} not IPv4, {} TTL expired, {} no route (ICMP net unreachable sent), {} bad offload, {} send errors, {} TUN write errors, {} not from a peer",
            self.tx_packets,
            self.tx_bytes,
            self.rx_packets,
            self.rx_bytes,
            self.not_ipv4,
            self.ttl_expired,
            self.no_route,
            self.bad_offload,
            self.send_errors,
            self.tun_write_errors,
            self.foreign
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_its_own_slot_and_flush_zeroes_the_worker() {
        let stats = Stats::default();
        let mut local = Counts::default();
        for (i, field) in FIELDS.iter().enumerate() {
            *field(&mut local) = i as u64 + 1;
        }
        let want = local;
        stats.flush(&mut local);
        assert!(local.is_zero());
        assert_eq!(stats.snapshot(), want);
        let mut again = want;
        stats.flush(&mut again);
        let snap = stats.snapshot();
        assert_eq!((snap.tx_packets, snap.tun_write_errors), (2, 20));
    }
}
