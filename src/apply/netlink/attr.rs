//! Netlink attributes (`struct nlattr`, 4-byte aligned) written and read by
//! hand for the messages netlink-packet-route does not build or that apply
//! reads without it, and the byte forms of their values.

use std::net::IpAddr;

use crate::mac::Mac;

/// Netlink's alignment (NLMSG_ALIGN, NLA_ALIGN).
pub fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends a netlink attribute (type, value, padding) to `buf`.
pub fn put_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(align(buf.len()), 0);
}

/// The attributes that follow a family header of `header` bytes: (type, value).
pub fn attrs(payload: &[u8], header: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = payload.get(header..).unwrap_or_default();
    std::iter::from_fn(move || {
        let len = u16::from_ne_bytes(rest.get(0..2)?.try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(rest.get(2..4)?.try_into().ok()?) & 0x3fff;
        let value = rest.get(4..len.max(4))?;
        rest = rest.get(align(len.max(4)).min(rest.len())..).unwrap_or_default();
        Some((kind, value))
    })
}

pub fn u32_of(v: &[u8]) -> Option<u32> {
    v.try_into().ok().map(u32::from_ne_bytes)
}

/// An IPv4 or IPv6 address by its length.
pub fn ip_of(v: &[u8]) -> Option<IpAddr> {
    match v.len() {
        4 => <[u8; 4]>::try_from(v).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(v).ok().map(IpAddr::from),
        _ => None,
    }
}

pub fn mac_of(v: &[u8]) -> Option<Mac> {
    <[u8; 6]>::try_from(v).ok().map(Mac)
}
