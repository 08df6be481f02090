//! HAB4 CSF commands (docs/hab4-format.md §4; HAB4 API RM): one type per command, each
//! decoded from its bytes with its length rule checked. An unknown tag is an error.

use crate::codes::{self, *};
use crate::{ErrorKind, ParseError, Result, Structure};

/// One decoded command with its position.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    /// Offset of the command from the start of the CSF.
    pub offset: u64,
    /// The command's bytes (`len` of them).
    pub bytes: &'a [u8],
    /// What it says.
    pub kind: CommandKind<'a>,
}

/// The commands `cst` 3.3.1 can emit, plus Write Data (known, so never skipped silently).
#[derive(Debug, Clone, Copy)]
pub enum CommandKind<'a> {
    /// `BE`: Install SRK / CSFK / image key.
    InstallKey(InstallKey<'a>),
    /// `CA`: Authenticate CSF (no blocks) or Authenticate Data.
    Authenticate(Authenticate<'a>),
    /// `B2`: Unlock engine features.
    Unlock(EngineWords<'a>),
    /// `B4`: Init engine features.
    Init(EngineWords<'a>),
    /// `B1`: Set a configuration item.
    Set(Set),
    /// `CF`: Check Data.
    CheckData(CheckData),
    /// `CC`: Write Data (never valid in a CSF that U-Boot passes to the ROM).
    WriteData(WriteData<'a>),
    /// `C0`: NOP.
    Nop,
}

impl CommandKind<'_> {
    /// Name of the command, distinguishing the roles of Install Key and Authenticate.
    pub fn name(&self) -> &'static str {
        match self {
            CommandKind::InstallKey(k) => match k.role() {
                KeyRole::Srk => "Install SRK",
                KeyRole::Csfk => "Install CSFK",
                KeyRole::ImageKey => "Install Key",
            },
            CommandKind::Authenticate(a) if a.is_csf() => "Authenticate CSF",
            CommandKind::Authenticate(_) => "Authenticate Data",
            CommandKind::Unlock(_) => "Unlock",
            CommandKind::Init(_) => "Init",
            CommandKind::Set(_) => "Set",
            CommandKind::CheckData(_) => "Check Data",
            CommandKind::WriteData(_) => "Write Data",
            CommandKind::Nop => "NOP",
        }
    }
}

/// What an Install Key command installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// The SRK table (protocol SRK): selects SRK `src` into slot 0.
    Srk,
    /// The CSF key (flag CSF): a certificate verified by the SRK into slot 1.
    Csfk,
    /// An image key: a certificate verified by slot `src` into slot `tgt`.
    ImageKey,
}

/// Install Key (`BE`), 12 bytes plus a digest when the HSH flag is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallKey<'a> {
    /// Flags (`codes::INS_KEY_*`).
    pub flags: u8,
    /// Protocol of the key data (SRK table or X.509).
    pub protocol: u8,
    /// Hash algorithm of an appended certificate hash.
    pub algorithm: u8,
    /// Source: SRK index for the SRK, verifying key slot otherwise.
    pub source: u8,
    /// Target key slot.
    pub target: u8,
    /// CSF-relative offset (or absolute address with ABS) of the key record.
    pub key_dat: u32,
    /// The certificate hash appended when HSH is set.
    pub hash: Option<&'a [u8]>,
}

impl InstallKey<'_> {
    /// What the command installs.
    pub fn role(&self) -> KeyRole {
        if self.protocol == PCL_SRK {
            KeyRole::Srk
        } else if self.flags & INS_KEY_CSF != 0 {
            KeyRole::Csfk
        } else {
            KeyRole::ImageKey
        }
    }
}

/// Authenticate Data (`CA`), 12 + 8·n bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticate<'a> {
    /// Flags (0x01: absolute `aut_start`).
    pub flags: u8,
    /// Key slot that verifies the signature.
    pub key: u8,
    /// Signature protocol (CMS).
    pub protocol: u8,
    /// Engine.
    pub engine: u8,
    /// Engine configuration.
    pub engine_config: u8,
    /// CSF-relative offset of the signature record.
    pub aut_start: u32,
    blocks: &'a [u8],
}

/// One signed block of an Authenticate Data command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Absolute start address.
    pub start: u32,
    /// Length in bytes.
    pub len: u32,
}

impl<'a> Authenticate<'a> {
    /// Whether this authenticates the CSF itself (no blocks: the signature covers the CSF).
    pub fn is_csf(&self) -> bool {
        self.blocks.is_empty()
    }
    /// The signed blocks in command order.
    pub fn blocks(&self) -> impl ExactSizeIterator<Item = Block> + 'a {
        self.blocks.chunks_exact(8).map(|c| Block {
            start: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            len: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
        })
    }
}

/// Unlock (`B2`) or Init (`B4`): an engine and a list of big-endian words (feature masks,
/// and for some engines a UID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineWords<'a> {
    /// Engine code.
    pub engine: u8,
    words: &'a [u8],
}

impl<'a> EngineWords<'a> {
    /// The words after the header.
    pub fn words(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.words
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
    /// The first word (the feature mask), 0 when there is none.
    pub fn features(&self) -> u32 {
        self.words().next().unwrap_or(0)
    }
}

/// Set (`B1`), 8 bytes: a configuration item and its 4 value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    /// Item ENG (0x03): preferred engine for an algorithm.
    Engine {
        /// Algorithm.
        algorithm: u8,
        /// Engine.
        engine: u8,
        /// Engine configuration.
        engine_config: u8,
    },
    /// Item MID (0x01): manufacturing-ID fuse location.
    Mid {
        /// Fuse bank.
        bank: u8,
        /// Fuse row.
        row: u8,
        /// First bit.
        bit: u8,
        /// Number of fuses.
        fuses: u8,
    },
}

/// Check Data (`CF`), 12 or 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckData {
    /// Access width in bytes (1, 2 or 4).
    pub width: u8,
    /// Flags: 0x02 SET (bits must be set, else clear), 0x04 ANY (any bit, else all).
    pub flags: u8,
    /// Address polled.
    pub address: u32,
    /// Mask of bits checked.
    pub mask: u32,
    /// Poll count, if given.
    pub count: Option<u32>,
}

/// Write Data (`CC`), 4 + 8·n bytes of {address, value or mask}.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteData<'a> {
    /// Access width in bytes.
    pub width: u8,
    /// Flags: 0x01 MSK, 0x02 SET.
    pub flags: u8,
    pairs: &'a [u8],
}

impl<'a> WriteData<'a> {
    /// The (address, value) pairs.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (u32, u32)> + 'a {
        self.pairs.chunks_exact(8).map(|c| {
            (
                u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses the command at `offset` in `csf`; `end` is the CSF header length (commands stop there).
pub(crate) fn parse(csf: &[u8], offset: usize, end: usize) -> Result<Command<'_>> {
    let off = offset as u64;
    let head = csf
        .get(offset..offset + 4)
        .filter(|_| offset + 4 <= end)
        .ok_or(ParseError::truncated(
            Structure::CsfCommand,
            "header",
            off,
            4,
            end.saturating_sub(offset) as u64,
        ))?;
    let (tag, par) = (head[0], head[3]);
    let len = u16::from_be_bytes([head[1], head[2]]) as usize;
    if codes::command_name(tag).is_none() {
        return Err(ParseError::new(
            Structure::CsfCommand,
            "tag",
            off,
            ErrorKind::UnknownCommand { tag },
        ));
    }
    if len < 4 {
        return Err(ParseError::new(
            Structure::CsfCommand,
            "length",
            off + 1,
            ErrorKind::OutOfRange {
                found: len as u64,
                min: 4,
                max: 0xFFFF,
            },
        ));
    }
    let b = csf
        .get(offset..offset + len)
        .filter(|_| offset + len <= end)
        .ok_or(ParseError::truncated(
            Structure::CsfCommand,
            "length",
            off + 1,
            len as u64,
            end.saturating_sub(offset) as u64,
        ))?;
    let bad_len =
        |rule: &'static str| ParseError::invalid(Structure::CsfCommand, "length", off + 1, rule);
    let kind = match tag {
        CMD_INS_KEY => {
            if len < 12 {
                return Err(bad_len("of Install Key is below 12 bytes"));
            }
            let hash = if par & INS_KEY_HSH != 0 {
                let want = codes::digest_len(b[5]).ok_or(ParseError::invalid(
                    Structure::CsfCommand,
                    "alg",
                    off + 5,
                    "is not a hash algorithm, but the HSH flag is set",
                ))?;
                if len != 12 + want {
                    return Err(bad_len(
                        "of Install Key does not match 12 bytes plus the certificate hash",
                    ));
                }
                Some(&b[12..])
            } else {
                if len != 12 {
                    return Err(bad_len(
                        "of Install Key without the HSH flag must be 12 bytes",
                    ));
                }
                None
            };
            CommandKind::InstallKey(InstallKey {
                flags: par,
                protocol: b[4],
                algorithm: b[5],
                source: b[6],
                target: b[7],
                key_dat: be32(b, 8),
                hash,
            })
        }
        CMD_AUT_DAT => {
            if len < 12 || !(len - 12).is_multiple_of(8) {
                return Err(bad_len("of Authenticate Data must be 12 + 8 per block"));
            }
            CommandKind::Authenticate(Authenticate {
                flags: par,
                key: b[4],
                protocol: b[5],
                engine: b[6],
                engine_config: b[7],
                aut_start: be32(b, 8),
                blocks: &b[12..],
            })
        }
        CMD_UNLK | CMD_INIT => {
            if !len.is_multiple_of(4) || (tag == CMD_UNLK && len < 8) {
                return Err(bad_len(
                    "of Unlock/Init must be a multiple of 4 (Unlock: at least 8)",
                ));
            }
            let w = EngineWords {
                engine: par,
                words: &b[4..],
            };
            if tag == CMD_UNLK {
                CommandKind::Unlock(w)
            } else {
                CommandKind::Init(w)
            }
        }
        CMD_SET => {
            if len != 8 {
                return Err(bad_len("of Set must be 8 bytes"));
            }
            CommandKind::Set(match par {
                SET_ITM_ENG => Set::Engine {
                    algorithm: b[5],
                    engine: b[6],
                    engine_config: b[7],
                },
                SET_ITM_MID => Set::Mid {
                    bank: b[4],
                    row: b[5],
                    bit: b[6],
                    fuses: b[7],
                },
                other => {
                    return Err(ParseError::new(
                        Structure::CsfCommand,
                        "item",
                        off + 3,
                        ErrorKind::Mismatch {
                            found: other.into(),
                            expected: SET_ITM_ENG.into(),
                        },
                    ));
                }
            })
        }
        CMD_CHK_DAT => {
            if len != 12 && len != 16 {
                return Err(bad_len("of Check Data must be 12 or 16 bytes"));
            }
            CommandKind::CheckData(CheckData {
                width: par & 0x07,
                flags: par >> 3,
                address: be32(b, 4),
                mask: be32(b, 8),
                count: (len == 16).then(|| be32(b, 12)),
            })
        }
        CMD_WRT_DAT => {
            if len < 12 || !(len - 4).is_multiple_of(8) {
                return Err(bad_len("of Write Data must be 4 + 8 per pair"));
            }
            CommandKind::WriteData(WriteData {
                width: par & 0x07,
                flags: par >> 3,
                pairs: &b[4..],
            })
        }
        _ => {
            if len != 4 {
                return Err(bad_len("of NOP must be 4 bytes"));
            }
            CommandKind::Nop
        }
    };
    Ok(Command {
        offset: off,
        bytes: b,
        kind,
    })
}
