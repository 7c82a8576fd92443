//! A plain rtnetlink socket for the bulk of an apply: thousands of
//! independent neighbour, FDB, nexthop and route changes written back to
//! back, hundreds per write, and dumps read straight from the receive buffer.
//!
//! The kernel handles every request of one write in order, in the writer's
//! context, before the write returns (netlink_rcv_skb), so nothing waits for
//! a reply per request: requests go without NLM_F_ACK — the kernel still
//! reports each failure with its sequence number — and only the last of each
//! write asks for an ack, which marks the end of that write's replies.

use std::os::fd::AsRawFd;

use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, Parseable};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::attr::align;
use super::{NetlinkError, REQUEST_TIMEOUT};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// Bytes of requests per write; well under the socket's send buffer.
const WRITE_BYTES: usize = 48 * 1024;
/// Room for every failure of a write, whatever the default buffer is.
const RECEIVE_BUFFER: libc::c_int = 8 << 20;

/// Requests to send, each tagged with the index of what it belongs to, so a
/// failure is reported against it.
#[derive(Default)]
pub struct Requests {
    buf: Vec<u8>,
    /// (offset in `buf`, owner) per request.
    at: Vec<(usize, usize)>,
}

impl Requests {
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// A request netlink-packet-route models.
    pub fn route(&mut self, owner: usize, msg: RouteNetlinkMessage, flags: u16) {
        let mut m = NetlinkMessage::from(msg);
        m.header.flags = NLM_F_REQUEST | flags;
        m.finalize();
        let start = self.buf.len();
        self.buf.resize(start + m.buffer_len(), 0);
        m.serialize(&mut self.buf[start..]);
        self.at.push((start, owner));
    }

    /// A request built by hand: `body` is the family header and attributes.
    pub fn raw(&mut self, owner: usize, kind: u16, flags: u16, body: &[u8]) {
        let start = self.buf.len();
        let len = u32::try_from(NLMSG_HDRLEN + body.len()).unwrap_or(u32::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        self.buf.extend_from_slice(&[0; 8]);
        self.buf.extend_from_slice(body);
        self.buf.resize(align(self.buf.len()), 0);
        self.at.push((start, owner));
    }

    fn end_of(&self, i: usize) -> usize {
        self.at.get(i + 1).map_or(self.buf.len(), |(s, _)| *s)
    }
}

/// One netlink message of a reply: its type, sequence number and payload.
pub struct Reply<'a> {
    pub kind: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// The messages in one datagram.
fn replies(data: &[u8]) -> impl Iterator<Item = Reply<'_>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let len = u32::from_ne_bytes(rest.get(0..4)?.try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return None;
        }
        let kind = u16::from_ne_bytes(rest.get(4..6)?.try_into().ok()?);
        let seq = u32::from_ne_bytes(rest.get(8..12)?.try_into().ok()?);
        let payload = rest.get(NLMSG_HDRLEN..len)?;
        rest = rest.get(align(len).min(rest.len())..).unwrap_or_default();
        Some(Reply { kind, seq, payload })
    })
}

/// The errno of an NLMSG_ERROR payload (0: an ack).
fn errno_of(payload: &[u8]) -> i32 {
    payload.get(0..4).and_then(|b| b.try_into().ok()).map_or(libc::EPROTO, |b| -i32::from_ne_bytes(b))
}

pub struct Bulk {
    sock: Socket,
    seq: u32,
    rx: Vec<u8>,
}

fn io(e: std::io::Error) -> NetlinkError {
    match e.raw_os_error() {
        Some(libc::EAGAIN) => NetlinkError::Timeout(REQUEST_TIMEOUT),
        Some(errno) => NetlinkError::Kernel { errno },
        None => NetlinkError::Protocol(e.to_string()),
    }
}

impl Bulk {
    /// An rtnetlink socket in the current network namespace.
    pub fn open() -> Result<Bulk, NetlinkError> {
        Bulk::open_protocol(NETLINK_ROUTE)
    }

    /// A socket of another netlink family (NETLINK_NETFILTER), the same way.
    pub fn open_protocol(protocol: isize) -> Result<Bulk, NetlinkError> {
        let mut sock = Socket::new(protocol).map_err(io)?;
        sock.bind_auto().map_err(io)?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(io)?;
        // Failures name only the request's header, not all of it.
        sock.set_cap_ack(true).map_err(io)?;
        // Dumps filtered by the kernel (by device, table) need strict checking.
        sock.set_netlink_get_strict_chk(true).map_err(io)?;
        let fd = sock.as_raw_fd();
        let timeout = libc::timeval { tv_sec: REQUEST_TIMEOUT.as_secs() as libc::time_t, tv_usec: 0 };
        // SAFETY: valid option values of the sizes given, on an open socket.
        unsafe {
            // As root the buffer may exceed rmem_max; if not, the default stays.
            let size = RECEIVE_BUFFER;
            let p = std::ptr::from_ref(&size).cast();
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, size_of::<libc::c_int>() as u32);
            let t = std::ptr::from_ref(&timeout).cast();
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, t, size_of::<libc::timeval>() as u32);
        }
        Ok(Bulk { sock, seq: 0, rx: vec![0; 64 * 1024] })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Sends every request; returns the failures as (owner, errno), in order.
    pub fn execute(&mut self, reqs: &mut Requests) -> Result<Vec<(usize, i32)>, NetlinkError> {
        let mut failures = Vec::new();
        let mut first = 0;
        while first < reqs.at.len() {
            let start = reqs.at[first].0;
            let mut last = first;
            while last + 1 < reqs.at.len() && reqs.end_of(last + 1) - start <= WRITE_BYTES {
                last += 1;
            }
            let base = self.seq.wrapping_add(1);
            for i in first..=last {
                let seq = self.next_seq();
                let off = reqs.at[i].0;
                reqs.buf[off + 8..off + 12].copy_from_slice(&seq.to_ne_bytes());
                if i == last {
                    let flags = u16::from_ne_bytes([reqs.buf[off + 6], reqs.buf[off + 7]]) | NLM_F_ACK;
                    reqs.buf[off + 6..off + 8].copy_from_slice(&flags.to_ne_bytes());
                }
            }
            self.sock.send(&reqs.buf[start..reqs.end_of(last)], 0).map_err(io)?;
            let owner = |seq: u32| reqs.at.get(first + seq.wrapping_sub(base) as usize).map(|(_, o)| *o);
            self.collect_failures(self.seq, owner, &mut failures)?;
            first = last + 1;
        }
        Ok(failures)
    }

    /// Reads replies up to the ack (or failure) of request `last`.
    fn collect_failures(
        &mut self,
        last: u32,
        owner: impl Fn(u32) -> Option<usize>,
        out: &mut Vec<(usize, i32)>,
    ) -> Result<(), NetlinkError> {
        loop {
            let n = self.sock.recv(&mut &mut self.rx[..], 0).map_err(io)?;
            let mut done = false;
            for r in replies(&self.rx[..n]).filter(|r| r.kind == NLMSG_ERROR) {
                let errno = errno_of(r.payload);
                if errno != 0
                    && let Some(o) = owner(r.seq)
                {
                    out.push((o, errno));
                }
                done |= r.seq == last;
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Dumps `kind` (an RTM_GET* type) with `body` as the request's family
    /// header and filter attributes; calls `each` with every reply.
    pub fn dump(&mut self, kind: u16, body: &[u8], each: impl FnMut(&Reply)) -> Result<(), NetlinkError> {
        self.ask(kind, NLM_F_DUMP, body, each)
    }

    /// [`Bulk::dump`] (or, with `one`, a get of the one object `body` names:
    /// its reply, then the ack) of messages that
    /// netlink-packet-route decodes: `each` gets every decoded one; one that
    /// does not decode fails the read, naming `what` it was.
    pub fn decoded<T: Parseable<[u8]>>(
        &mut self,
        (kind, one): (u16, bool),
        body: &[u8],
        what: &str,
        mut each: impl FnMut(T),
    ) -> Result<(), NetlinkError> {
        let mut bad = None;
        let flags = if one { NLM_F_ACK } else { NLM_F_DUMP };
        self.ask(kind, flags, body, |r| match T::parse(r.payload) {
            Ok(m) => each(m),
            Err(e) => bad = bad.take().or(Some(e.to_string())),
        })?;
        bad.map_or(Ok(()), |e| Err(NetlinkError::Protocol(format!("{what} the kernel listed does not decode: {e}"))))
    }

    /// One request; every reply to it goes to `each` until the done or ack.
    fn ask(&mut self, kind: u16, flags: u16, body: &[u8], mut each: impl FnMut(&Reply)) -> Result<(), NetlinkError> {
        let mut req = Requests::default();
        req.raw(0, kind, flags, body);
        let seq = self.next_seq();
        req.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.sock.send(&req.buf, 0).map_err(io)?;
        loop {
            let n = self.sock.recv(&mut &mut self.rx[..], 0).map_err(io)?;
            for r in replies(&self.rx[..n]).filter(|r| r.seq == seq) {
                match r.kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        return match errno_of(r.payload) {
                            0 => Ok(()),
                            errno => Err(NetlinkError::Kernel { errno }),
                        };
                    }
                    _ => each(&r),
                }
            }
        }
    }
}
