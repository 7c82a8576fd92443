//! Transmit checksum offload of a device, through the kernel's ethtool ioctl
//! (ETHTOOL_GTXCSUM / ETHTOOL_STXCSUM, the switch `ethtool -K DEV tx on|off`
//! flips; on a VXLAN device that is `tx-checksum-ip-generic`). The ioctl
//! socket belongs to the namespace apply runs in.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GTXCSUM: u32 = 0x16;
const ETHTOOL_STXCSUM: u32 = 0x17;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    // struct ifreq is a union of at least 24 bytes after the name.
    _pad: [u8; 16],
}

fn ioctl(dev: &str, value: &mut EthtoolValue) -> io::Result<()> {
    if dev.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: a plain datagram socket, owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], data: value, _pad: [0; 16] };
    for (slot, b) in req.name.iter_mut().zip(dev.bytes()) {
        *slot = b as libc::c_char;
    }
    // SAFETY: `req` names the device and points at `value`, both alive for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether transmit checksum offload is on.
pub fn tx_checksum(dev: &str) -> io::Result<bool> {
    let mut v = EthtoolValue { cmd: ETHTOOL_GTXCSUM, data: 0 };
    ioctl(dev, &mut v)?;
    Ok(v.data != 0)
}

pub fn set_tx_checksum(dev: &str, on: bool) -> io::Result<()> {
    let mut v = EthtoolValue { cmd: ETHTOOL_STXCSUM, data: u32::from(on) };
    ioctl(dev, &mut v)
}
