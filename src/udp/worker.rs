//! One forwarder worker: a TUN queue of its own, the shared UDP socket, and
//! preallocated buffers. TUN -> UDP: read (a packet or a TSO super-packet),
//! route, decrement the TTL, send — plain packets batched into one
//! `sendmmsg`, super-packets segmented and sent with one UDP GSO `sendmsg`.
//! UDP -> TUN: `recvmmsg` (UDP GRO gives many datagrams per buffer), check,
//! decrement the TTL, write.

use std::net::SocketAddrV4;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::gro::Gro;
use super::io::{self, BUF_LEN, RecvBatch, SendBatch};
use super::packet::{self, Drop, MAX_ICMP_LEN, Span, VNET_HDR_LEN, VnetHdr};
use super::stats::{Counts, Stats};
use super::table::PeerTable;

/// Packets a worker moves in one direction before looking at the other.
const BUDGET: usize = 64;
const BATCH: usize = 32;
/// How often an idle worker checks for stop and reload.
const POLL_MS: i32 = 100;
/// UDP GSO takes at most this many segments per call (UDP_MAX_SEGMENTS).
const MAX_GSO_SEGMENTS: usize = 64;
/// The IP payload limit a UDP GSO send must stay within.
const MAX_GSO_BYTES: usize = 65_000;

/// What every worker reads: the current table, stop, counters.
#[derive(Debug)]
pub struct Shared {
    table: Mutex<Arc<PeerTable>>,
    generation: AtomicU64,
    pub stop: AtomicBool,
    pub stats: Stats,
    /// Only the plan's peers may send, each only its own subnet's packets.
    filter: bool,
}

impl Shared {
    pub fn new(table: PeerTable, filter: bool) -> Shared {
        Shared {
            table: Mutex::new(Arc::new(table)),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stats: Stats::default(),
            filter,
        }
    }

    /// Swaps in a new table; workers pick it up on their next batch.
    pub fn replace(&self, table: PeerTable) {
        if let Ok(mut t) = self.table.lock() {
            *t = Arc::new(table);
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn table(&self) -> Arc<PeerTable> {
        match self.table.lock() {
            Ok(t) => Arc::clone(&t),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// Why a worker returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Stopped,
    /// Its TUN queue failed: the device was removed.
    DeviceGone,
}

pub struct Worker {
    tun: OwnedFd,
    sock: Arc<std::net::UdpSocket>,
    /// The queue has a virtio header (offloads on).
    vnet: bool,
    shared: Arc<Shared>,
    table: Arc<PeerTable>,
    generation: u64,
    recv: RecvBatch,
    send: SendBatch,
    segs: Box<[u8]>,
    spans: Vec<Span>,
    icmp: [u8; MAX_ICMP_LEN],
    counts: Counts,
    /// TCP segments from the socket merged for one TUN write (offloads on).
    gro: Gro,
    /// UDP GSO works on this socket (else segments go one by one).
    udp_gso: bool,
}

impl Worker {
    pub fn new(tun: OwnedFd, sock: Arc<std::net::UdpSocket>, vnet: bool, shared: Arc<Shared>) -> Worker {
        let table = shared.table();
        Worker {
            tun,
            sock,
            vnet,
            table,
            generation: shared.generation.load(Ordering::Acquire),
            shared,
            recv: RecvBatch::new(BATCH),
            send: SendBatch::new(BATCH),
            segs: vec![0u8; BUF_LEN * 2].into_boxed_slice(),
            spans: Vec::with_capacity(MAX_GSO_SEGMENTS * 2),
            icmp: [0; MAX_ICMP_LEN],
            counts: Counts::default(),
            gro: Gro::default(),
            udp_gso: true,
        }
    }

    pub fn run(mut self) -> Exit {
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                self.shared.stats.flush(&mut self.counts);
                return Exit::Stopped;
            }
            let g = self.shared.generation.load(Ordering::Acquire);
            if g != self.generation {
                self.table = self.shared.table();
                self.generation = g;
            }
            let (tun_ready, sock_ready, tun_failed) =
                io::wait(self.tun.as_fd(), self.sock.as_fd(), POLL_MS).unwrap_or((false, false, true));
            let gone = tun_failed || (tun_ready && self.drain_tun().is_err());
            if sock_ready {
                self.drain_socket();
            }
            self.shared.stats.flush(&mut self.counts);
            if gone {
                return Exit::DeviceGone;
            }
        }
    }

    /// Drains the TUN queue (up to the budget); `Err` when the device failed.
    fn drain_tun(&mut self) -> std::io::Result<()> {
        for _ in 0..BUDGET {
            let n = io::tun_read(self.tun.as_fd(), self.send.slot())?;
            if n == 0 {
                break;
            }
            if let Err(d) = self.tun_packet(n) {
                self.count(d);
            }
            if self.send.is_full() {
                self.flush();
            }
        }
        self.flush();
        Ok(())
    }

    fn flush(&mut self) {
        if !self.send.is_empty() {
            self.counts.send_errors += self.send.flush(self.sock.as_fd()) as u64;
        }
    }

    fn count(&mut self, d: Drop) {
        match d {
            Drop::NotIpv4 => self.counts.not_ipv4 += 1,
            Drop::TtlExpired => self.counts.ttl_expired += 1,
            Drop::BadOffload => self.counts.bad_offload += 1,
        }
    }

    /// One read of `n` bytes in the current send slot.
    fn tun_packet(&mut self, n: usize) -> Result<(), Drop> {
        let start = if self.vnet { VNET_HDR_LEN } else { 0 };
        let slot = self.send.slot();
        let hdr = if self.vnet { VnetHdr::parse(slot).ok_or(Drop::BadOffload)? } else { VnetHdr::default() };
        let pkt = slot.get_mut(start..n).ok_or(Drop::NotIpv4)?;
        let h = packet::ipv4(pkt).ok_or(Drop::NotIpv4)?;
        let Some(dst) = self.table.lookup(h.dst) else {
            self.counts.no_route += 1;
            if let Some(len) = packet::net_unreachable(pkt, self.table.tun_addr, &mut self.icmp) {
                let icmp = &self.icmp[..len];
                if io::tun_write(self.tun.as_fd(), self.vnet, icmp).is_err() {
                    self.counts.tun_write_errors += 1;
                }
            }
            return Ok(());
        };
        if !packet::decrement_ttl(pkt) {
            return Err(Drop::TtlExpired);
        }
        match hdr.gso_type {
            packet::VIRTIO_NET_HDR_GSO_NONE => {
                if hdr.flags & packet::VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
                    packet::complete_checksum(pkt, usize::from(hdr.csum_start), usize::from(hdr.csum_offset))?;
                }
                self.counts.tx_packets += 1;
                self.counts.tx_bytes += h.total_len as u64;
                self.send.commit(start, h.total_len, dst);
                Ok(())
            }
            packet::VIRTIO_NET_HDR_GSO_TCPV4 => {
                packet::segment(pkt, usize::from(hdr.gso_size), &mut self.segs, &mut self.spans)?;
                // Earlier packets of the same flow go first.
                self.flush();
                self.send_segments(dst);
                Ok(())
            }
            _ => Err(Drop::BadOffload),
        }
    }

    /// Sends the segments of a super-packet, with UDP GSO when it works.
    fn send_segments(&mut self, dst: SocketAddrV4) {
        let sock = Arc::clone(&self.sock);
        let Some(&(_, seg_len)) = self.spans.first() else { return };
        let per_call = (MAX_GSO_BYTES / seg_len).clamp(1, MAX_GSO_SEGMENTS);
        for chunk in self.spans.chunks(per_call) {
            let (from, last) = (chunk[0].0, chunk[chunk.len() - 1]);
            let bytes = &self.segs[from..last.0 + last.1];
            self.counts.tx_packets += chunk.len() as u64;
            self.counts.tx_bytes += bytes.len() as u64;
            if self.udp_gso && chunk.len() > 1 {
                match io::send_segments(sock.as_fd(), bytes, seg_len as u16, dst) {
                    Ok(()) => continue,
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT)) => {
                        self.udp_gso = false;
                    }
                    Err(_) => {
                        self.counts.send_errors += chunk.len() as u64;
                        continue;
                    }
                }
            }
            for &(at, len) in chunk {
                if sock.send_to(&self.segs[at..at + len], dst).is_err() {
                    self.counts.send_errors += 1;
                }
            }
        }
    }

    /// Drains the socket: each datagram is one inner packet (UDP GRO buffers
    /// hold several); with offloads, runs of one TCP flow go to the TUN
    /// device as one GSO packet.
    fn drain_socket(&mut self) {
        for _ in 0..BUDGET / BATCH + 1 {
            let got = match self.recv.recv(self.sock.as_fd()) {
                Ok(0) | Err(_) => break,
                Ok(g) => g,
            };
            let tun = self.tun.as_fd();
            let (vnet, counts, gro) = (self.vnet, &mut self.counts, &mut self.gro);
            for i in 0..got {
                let seg = self.recv.seg[i];
                // The sender's subnet, when only peers may send.
                let sender = match self.shared.filter {
                    false => None,
                    true => self.recv.source(i).and_then(|a| self.table.subnet_of_sender(a)),
                };
                if self.shared.filter && sender.is_none() {
                    counts.foreign += self.recv.lens[i].div_ceil(seg) as u64;
                    continue;
                }
                for pkt in self.recv.data_mut(i).chunks_mut(seg) {
                    if !accept(pkt, counts) {
                        continue;
                    }
                    if sender.is_some_and(|subnet| !self.table.in_subnet(packet_source(pkt), subnet)) {
                        counts.foreign += 1;
                        continue;
                    }
                    counts.rx_packets += 1;
                    counts.rx_bytes += pkt.len() as u64;
                    if !vnet {
                        write(tun, None, pkt, counts);
                    } else if !gro.add(pkt) {
                        flush_gro(tun, gro, counts);
                        if !gro.add(pkt) {
                            write(tun, Some(&[0; VNET_HDR_LEN]), pkt, counts);
                        }
                    }
                }
            }
            flush_gro(tun, gro, counts);
        }
    }
}

/// The inner IPv4 source of a packet [`accept`] took.
fn packet_source(pkt: &[u8]) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15])
}

/// flanneld's `udp_to_tun` checks: an IPv4 packet whose TTL survives.
fn accept(pkt: &mut [u8], counts: &mut Counts) -> bool {
    if packet::ipv4(pkt).is_none() {
        counts.not_ipv4 += 1;
        return false;
    }
    if !packet::decrement_ttl(pkt) {
        counts.ttl_expired += 1;
        return false;
    }
    true
}

fn write(tun: BorrowedFd, hdr: Option<&[u8; VNET_HDR_LEN]>, pkt: &[u8], counts: &mut Counts) {
    if io::tun_write_with(tun, hdr, pkt).is_err() {
        counts.tun_write_errors += 1;
    }
}

fn flush_gro(tun: BorrowedFd, gro: &mut Gro, counts: &mut Counts) {
    if let Some((hdr, pkt)) = gro.take() {
        write(tun, Some(&hdr), pkt, counts);
    }
}
