//! The block-device and MMC ioctls rustix has no safe wrapper for. The only `unsafe` in the crate.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsFd;

use rustix::ioctl::{Getter, NoArg, Opcode, Updater, ioctl, opcode};

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

/// `struct mmc_ioc_cmd` (Linux `include/uapi/linux/mmc/ioctl.h`), 72 bytes on every ABI.
#[repr(C)]
#[derive(Debug, Default)]
struct MmcIocCmd {
    write_flag: i32,
    is_acmd: i32,
    opcode: u32,
    arg: u32,
    response: [u32; 4],
    flags: u32,
    blksz: u32,
    blocks: u32,
    postsleep_min_us: u32,
    postsleep_max_us: u32,
    data_timeout_ns: u32,
    cmd_timeout_ms: u32,
    pad: u32,
    data_ptr: u64,
}

const _: () = assert!(std::mem::size_of::<MmcIocCmd>() == 72);

/// `MMC_IOC_CMD` = `_IOWR(MMC_BLOCK_MAJOR = 179, 0, struct mmc_ioc_cmd)`.
const MMC_IOC_CMD: Opcode = opcode::read_write::<MmcIocCmd>(179, 0);

// Response and command-type flags (`include/linux/mmc/core.h`, which the ioctl ABI takes as is).
const MMC_RSP_PRESENT: u32 = 1 << 0;
const MMC_RSP_CRC: u32 = 1 << 2;
const MMC_RSP_BUSY: u32 = 1 << 3;
const MMC_RSP_OPCODE: u32 = 1 << 4;
const MMC_CMD_AC: u32 = 0;
const MMC_CMD_ADTC: u32 = 1 << 5;
const MMC_RSP_SPI_S1: u32 = 1 << 7;
const MMC_RSP_SPI_BUSY: u32 = 1 << 10;
/// R1: 48-bit response with CRC and opcode.
const MMC_RSP_R1: u32 = MMC_RSP_PRESENT | MMC_RSP_CRC | MMC_RSP_OPCODE;
/// R1b: R1 with busy signalling on DAT0 (the host waits for it).
const MMC_RSP_R1B: u32 = MMC_RSP_R1 | MMC_RSP_BUSY;

/// CMD8 SEND_EXT_CSD (JESD84-B51 §6.10.4, class 0, adtc, R1).
const MMC_SEND_EXT_CSD: u32 = 8;
/// CMD6 SWITCH (ac, R1b).
const MMC_SWITCH: u32 = 6;

fn mmc_cmd(fd: impl AsFd, cmd: &mut MmcIocCmd) -> io::Result<()> {
    // SAFETY: MMC_IOC_CMD reads and writes exactly one `struct mmc_ioc_cmd`, which `MmcIocCmd`
    // mirrors field for field (size checked above); `data_ptr` is 0 or points to a buffer of
    // `blksz * blocks` bytes that outlives the call (see the callers).
    unsafe { ioctl(fd, Updater::<MMC_IOC_CMD, MmcIocCmd>::new(cmd)) }?;
    Ok(())
}

/// CMD8 through `MMC_IOC_CMD`: the card's 512-byte EXT_CSD.
pub fn mmc_send_ext_csd(fd: impl AsFd) -> io::Result<[u8; 512]> {
    let mut buf = [0u8; 512];
    let mut cmd = MmcIocCmd {
        write_flag: 0,
        opcode: MMC_SEND_EXT_CSD,
        flags: MMC_RSP_SPI_S1 | MMC_RSP_R1 | MMC_CMD_ADTC,
        blksz: 512,
        blocks: 1,
        data_ptr: buf.as_mut_ptr() as u64,
        ..MmcIocCmd::default()
    };
    mmc_cmd(fd, &mut cmd)?;
    Ok(buf)
}

/// CMD6 SWITCH, WRITE_BYTE of `value` to EXT_CSD[`index`], command set 0, R1b, with
/// boot-core's argument (`boot_core::emmc::switch_argument`): an index >= 192 is never sent.
pub fn mmc_switch_write_byte(fd: impl AsFd, index: u8, value: u8) -> io::Result<()> {
    let arg = boot_core::emmc::switch_argument(index, value).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("EXT_CSD[{index}] is read-only: a CMD6 to it is never sent"),
        )
    })?;
    let mut cmd = MmcIocCmd {
        write_flag: 1,
        opcode: MMC_SWITCH,
        arg,
        flags: MMC_RSP_SPI_S1 | MMC_RSP_SPI_BUSY | MMC_RSP_R1B | MMC_CMD_AC,
        ..MmcIocCmd::default()
    };
    mmc_cmd(fd, &mut cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmc_ioctl_numbers_match_the_kernel_headers() {
        // _IOWR(179, 0, 72 bytes) on the generic ioctl encoding (arm64, x86-64).
        assert_eq!(MMC_IOC_CMD as u64, 0xC048_B300);
        // mmc-utils' flags for CMD8 (R1, adtc) and CMD6 (R1b, ac).
        assert_eq!(MMC_RSP_SPI_S1 | MMC_RSP_R1 | MMC_CMD_ADTC, 0xB5);
        assert_eq!(
            MMC_RSP_SPI_S1 | MMC_RSP_SPI_BUSY | MMC_RSP_R1B | MMC_CMD_AC,
            0x49D
        );
    }

    #[test]
    fn mmc_ioctl_on_a_regular_file_is_an_error_not_a_crash() {
        let f = tempfile::tempfile().unwrap();
        assert!(mmc_send_ext_csd(&f).is_err());
        assert!(mmc_switch_write_byte(&f, 179, 0x48).is_err());
        let e = mmc_switch_write_byte(&f, 192, 0).unwrap_err();
        assert!(e.to_string().contains("never sent"), "{e}");
    }
}
