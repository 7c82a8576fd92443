//! The udp backend's TUN device through `/dev/net/tun` ioctls (a TUN device
//! cannot be made through rtnetlink): apply creates it persistent and
//! multi-queue; `flannel-gen udp` attaches one queue per worker. Both act on
//! the network namespace of the calling thread.
// Without the udp feature only apply's half (create_persistent) is used.
#![cfg_attr(not(feature = "udp"), allow(dead_code))]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `_IOW('T', 202, int)` and friends (linux/if_tun.h).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;

const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;
const IFF_VNET_HDR: libc::c_short = 0x4000;

/// TUNSETOFFLOAD flags: the kernel may hand us partial checksums and TCP
/// segmentation offload super-packets (and accept them from us).
pub const TUN_F_CSUM: libc::c_uint = 0x01;
pub const TUN_F_TSO4: libc::c_uint = 0x02;

/// Size of the `virtio_net_hdr` before every packet with IFF_VNET_HDR (the
/// legacy header, without `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;

/// IFLA_TUN_TYPE value of a TUN (layer 3) device, as rtnetlink reports it.
pub const TYPE_TUN: u8 = 1;

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

fn ifreq(name: &str, flags: libc::c_short) -> io::Result<IfReq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags, _pad: [0; 22] };
    for (slot, b) in req.name.iter_mut().zip(name.bytes()) {
        *slot = b as libc::c_char;
    }
    Ok(req)
}

fn open_clone_device() -> io::Result<OwnedFd> {
    let path = c"/dev/net/tun";
    // SAFETY: a valid C string; the descriptor is owned right away.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl_ptr<T>(fd: &OwnedFd, request: libc::c_ulong, arg: *mut T) -> io::Result<()> {
    // SAFETY: `arg` points at a live value of the layout the request reads.
    if unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn ioctl_val(fd: &OwnedFd, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the request takes its argument by value.
    if unsafe { libc::ioctl(fd.as_raw_fd(), request, arg) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether a network device of that name exists in this namespace.
pub fn exists(name: &str) -> bool {
    let Ok(c) = CString::new(name) else { return false };
    // SAFETY: a valid C string.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

/// Creates `name` as a persistent, multi-queue TUN device without packet
/// information, as `ip tuntap add dev NAME mode tun multi_queue` does.
pub fn create_persistent(name: &str) -> io::Result<()> {
    let fd = open_clone_device()?;
    let mut req = ifreq(name, IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE)?;
    ioctl_ptr(&fd, TUNSETIFF, &mut req)?;
    ioctl_val(&fd, TUNSETPERSIST, 1)
}

/// Attaches one queue of the existing device `name`; with `vnet_hdr` every
/// packet is preceded by a `virtio_net_hdr` (GSO and checksum offload).
/// Refuses to create the device: TUNSETIFF would make a new one otherwise.
pub fn open_queue(name: &str, vnet_hdr: bool) -> io::Result<OwnedFd> {
    if !exists(name) {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    let fd = open_clone_device()?;
    let mut flags = IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE;
    if vnet_hdr {
        flags |= IFF_VNET_HDR;
    }
    let mut req = ifreq(name, flags)?;
    ioctl_ptr(&fd, TUNSETIFF, &mut req)?;
    if vnet_hdr {
        let mut size = VNET_HDR_LEN as libc::c_int;
        ioctl_ptr(&fd, TUNSETVNETHDRSZ, &mut size)?;
    }
    // SAFETY: plain fcntl on a descriptor we own.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if fl < 0 || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Which offloads the kernel may use towards this queue.
pub fn set_offload(fd: &OwnedFd, flags: libc::c_uint) -> io::Result<()> {
    ioctl_val(fd, TUNSETOFFLOAD, libc::c_ulong::from(flags))
}
