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
}

#[derive(Debug, Default)]
pub struct Stats {
    c: [AtomicU64; 10],
}

impl Counts {
    fn fields(&self) -> [u64; 10] {
        [
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
        ]
    }

    fn from_fields(f: [u64; 10]) -> Counts {
        Counts {
            tx_packets: f[0],
            tx_bytes: f[1],
            rx_packets: f[2],
            rx_bytes: f[3],
            not_ipv4: f[4],
            ttl_expired: f[5],
            no_route: f[6],
            bad_offload: f[7],
            send_errors: f[8],
            tun_write_errors: f[9],
        }
    }

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
        for (slot, v) in self.c.iter().zip(local.fields()) {
            if v != 0 {
                slot.fetch_add(v, Ordering::Relaxed);
            }
        }
        *local = Counts::default();
    }

    pub fn snapshot(&self) -> Counts {
        let mut f = [0u64; 10];
        for (v, slot) in f.iter_mut().zip(&self.c) {
            *v = slot.load(Ordering::Relaxed);
        }
        Counts::from_fields(f)
    }
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tun->udp {} packets {} bytes; udp->tun {} packets {} bytes; dropped: {} not IPv4, {} TTL expired, {} no route (ICMP net unreachable sent), {} bad offload, {} send errors, {} TUN write errors",
            self.tx_packets,
            self.tx_bytes,
            self.rx_packets,
            self.rx_bytes,
            self.not_ipv4,
            self.ttl_expired,
            self.no_route,
            self.bad_offload,
            self.send_errors,
            self.tun_write_errors
        )
    }
}
