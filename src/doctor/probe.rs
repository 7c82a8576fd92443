//! ICMP echo probes from the node's namespace, all peers at once: one raw
//! socket per family and source, every request sent up front, replies
//! matched by identifier and sequence until each is answered or the time is
//! up. Only addresses the plan names are probed; a few packets each.

use std::collections::BTreeMap;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// What a probe tests; part of its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The peer's public IP over the underlay.
    Underlay = 0,
    /// The peer's overlay address from ours.
    Overlay = 1,
    /// The same, at the overlay MTU with fragmentation forbidden.
    OverlayMtu = 2,
}

/// One echo to send: to `dst`, from `src` (the kernel picks when `None`),
/// `size` bytes of IP packet, DF set when `df`.
#[derive(Debug, Clone)]
pub struct Probe {
    pub peer: usize,
    pub kind: Kind,
    pub dst: IpAddr,
    pub src: Option<IpAddr>,
    pub size: usize,
    pub df: bool,
}

/// How a probe ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Reply {
        rtt: Duration,
    },
    /// An ICMP error naming our request (unreachable, too big, ...).
    Error(String),
    /// Sending failed locally (EMSGSIZE for a DF probe above the route's MTU).
    SendFailed(String),
    NoAnswer,
}

const ICMP_ECHO: u8 = 8;
const ICMP_ECHOREPLY: u8 = 0;
const ICMP_UNREACH: u8 = 3;
const ICMP6_ECHO: u8 = 128;
const ICMP6_ECHOREPLY: u8 = 129;
const ICMP6_UNREACH: u8 = 1;
const ICMP6_TOO_BIG: u8 = 2;
const IP_HEADER: usize = 20;
const IP6_HEADER: usize = 40;
const ICMP_HEADER: usize = 8;

fn seq_of(p: &Probe) -> u16 {
    ((p.kind as u16) << 14) | (p.peer as u16 & 0x3fff)
}

/// Sends every probe (again at half time if unanswered) and waits up to
/// `timeout` for all of them. The largest peer index is 16383.
pub fn run(probes: &[Probe], timeout: Duration) -> io::Result<BTreeMap<(usize, Kind), Outcome>> {
    let ident = (std::process::id() & 0xffff) as u16;
    let mut sockets = Sockets::default();
    // Made up front: without the right to open them, nothing can be probed (exit 3).
    for v6 in [false, true] {
        if probes.iter().any(|p| p.dst.is_ipv6() == v6) {
            sockets.receiver(v6)?;
        }
    }
    let mut out: BTreeMap<(usize, Kind), Outcome> =
        probes.iter().map(|p| ((p.peer, p.kind), Outcome::NoAnswer)).collect();
    let by_seq: BTreeMap<u16, &Probe> = probes.iter().map(|p| (seq_of(p), p)).collect();
    let start = Instant::now();
    sockets.send_unanswered(probes, ident, &mut out);
    let mut resent = false;
    while out.values().any(|o| *o == Outcome::NoAnswer) {
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            break;
        }
        if !resent && elapsed >= timeout / 2 {
            resent = true;
            sockets.send_unanswered(probes, ident, &mut out);
        }
        let wait = (timeout - elapsed).min(Duration::from_millis(50));
        for (seq, result) in sockets.receive(ident, wait)? {
            let Some(p) = by_seq.get(&seq) else { continue };
            if let Some(slot) = out.get_mut(&(p.peer, p.kind)).filter(|o| **o == Outcome::NoAnswer) {
                *slot = match result {
                    Ok(()) => Outcome::Reply { rtt: start.elapsed() },
                    Err(e) => Outcome::Error(e),
                };
            }
        }
    }
    Ok(out)
}

/// The raw sockets, made as needed: per family one to receive on (and send
/// unbound), and one per bound source, DF on or off.
#[derive(Default)]
struct Sockets {
    receive: BTreeMap<bool, OwnedFd>,
    send: BTreeMap<(Option<IpAddr>, bool), OwnedFd>,
}

fn raw_socket(v6: bool) -> io::Result<OwnedFd> {
    let (domain, proto) = if v6 { (libc::AF_INET6, libc::IPPROTO_ICMPV6) } else { (libc::AF_INET, libc::IPPROTO_ICMP) };
    // SAFETY: plain socket(2); the descriptor is owned from here on.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_int(fd: &OwnedFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: an int option, its size given.
    let r = unsafe {
        libc::setsockopt(fd.as_raw_fd(), level, name, (&value as *const i32).cast(), size_of::<i32>() as u32)
    };
    if r != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// A sockaddr for `addr` (port 0), with its length.
fn sockaddr(addr: IpAddr) -> (libc::sockaddr_storage, u32) {
    // SAFETY: sockaddr_storage is plain data; zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    match SocketAddr::new(addr, 0) {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as u16;
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            (ss, size_of::<libc::sockaddr_in>() as u32)
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as u16;
            sin6.sin6_addr.s6_addr = a.ip().octets();
            (ss, size_of::<libc::sockaddr_in6>() as u32)
        }
    }
}

/// ICMP's one's-complement checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request of `len` bytes of ICMP (header and payload).
fn echo(v6: bool, ident: u16, seq: u16, len: usize) -> Vec<u8> {
    let mut m = vec![0u8; len.max(ICMP_HEADER)];
    m[0] = if v6 { ICMP6_ECHO } else { ICMP_ECHO };
    m[4..6].copy_from_slice(&ident.to_be_bytes());
    m[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in m[ICMP_HEADER..].iter_mut().enumerate() {
        *b = i as u8;
    }
    if !v6 {
        // The kernel fills in ICMPv6's checksum itself (RFC 3542).
        let c = checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
    }
    m
}

impl Sockets {
    fn receiver(&mut self, v6: bool) -> io::Result<&OwnedFd> {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.receive.entry(v6) {
            slot.insert(raw_socket(v6)?);
        }
        self.receive.get(&v6).ok_or_else(|| io::Error::other("socket"))
    }

    fn sender(&mut self, src: Option<IpAddr>, df: bool, v6: bool) -> io::Result<&OwnedFd> {
        if src.is_none() && !df {
            return self.receiver(v6);
        }
        if !self.send.contains_key(&(src, df)) {
            let fd = raw_socket(v6)?;
            if let Some(a) = src {
                let (ss, len) = sockaddr(a);
                // SAFETY: ss holds a valid sockaddr of `len` bytes.
                if unsafe { libc::bind(fd.as_raw_fd(), (&ss as *const libc::sockaddr_storage).cast(), len) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let (level, name, value) = match (v6, df) {
                (false, true) => (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_PROBE),
                (true, true) => (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::IPV6_PMTUDISC_PROBE),
                (false, false) => (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_DONT),
                (true, false) => (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, libc::IPV6_PMTUDISC_DONT),
            };
            set_int(&fd, level, name, value)?;
            self.receiver(v6)?;
            self.send.insert((src, df), fd);
        }
        self.send.get(&(src, df)).ok_or_else(|| io::Error::other("socket"))
    }

    /// Sends each probe still without an answer; a local refusal (EMSGSIZE
    /// above a route's MTU, no such source address) is its outcome.
    fn send_unanswered(&mut self, probes: &[Probe], ident: u16, out: &mut BTreeMap<(usize, Kind), Outcome>) {
        for p in probes {
            if out.get(&(p.peer, p.kind)) != Some(&Outcome::NoAnswer) {
                continue;
            }
            if let Err(e) = self.send(p, ident) {
                out.insert((p.peer, p.kind), Outcome::SendFailed(e.to_string()));
            }
        }
    }

    fn send(&mut self, p: &Probe, ident: u16) -> io::Result<()> {
        let v6 = p.dst.is_ipv6();
        let header = if v6 { IP6_HEADER } else { IP_HEADER };
        let msg = echo(v6, ident, seq_of(p), p.size.saturating_sub(header));
        let fd = self.sender(p.src, p.df, v6)?;
        let (ss, len) = sockaddr(p.dst);
        // SAFETY: msg and ss are valid for the lengths given.
        let r = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&ss as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    }

    /// Replies (Ok) and errors (Err with a description) to our requests,
    /// by sequence number, waiting at most `wait` for the first.
    fn receive(&mut self, ident: u16, wait: Duration) -> io::Result<Vec<(u16, Result<(), String>)>> {
        let mut fds: Vec<libc::pollfd> = self
            .receive
            .values()
            .map(|f| libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        // SAFETY: fds is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait.as_millis() as i32) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(Vec::new()) } else { Err(e) };
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        for (v6, fd) in &self.receive {
            loop {
                // SAFETY: buf is valid for its length.
                let r = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                if r <= 0 {
                    break;
                }
                let packet = &buf[..r as usize];
                let parsed = if *v6 { parse_v6(packet, ident) } else { parse_v4(packet, ident) };
                out.extend(parsed);
            }
        }
        Ok(out)
    }
}

/// The ICMP message after an IPv4 header.
fn after_ip4(packet: &[u8]) -> Option<&[u8]> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    packet.get(ihl..)
}

/// Identifier and sequence of an echo request or reply at the start of `m`.
fn ident_seq(m: &[u8]) -> Option<(u16, u16)> {
    Some((u16::from_be_bytes([*m.get(4)?, *m.get(5)?]), u16::from_be_bytes([*m.get(6)?, *m.get(7)?])))
}

fn parse_v4(packet: &[u8], ident: u16) -> Option<(u16, Result<(), String>)> {
    let m = after_ip4(packet)?;
    match *m.first()? {
        ICMP_ECHOREPLY => {
            let (id, seq) = ident_seq(m)?;
            (id == ident).then_some((seq, Ok(())))
        }
        ICMP_UNREACH | 11 => {
            let inner = after_ip4(m.get(ICMP_HEADER..)?)?;
            let (id, seq) = ident_seq(inner)?;
            let from = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
            let why = match (m[0], m[1]) {
                (3, 4) => {
                    format!("fragmentation needed (next-hop MTU {}) from {from}", u16::from_be_bytes([m[6], m[7]]))
                }
                (3, 0) => format!("network unreachable from {from}"),
                (3, 1) => format!("host unreachable from {from}"),
                (3, 3) => format!("port unreachable from {from}"),
                (3, 13) => format!("administratively prohibited from {from}"),
                (11, _) => format!("time exceeded from {from}"),
                (t, c) => format!("ICMP type {t} code {c} from {from}"),
            };
            (inner.first() == Some(&ICMP_ECHO) && id == ident).then_some((seq, Err(why)))
        }
        _ => None,
    }
}

fn parse_v6(m: &[u8], ident: u16) -> Option<(u16, Result<(), String>)> {
    match *m.first()? {
        ICMP6_ECHOREPLY => {
            let (id, seq) = ident_seq(m)?;
            (id == ident).then_some((seq, Ok(())))
        }
        ICMP6_UNREACH | ICMP6_TOO_BIG => {
            let inner_ip = m.get(ICMP_HEADER..)?;
            let from = inner_ip.get(8..24).and_then(|b| <[u8; 16]>::try_from(b).ok()).map(Ipv6Addr::from);
            let inner = inner_ip.get(IP6_HEADER..)?;
            let (id, seq) = ident_seq(inner)?;
            let why = if m[0] == ICMP6_TOO_BIG {
                format!("packet too big (MTU {})", u32::from_be_bytes([m[4], m[5], m[6], m[7]]))
            } else {
                format!(
                    "destination unreachable (code {}) for a packet from {}",
                    m[1],
                    from.map(|a| a.to_string()).unwrap_or_default()
                )
            };
            (inner.first() == Some(&ICMP6_ECHO) && id == ident).then_some((seq, Err(why)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_checksum_verifies_to_zero() {
        let m = echo(false, 0x1234, 7, 64);
        assert_eq!(checksum(&m), 0, "a message with its checksum sums to 0xffff");
        assert_eq!(ident_seq(&m), Some((0x1234, 7)));
    }

    #[test]
    fn replies_and_errors_are_matched_to_our_requests_only() {
        let mut reply = vec![0x45u8; IP_HEADER];
        reply.extend(echo(false, 9, 5, 16));
        reply[IP_HEADER] = ICMP_ECHOREPLY;
        assert_eq!(parse_v4(&reply, 9), Some((5, Ok(()))));
        assert_eq!(parse_v4(&reply, 10), None, "another process's echo");
        // Fragmentation needed, quoting our request.
        let mut err = vec![0x45u8; IP_HEADER];
        err.extend([ICMP_UNREACH, 4, 0, 0, 0, 0, 0x05, 0x78]);
        err.extend(vec![0x45u8; IP_HEADER]);
        err.extend(echo(false, 9, 6, 8));
        let (seq, why) = parse_v4(&err, 9).expect("ours");
        assert_eq!(seq, 6);
        assert!(why.expect_err("an error").contains("next-hop MTU 1400"));
    }
}
