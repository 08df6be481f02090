//! The two block-device ioctls rustix has no safe wrapper for. The only `unsafe` in the crate.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsFd;

use rustix::ioctl::{Getter, NoArg, Opcode, ioctl, opcode};

/// `BLKFLSBUF` = `_IO(0x12, 97)` (linux/fs.h): write back and drop the device's buffer cache.
const BLKFLSBUF: Opcode = opcode::none(0x12, 97);
/// `BLKGETSIZE64` = `_IOR(0x12, 114, size_t)` (linux/fs.h): device size in bytes, as a u64.
const BLKGETSIZE64: Opcode = opcode::read::<usize>(0x12, 114);

/// `ioctl(fd, BLKFLSBUF)`: flushes dirty buffers of a block device and invalidates its page
/// cache, so that the next buffered read comes from the medium. Needs CAP_SYS_ADMIN.
pub fn blkflsbuf(fd: impl AsFd) -> io::Result<()> {
    // SAFETY: BLKFLSBUF takes no argument and touches no user memory.
    Ok(unsafe { ioctl(fd, NoArg::<BLKFLSBUF>::new()) }?)
}

/// `ioctl(fd, BLKGETSIZE64)`: the size of a block device in bytes.
pub fn blkgetsize64(fd: impl AsFd) -> io::Result<u64> {
    // SAFETY: BLKGETSIZE64 writes one u64 (the kernel's `put_u64`, whatever size_t's width
    // in the opcode) into the getter's output slot, which is a u64.
    Ok(unsafe { ioctl(fd, Getter::<BLKGETSIZE64, u64>::new()) }?)
}
