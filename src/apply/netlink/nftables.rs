//! Whether an nftables table exists, asked over netlink (NFT_MSG_GETTABLE)
//! instead of by running `nft list table`: under the iptables back end the
//! table is almost never there, and running nft to learn so costs a process
//! (0.7 ms idle, up to 3.6 ms on a busy node) on every apply.

use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use super::attr::put_attr;

/// linux/netfilter/nfnetlink.h and nf_tables.h.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFTA_TABLE_NAME: u16 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const NLMSG_HDRLEN: usize = 16;

/// `Some(true)` or `Some(false)` when the kernel said; `None` when it could
/// not be asked (no nf_tables, no socket): then the caller runs nft anyway.
pub fn table_exists(family: &str, name: &str) -> Option<bool> {
    let proto = match family {
        "ip" => NFPROTO_IPV4,
        "ip6" => NFPROTO_IPV6,
        _ => return None,
    };
    let mut sock = Socket::new(NETLINK_NETFILTER).ok()?;
    sock.bind_auto().ok()?;
    sock.connect(&SocketAddr::new(0, 0)).ok()?;
    sock.send(&request(proto, name), 0).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    let n = sock.recv(&mut &mut buf[..], 0).ok()?;
    answer(buf.get(..n)?)
}

/// NFT_MSG_GETTABLE for one table, asking for an ack.
fn request(proto: u8, name: &str) -> Vec<u8> {
    let mut body = vec![proto, 0, 0, 0]; // struct nfgenmsg: family, version 0, res_id 0
    let mut value = name.as_bytes().to_vec();
    value.push(0);
    put_attr(&mut body, NFTA_TABLE_NAME, &value);
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
    msg.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel's
    msg.extend_from_slice(&body);
    msg
}

/// The first reply: the table itself, or an error (ENOENT: no such table).
fn answer(reply: &[u8]) -> Option<bool> {
    let kind = u16::from_ne_bytes(reply.get(4..6)?.try_into().ok()?);
    if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE {
        return Some(true);
    }
    if kind != NLMSG_ERROR {
        return None;
    }
    match -i32::from_ne_bytes(reply.get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)?.try_into().ok()?) {
        libc::ENOENT => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_table_in_its_family() {
        let r = request(NFPROTO_IPV4, "flannel-ipv4");
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().expect("len")) as usize, r.len());
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 0x0a01, "NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE");
        assert_eq!(r[16], NFPROTO_IPV4);
        assert!(r.windows(13).any(|w| w == b"flannel-ipv4\0"));
    }

    #[test]
    fn answers_are_read_as_the_kernel_means_them() {
        let mut err = vec![0u8; 36];
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(answer(&err), Some(false));
        err[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(answer(&err), None, "anything but ENOENT: ask nft");
        let mut table = vec![0u8; 20];
        table[4..6].copy_from_slice(&0x0a00u16.to_ne_bytes());
        assert_eq!(answer(&table), Some(true));
    }
}
