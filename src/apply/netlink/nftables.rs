//! Whether an nftables table exists, asked over netlink (NFT_MSG_GETTABLE):
//! an iptables table that is also an nftables one is iptables-nft's, which
//! nft can delete (a legacy table cannot).

use rtnetlink::sys::protocols::NETLINK_NETFILTER;

use super::attr::put_attr;
use super::bulk::{Bulk, Requests};

/// linux/netfilter/nfnetlink.h and nf_tables.h.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETTABLE: u16 = 1;
const NFTA_TABLE_NAME: u16 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// `Some(true)` or `Some(false)` when the kernel said; `None` when it could
/// not be asked (no nf_tables, no socket): then the caller runs nft anyway.
pub fn table_exists(family: &str, name: &str) -> Option<bool> {
    let proto = match family {
        "ip" => NFPROTO_IPV4,
        "ip6" => NFPROTO_IPV6,
        _ => return None,
    };
    let mut reqs = Requests::default();
    reqs.raw(0, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, 0, &body(proto, name));
    let failures = Bulk::open_protocol(NETLINK_NETFILTER).ok()?.execute(&mut reqs).ok()?;
    exists(&failures)
}

/// struct nfgenmsg (family, version 0, resource id 0) and the table's name.
fn body(proto: u8, name: &str) -> Vec<u8> {
    let mut body = vec![proto, 0, 0, 0];
    let mut value = name.as_bytes().to_vec();
    value.push(0);
    put_attr(&mut body, NFTA_TABLE_NAME, &value);
    body
}

/// No failure: the kernel found the table; ENOENT: there is none.
fn exists(failures: &[(usize, i32)]) -> Option<bool> {
    match failures.first() {
        None => Some(true),
        Some((_, libc::ENOENT)) => Some(false),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_table_in_its_family() {
        let b = body(NFPROTO_IPV6, "flannel-ipv6");
        assert_eq!(b[0], NFPROTO_IPV6);
        assert!(b.windows(13).any(|w| w == b"flannel-ipv6\0"));
    }

    #[test]
    fn answers_are_read_as_the_kernel_means_them() {
        assert_eq!(exists(&[]), Some(true));
        assert_eq!(exists(&[(0, libc::ENOENT)]), Some(false));
        assert_eq!(exists(&[(0, libc::EPERM)]), None, "anything but ENOENT: ask nft");
    }
}
