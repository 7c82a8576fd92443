//! An ARP probe (RFC 5227) for the node's own underlay address.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::mac::Mac;

const ETH_P_ARP: u16 = 0x0806;
const ARP_WAIT: Duration = Duration::from_millis(400);

/// Sends one RFC 5227 ARP probe for `ip` out of `ifindex` and returns the
/// MAC of whoever answers for it within a moment.
pub fn probe(ifindex: u32, mac: Mac, ip: Ipv4Addr) -> io::Result<Option<Mac>> {
    // SAFETY: plain socket(2); the descriptor is owned from here on.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            i32::from(ETH_P_ARP.to_be()),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and owned only here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = ETH_P_ARP.to_be();
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    let mut req = vec![0, 1, 8, 0, 6, 4, 0, 1];
    req.extend_from_slice(&mac.0);
    req.extend_from_slice(&[0; 4]);
    req.extend_from_slice(&[0; 6]);
    req.extend_from_slice(&ip.octets());
    let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
    // SAFETY: req and sll are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0, (&sll as *const libc::sockaddr_ll).cast(), len)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let deadline = Instant::now() + ARP_WAIT;
    let mut buf = [0u8; 128];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32 + 1) } <= 0 {
            break;
        }
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 28 {
            continue;
        }
        let is_reply = buf[6..8] == [0, 2];
        let sender_ip = Ipv4Addr::new(buf[14], buf[15], buf[16], buf[17]);
        let mut sender = [0u8; 6];
        sender.copy_from_slice(&buf[8..14]);
        if is_reply && sender_ip == ip && sender != mac.0 {
            return Ok(Some(Mac(sender)));
        }
    }
    Ok(None)
}
