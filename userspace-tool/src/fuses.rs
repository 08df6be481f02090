//! Where the fuse values come from: a `--srk-hash` file (the part is then taken as closed), a
//! `--fuses` simulated fuse block (a 64-byte file, or physical memory such as `/dev/mem` with
//! the block at the board's fuse address), or the OCOTP nvmem device.
//!
//! OCOTP nvmem layout (imx8m-facts.md §11, Linux `drivers/nvmem/imx-ocotp.c`): byte offset =
//! (bank × 4 + word) × 4, so SEC_CONFIG (bank 1 word 3) is at 0x1C and the SRK hash (bank 6
//! words 0-3, bank 7 words 0-3) at 0x60..0x80, each word little-endian: the bytes there are the
//! hash bytes in `srktool` order.

use std::path::{Path, PathBuf};

use boards::{Board, FuseSource};
use boot_core::rollback;
use imx_hab::hab::Fuses;

/// Default OCOTP nvmem device of an i.MX 8M running Linux.
pub const OCOTP_NVMEM: &str = "/sys/bus/nvmem/devices/imx-ocotp0/nvmem";
/// nvmem offset of SEC_CONFIG (bank 1 word 3).
const SEC_CONFIG_OFFSET: usize = 0x1C;
/// nvmem offset of SRK_HASH[0] (bank 6 word 0).
const SRK_HASH_OFFSET: usize = 0x60;
/// nvmem offset of SRK_REVOKE (bank 9 word 3, bits 3:0; imx8m-facts.md §6, inferred).
const SRK_REVOKE_OFFSET: usize = 0x9C;

/// Fuse values and where they came from.
#[derive(Debug)]
pub struct FuseValues {
    /// The values.
    pub fuses: Fuses,
    /// Human-readable source.
    pub source: String,
    /// Whether the rollback fuses were read (not from an SRK hash file alone).
    pub rollback_known: bool,
    /// Where the rollback fuses can be burned (`ubootctl commit`).
    pub store: Option<Store>,
}

/// Where `commit` burns the rollback fuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// The OCOTP nvmem device.
    Ocotp(PathBuf),
    /// A 64-byte simulated fuse block file.
    BlockFile(PathBuf),
    /// The simulated block in physical memory at this address.
    Memory(PathBuf, u64),
}

/// Why fuse values could not be had.
#[derive(Debug)]
pub enum FuseError {
    /// The `--srk-hash` file is unreadable or not 32 bytes (a usage error).
    HashFile(String),
    /// The OCOTP device is missing or unreadable.
    Ocotp(String),
    /// The SRK fuses read as all zero: nothing to authenticate against.
    NotProgrammed(String),
}

/// Reads the 32-byte SRK hash file `srktool` writes.
pub fn from_hash_file(path: &Path) -> Result<FuseValues, FuseError> {
    let bytes = crate::image_file::read_regular(path, 33, "an SRK hash file")
        .map_err(|e| FuseError::HashFile(e.to_string()))?;
    let hash: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        FuseError::HashFile(format!(
            "{} is {} bytes; an SRK hash file (srktool -f 1) is exactly 32 bytes",
            path.display(),
            bytes.len()
        ))
    })?;
    if hash == [0; 32] {
        return Err(FuseError::NotProgrammed(format!(
            "{} is all zero: an unprogrammed SRK hash, against which no image can be \
             authenticated on a closed part (for an open part, give its fuses with --fuses or \
             --ocotp)",
            path.display()
        )));
    }
    // Only the hash is known: take the part as closed, so that nothing the ROM of a closed
    // part would refuse is accepted.
    Ok(FuseValues {
        fuses: Fuses {
            sec_config: Fuses::SEC_CONFIG_CLOSED,
            ..Fuses::open_with(hash)
        },
        source: format!("SRK hash file {} (part taken as closed)", path.display()),
        rollback_known: false,
        store: None,
    })
}

/// Reads a 64-byte simulated fuse block (the qemu-imx8mp contract, `boards::FuseSource`): a
/// file, or physical memory (a character device) with the block at `board`'s fuse address.
pub fn from_fuse_block(path: &Path, board: &Board) -> Result<FuseValues, FuseError> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.file_type().is_char_device()
    {
        use std::os::unix::fs::MetadataExt;
        let FuseSource::SimulatedBlock { addr } = board.fuses else {
            return Err(FuseError::HashFile(format!(
                "--fuses {}: board {} has no simulated fuse block in memory (its fuses are \
                 OCOTP: use --ocotp)",
                path.display(),
                board.name
            )));
        };
        let dev = m.rdev();
        if (rustix::fs::major(dev), rustix::fs::minor(dev)) != (1, 1) {
            return Err(FuseError::HashFile(format!(
                "--fuses {}: a character device that is not physical memory (only /dev/mem, \
                 1:1, holds the simulated fuse block)",
                path.display()
            )));
        }
        let mut block = [0u8; 64];
        crate::cell_source::read_phys(path, addr, &mut block, "the fuse block").map_err(|e| {
            FuseError::HashFile(format!(
                "--fuses {}: cannot read the fuse block at {addr:#x}: {e}",
                path.display()
            ))
        })?;
        return block_values(
            &block,
            format!("fuse block at {addr:#x} in {}", path.display()),
            Store::Memory(path.to_owned(), addr),
        );
    }
    let bytes = crate::image_file::read_regular(path, 65, "a fuse block")
        .map_err(|e| FuseError::HashFile(e.to_string()))?;
    let block: &[u8; 64] = bytes.as_slice().try_into().map_err(|_| {
        FuseError::HashFile(format!(
            "{} is {} bytes; a simulated fuse block is exactly 64 bytes (SRK hash, SEC_CONFIG, \
             revocation mask, reserved)",
            path.display(),
            bytes.len()
        ))
    })?;
    block_values(
        block,
        format!("fuse block {}", path.display()),
        Store::BlockFile(path.to_owned()),
    )
}

fn block_values(block: &[u8; 64], source: String, store: Store) -> Result<FuseValues, FuseError> {
    let fuses = Fuses::from_simulated_block(block);
    // Unprogrammed SRK fuses only matter on a closed part: an open one boots unsigned images.
    if fuses.srk_hash == [0; 32] && fuses.is_closed() {
        return Err(FuseError::NotProgrammed(format!(
            "the SRK hash in the {source} is all zero: no image can be authenticated on this part"
        )));
    }
    Ok(FuseValues {
        fuses,
        source,
        rollback_known: true,
        store: Some(store),
    })
}

/// Reads SEC_CONFIG and the SRK hash from an OCOTP nvmem device (or a file laid out like one).
pub fn from_ocotp(path: &Path) -> Result<FuseValues, FuseError> {
    let unavailable = |why: String| {
        FuseError::Ocotp(format!(
            "cannot read the SRK fuses from {}: {why}. This needs an i.MX 8M running Linux with the imx-ocotp \
             nvmem driver (and root); elsewhere pass --srk-hash FILE",
            path.display()
        ))
    };
    let buf = crate::image_file::read_regular(path, 0x100, "the OCOTP nvmem device").map_err(
        |e| match e {
            crate::exit::Failure::Io { error, .. } => unavailable(error.to_string()),
            other => unavailable(other.to_string()),
        },
    )?;
    if buf.len() < SRK_HASH_OFFSET + 32 {
        return Err(unavailable(format!(
            "only {} bytes readable, the SRK hash ends at 0x80",
            buf.len()
        )));
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&buf[SRK_HASH_OFFSET..SRK_HASH_OFFSET + 32]);
    let word = |at: usize| {
        buf.get(at..at + 4)
            .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    };
    let sec_config = word(SEC_CONFIG_OFFSET);
    // Unprogrammed SRK fuses only matter on a closed part: an open one boots unsigned images.
    if hash == [0; 32] && sec_config & Fuses::SEC_CONFIG_CLOSED != 0 {
        return Err(FuseError::NotProgrammed(format!(
            "the SRK hash fuses in {} are not programmed (all zero): no image can be authenticated on this part",
            path.display()
        )));
    }
    if buf.len() < SRK_REVOKE_OFFSET + 4 {
        return Err(unavailable(format!(
            "only {} bytes readable, SRK_REVOKE ends at {:#x}",
            buf.len(),
            SRK_REVOKE_OFFSET + 4
        )));
    }
    if buf.len() < rollback::OCOTP_NVMEM_OFFSET + 8 {
        return Err(unavailable(format!(
            "only {} bytes readable, the rollback fuses (GP1) end at {:#x}",
            buf.len(),
            rollback::OCOTP_NVMEM_OFFSET + 8
        )));
    }
    Ok(FuseValues {
        fuses: Fuses {
            srk_hash: hash,
            sec_config,
            srk_revoke_mask: word(SRK_REVOKE_OFFSET) & 0xF,
            rollback: rollback::RollbackFuses::from_words(
                word(rollback::OCOTP_NVMEM_OFFSET),
                word(rollback::OCOTP_NVMEM_OFFSET + 4),
            )
            .0,
        },
        source: format!("OCOTP {}", path.display()),
        rollback_known: true,
        store: Some(Store::Ocotp(path.to_owned())),
    })
}

/// The fuse source: the hash file if given, else the fuse block if given, else the OCOTP
/// device.
pub fn load(
    srk_hash: Option<&PathBuf>,
    fuse_block: Option<&PathBuf>,
    ocotp: &Path,
    board: &Board,
) -> Result<FuseValues, FuseError> {
    match (srk_hash, fuse_block) {
        (Some(p), _) => from_hash_file(p),
        (None, Some(p)) => from_fuse_block(p, board),
        (None, None) => from_ocotp(ocotp),
    }
}
