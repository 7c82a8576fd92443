//! The forwarder's system calls, batched: `recvmmsg` (with UDP GRO, many
//! datagrams per buffer), `sendmmsg`, `sendmsg` with UDP_SEGMENT (one call
//! for a whole TCP super-packet's segments), `readv`/`writev` on the TUN
//! queue. Buffers are allocated once per worker; nothing here allocates per
//! packet.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::packet::VNET_HDR_LEN;

const SOL_UDP: libc::c_int = 17;
/// linux/udp.h: segment size for UDP GSO on send, GRO on receive.
pub const UDP_SEGMENT: libc::c_int = 103;
pub const UDP_GRO: libc::c_int = 104;
/// The largest datagram (and TUN read) the forwarder handles.
pub const BUF_LEN: usize = 65_536;
/// Room for one cmsg carrying a u16 or int (aligned to 8).
const CMSG_BUF: usize = 32;

fn check(r: isize) -> io::Result<usize> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
}

pub fn would_block(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR))
}

fn sockaddr(a: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
    let mut s: libc::sockaddr_in = unsafe { zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = a.port().to_be();
    s.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    s
}

/// Sets an int socket option; `Ok(false)` when the kernel does not know it.
pub fn set_int(fd: BorrowedFd, level: libc::c_int, opt: libc::c_int, v: libc::c_int) -> io::Result<bool> {
    // SAFETY: `v` lives across the call and its size is passed.
    let r = unsafe {
        libc::setsockopt(fd.as_raw_fd(), level, opt, (&v as *const libc::c_int).cast(), size_of::<libc::c_int>() as u32)
    };
    match r {
        0 => Ok(true),
        _ => {
            let e = io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::ENOPROTOOPT | libc::EINVAL)) { Ok(false) } else { Err(e) }
        }
    }
}

/// Datagrams received in one `recvmmsg`, each with its GRO segment size.
pub struct RecvBatch {
    bufs: Vec<Box<[u8]>>,
    /// Each message's sender.
    srcs: Vec<libc::sockaddr_in>,
    cmsgs: Vec<[u64; CMSG_BUF / 8]>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    /// Per message: bytes received, and the size of each coalesced datagram.
    pub lens: Vec<usize>,
    pub seg: Vec<usize>,
}

impl RecvBatch {
    pub fn new(n: usize) -> RecvBatch {
        RecvBatch {
            bufs: (0..n).map(|_| vec![0u8; BUF_LEN].into_boxed_slice()).collect(),
            srcs: vec![sockaddr(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)); n],
            cmsgs: vec![[0u64; CMSG_BUF / 8]; n],
            // SAFETY: iovec and mmsghdr are plain data; all-zero is valid and overwritten before use.
            iovs: vec![unsafe { zeroed() }; n],
            // SAFETY: as above.
            hdrs: vec![unsafe { zeroed() }; n],
            lens: vec![0; n],
            seg: vec![0; n],
        }
    }

    /// Who sent message `i` of the last receive (an IPv4 socket's peers only).
    pub fn source(&self, i: usize) -> Option<std::net::Ipv4Addr> {
        let a = &self.srcs[i];
        let whole = self.hdrs[i].msg_hdr.msg_namelen as usize >= size_of::<libc::sockaddr_in>();
        (whole && a.sin_family == libc::AF_INET as libc::sa_family_t)
            .then(|| std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))
    }

    pub fn data_mut(&mut self, i: usize) -> &mut [u8] {
        let len = self.lens[i];
        &mut self.bufs[i][..len]
    }

    /// Receives up to the batch size without blocking; 0 when none wait.
    pub fn recv(&mut self, fd: BorrowedFd) -> io::Result<usize> {
        let n = self.bufs.len();
        for i in 0..n {
            self.iovs[i] = libc::iovec { iov_base: self.bufs[i].as_mut_ptr().cast(), iov_len: BUF_LEN };
            // SAFETY: msghdr is plain data.
            let mut h: libc::msghdr = unsafe { zeroed() };
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_name = (&mut self.srcs[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            h.msg_control = self.cmsgs[i].as_mut_ptr().cast();
            h.msg_controllen = CMSG_BUF;
            self.hdrs[i] = libc::mmsghdr { msg_hdr: h, msg_len: 0 };
        }
        // SAFETY: every header points at buffers owned by `self` that outlive the call.
        let r = unsafe {
            libc::recvmmsg(fd.as_raw_fd(), self.hdrs.as_mut_ptr(), n as u32, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        let got = match check(r as isize) {
            Ok(g) => g,
            Err(e) if would_block(&e) => return Ok(0),
            Err(e) => return Err(e),
        };
        for i in 0..got {
            self.lens[i] = self.hdrs[i].msg_len as usize;
            self.seg[i] = gro_size(&self.hdrs[i].msg_hdr).unwrap_or(self.lens[i]).max(1);
        }
        Ok(got)
    }
}

/// The UDP_GRO control message of a received message, if the kernel coalesced.
fn gro_size(h: &libc::msghdr) -> Option<usize> {
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == SOL_UDP && (*c).cmsg_type == UDP_GRO {
                let p = libc::CMSG_DATA(c).cast::<u16>();
                return Some(usize::from(p.read_unaligned()));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// Packets waiting for one `sendmmsg`, read from the TUN device straight
/// into their slot.
pub struct SendBatch {
    bufs: Vec<Box<[u8]>>,
    spans: Vec<(usize, usize)>,
    dsts: Vec<libc::sockaddr_in>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    count: usize,
}

impl SendBatch {
    pub fn new(n: usize) -> SendBatch {
        SendBatch {
            bufs: (0..n).map(|_| vec![0u8; BUF_LEN].into_boxed_slice()).collect(),
            spans: vec![(0, 0); n],
            dsts: vec![sockaddr(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)); n],
            // SAFETY: plain data, overwritten before use.
            iovs: vec![unsafe { zeroed() }; n],
            // SAFETY: as above.
            hdrs: vec![unsafe { zeroed() }; n],
            count: 0,
        }
    }

    pub fn is_full(&self) -> bool {
        self.count == self.bufs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The next free slot, to read a packet into.
    pub fn slot(&mut self) -> &mut [u8] {
        &mut self.bufs[self.count]
    }

    /// Queues the packet at `start..start + len` of the current slot.
    pub fn commit(&mut self, start: usize, len: usize, dst: SocketAddrV4) {
        self.spans[self.count] = (start, len);
        self.dsts[self.count] = sockaddr(dst);
        self.count += 1;
    }

    /// Sends everything queued; returns how many datagrams failed.
    pub fn flush(&mut self, fd: BorrowedFd) -> usize {
        let n = self.count;
        for i in 0..n {
            let (start, len) = self.spans[i];
            self.iovs[i] = libc::iovec { iov_base: self.bufs[i][start..].as_mut_ptr().cast(), iov_len: len };
            // SAFETY: plain data.
            let mut h: libc::msghdr = unsafe { zeroed() };
            h.msg_name = (&mut self.dsts[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            self.hdrs[i] = libc::mmsghdr { msg_hdr: h, msg_len: 0 };
        }
        let mut sent = 0;
        let mut failed = 0;
        while sent < n {
            // SAFETY: headers point at buffers owned by `self` for the call's duration.
            let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), self.hdrs[sent..].as_mut_ptr(), (n - sent) as u32, 0) };
            match check(r as isize) {
                Ok(0) => break,
                Ok(k) => sent += k,
                // The first message failed: skip it, as flanneld skips a failed sendto.
                Err(_) => {
                    failed += 1;
                    sent += 1;
                }
            }
        }
        self.count = 0;
        failed
    }
}

/// One `sendmsg` of `buf` cut into datagrams of `seg` bytes (UDP GSO).
pub fn send_segments(fd: BorrowedFd, buf: &[u8], seg: u16, dst: SocketAddrV4) -> io::Result<()> {
    let mut addr = sockaddr(dst);
    let mut iov = libc::iovec { iov_base: buf.as_ptr().cast_mut().cast(), iov_len: buf.len() };
    let mut control = [0u64; CMSG_BUF / 8];
    // SAFETY: plain data.
    let mut h: libc::msghdr = unsafe { zeroed() };
    h.msg_name = (&mut addr as *mut libc::sockaddr_in).cast();
    h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
    h.msg_iov = &mut iov;
    h.msg_iovlen = 1;
    h.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic; the cmsg is written inside `control`.
    unsafe {
        h.msg_controllen = libc::CMSG_SPACE(size_of::<u16>() as u32) as usize;
        let c = libc::CMSG_FIRSTHDR(&h);
        (*c).cmsg_level = SOL_UDP;
        (*c).cmsg_type = UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
        libc::CMSG_DATA(c).cast::<u16>().write_unaligned(seg);
    }
    // SAFETY: everything `h` points at lives until the call returns.
    check(unsafe { libc::sendmsg(fd.as_raw_fd(), &h, 0) }).map(|_| ())
}

/// Writes one packet to the TUN queue, after an all-zero virtio header
/// when the queue has one (no offload asked for).
pub fn tun_write(fd: BorrowedFd, vnet: bool, pkt: &[u8]) -> io::Result<()> {
    static ZERO: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];
    tun_write_with(fd, vnet.then_some(&ZERO), pkt)
}

/// Writes one packet after the given virtio header (none: a queue without one).
pub fn tun_write_with(fd: BorrowedFd, hdr: Option<&[u8; VNET_HDR_LEN]>, pkt: &[u8]) -> io::Result<()> {
    let zero = [0u8; VNET_HDR_LEN];
    let h = hdr.unwrap_or(&zero);
    let iov = [
        libc::iovec { iov_base: h.as_ptr().cast_mut().cast(), iov_len: VNET_HDR_LEN },
        libc::iovec { iov_base: pkt.as_ptr().cast_mut().cast(), iov_len: pkt.len() },
    ];
    let (ptr, cnt) = if hdr.is_some() { (iov.as_ptr(), 2) } else { (iov[1..].as_ptr(), 1) };
    // SAFETY: the iovecs point at live buffers for the call's duration.
    check(unsafe { libc::writev(fd.as_raw_fd(), ptr, cnt) }).map(|_| ())
}

/// One packet (or super-packet) from the TUN queue; 0 when none waits.
pub fn tun_read(fd: BorrowedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its whole length.
    match check(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }) {
        Err(e) if would_block(&e) => Ok(0),
        r => r,
    }
}

/// Waits up to `timeout_ms` for either descriptor; (tun readable, socket
/// readable, tun failed).
pub fn wait(tun: BorrowedFd, sock: BorrowedFd, timeout_ms: i32) -> io::Result<(bool, bool, bool)> {
    let mut fds = [
        libc::pollfd { fd: tun.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLIN, revents: 0 },
    ];
    // SAFETY: `fds` is a live array of two pollfds.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if would_block(&e) { Ok((false, false, false)) } else { Err(e) };
    }
    let bad = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
    Ok((fds[0].revents & libc::POLLIN != 0, fds[1].revents & libc::POLLIN != 0, fds[0].revents & bad != 0))
}
