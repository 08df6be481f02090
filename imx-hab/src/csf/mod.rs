//! Command Sequence File: header, commands and the records they point to
//! (docs/hab4-format.md §4-§5).
//!
//! `D4 | len | ver`: `len` covers the header and the commands only; the SRK table,
//! certificates and signatures follow, located by the CSF-relative offsets in the commands.

pub mod commands;

pub use commands::{
    Authenticate, Block, CheckData, Command, CommandKind, EngineWords, InstallKey, KeyRole, Set,
    WriteData,
};

use crate::codes::{INS_KEY_ABS, PCL_CMS, PCL_SRK, PCL_X509, TAG_CSF};
use crate::records::{CertificateRecord, SignatureRecord, SrkTableRecord};
use crate::{ErrorKind, ParseError, Result, Structure};

/// A record a command points to, decoded.
#[derive(Debug, Clone, Copy)]
pub enum Referenced<'a> {
    /// The SRK table of an Install SRK.
    SrkTable(SrkTableRecord<'a>),
    /// The certificate of an Install CSFK / Install Key.
    Certificate(CertificateRecord<'a>),
    /// The signature of an Authenticate CSF / Authenticate Data.
    Signature(SignatureRecord<'a>),
}

/// A validated CSF, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub struct Csf<'a> {
    bytes: &'a [u8],
    len: usize,
    version: u8,
}

impl<'a> Csf<'a> {
    /// Parses a CSF at the start of `bytes` (which run to the end of the available data):
    /// the header, every command (an unknown command is an error), and every record the
    /// commands point to. Offsets in errors are from the start of the CSF.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let head = bytes.get(..4).ok_or(ParseError::truncated(
            Structure::CsfHeader,
            "header",
            0,
            4,
            bytes.len() as u64,
        ))?;
        if head[0] != TAG_CSF {
            return Err(ParseError::mismatch(
                Structure::CsfHeader,
                "tag",
                0,
                head[0].into(),
                TAG_CSF.into(),
            ));
        }
        let len = u16::from_be_bytes([head[1], head[2]]) as usize;
        if len < 4 + 4 {
            return Err(ParseError::new(
                Structure::CsfHeader,
                "length",
                1,
                ErrorKind::OutOfRange {
                    found: len as u64,
                    min: 8,
                    max: 0xFFFF,
                },
            ));
        }
        if len > bytes.len() {
            return Err(ParseError::truncated(
                Structure::CsfHeader,
                "length",
                1,
                len as u64,
                bytes.len() as u64,
            ));
        }
        if head[3] & 0xF0 != 0x40 {
            return Err(ParseError::new(
                Structure::CsfHeader,
                "version",
                3,
                ErrorKind::OutOfRange {
                    found: head[3].into(),
                    min: 0x40,
                    max: 0x4F,
                },
            ));
        }
        let csf = Csf {
            bytes,
            len,
            version: head[3],
        };
        let mut off = 4;
        while off < len {
            let cmd = commands::parse(bytes, off, len)?;
            off += cmd.bytes.len();
            csf.resolve(&cmd)?;
        }
        Ok(csf)
    }

    /// Whether `bytes` starts with a CSF header tag.
    pub fn has_header(bytes: &[u8]) -> bool {
        bytes.first() == Some(&TAG_CSF)
    }

    /// The header's length field: header plus commands, the bytes the CSF signature covers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a parsed CSF has a header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The header version byte (0x43 = HAB 4.3, 0x45 = 4.5).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Header and commands: what the CSF signature covers.
    pub fn signed_bytes(&self) -> &'a [u8] {
        &self.bytes[..self.len]
    }

    /// The CSF bytes up to the end of the last record any command points to.
    pub fn extent(&self) -> usize {
        self.commands()
            .filter_map(|c| self.referenced(&c))
            .map(|r| {
                let rec = match r {
                    Referenced::SrkTable(t) => t.record,
                    Referenced::Certificate(c) => c.record,
                    Referenced::Signature(s) => s.record,
                };
                rec.offset as usize + rec.len()
            })
            .fold(self.len, usize::max)
    }

    /// The commands in order.
    pub fn commands(&self) -> impl Iterator<Item = Command<'a>> + 'a {
        let (bytes, len) = (self.bytes, self.len);
        let mut off = 4;
        core::iter::from_fn(move || {
            if off >= len {
                return None;
            }
            let c = commands::parse(bytes, off, len).ok()?;
            off += c.bytes.len();
            Some(c)
        })
    }

    /// The record `cmd` points to, if it points to one.
    pub fn referenced(&self, cmd: &Command<'a>) -> Option<Referenced<'a>> {
        self.resolve(cmd).ok().flatten()
    }

    fn resolve(&self, cmd: &Command<'a>) -> Result<Option<Referenced<'a>>> {
        let abs_err = |field| {
            ParseError::invalid(
                Structure::CsfCommand,
                field,
                cmd.offset + 3,
                "uses an absolute address (ABS flag): not supported",
            )
        };
        let shift = |e: ParseError| e;
        match cmd.kind {
            CommandKind::InstallKey(k) => {
                if k.flags & INS_KEY_ABS != 0 {
                    return Err(abs_err("flags"));
                }
                let at = u64::from(k.key_dat);
                match k.protocol {
                    PCL_SRK => {
                        let t = SrkTableRecord::parse(self.bytes, at).map_err(shift)?;
                        if usize::from(k.source) >= t.table.len() {
                            return Err(ParseError::new(
                                Structure::CsfCommand,
                                "src",
                                cmd.offset + 6,
                                ErrorKind::OutOfRange {
                                    found: k.source.into(),
                                    min: 0,
                                    max: t.table.len() as u64 - 1,
                                },
                            ));
                        }
                        Ok(Some(Referenced::SrkTable(t)))
                    }
                    PCL_X509 => Ok(Some(Referenced::Certificate(CertificateRecord::parse(
                        self.bytes, at,
                    )?))),
                    other => Err(ParseError::new(
                        Structure::CsfCommand,
                        "pcl",
                        cmd.offset + 4,
                        ErrorKind::Mismatch {
                            found: other.into(),
                            expected: PCL_X509.into(),
                        },
                    )),
                }
            }
            CommandKind::Authenticate(a) => {
                if a.flags & 0x01 != 0 {
                    return Err(abs_err("flags"));
                }
                if a.protocol != PCL_CMS {
                    return Err(ParseError::new(
                        Structure::CsfCommand,
                        "pcl",
                        cmd.offset + 5,
                        ErrorKind::Mismatch {
                            found: a.protocol.into(),
                            expected: PCL_CMS.into(),
                        },
                    ));
                }
                Ok(Some(Referenced::Signature(SignatureRecord::parse(
                    self.bytes,
                    u64::from(a.aut_start),
                )?)))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(c: &[u8]) -> Vec<u8> {
        let mut v = vec![0xD4, 0, 0, 0x45];
        v.extend_from_slice(c);
        let len = v.len() as u16;
        v[1..3].copy_from_slice(&len.to_be_bytes());
        v
    }

    #[test]
    fn decodes_unlock_set_init_check_nop_write() {
        let v = cmds(&[
            0xB2, 0x00, 0x08, 0x1D, 0, 0, 0, 2, // Unlock CAAM RNG
            0xB1, 0x00, 0x08, 0x03, 0x00, 0x17, 0x1D, 0x00, // Set ENG sha256 CAAM
            0xB4, 0x00, 0x08, 0x21, 0, 0, 0, 1, // Init OCOTP
            0xCF, 0x00, 0x10, 0x14, 0x30, 0x35, 0x04, 0x70, 0x02, 0, 0, 0, 0, 0, 0,
            9, // Check Data
            0xC0, 0x00, 0x04, 0x00, // NOP
            0xCC, 0x00, 0x0C, 0x04, 0, 0, 0, 1, 0, 0, 0, 2, // Write Data
        ]);
        let csf = Csf::parse(&v).unwrap();
        let k: Vec<_> = csf.commands().map(|c| c.kind).collect();
        assert_eq!(k.len(), 6);
        assert!(matches!(k[0], CommandKind::Unlock(w) if w.engine == 0x1D && w.features() == 2));
        assert!(matches!(
            k[1],
            CommandKind::Set(Set::Engine {
                algorithm: 0x17,
                engine: 0x1D,
                engine_config: 0
            })
        ));
        assert!(
            matches!(k[2], CommandKind::Init(w) if w.engine == 0x21 && w.words().collect::<Vec<_>>() == [1])
        );
        assert!(matches!(
            k[3],
            CommandKind::CheckData(CheckData {
                width: 4,
                flags: 2,
                address: 0x3035_0470,
                mask: 0x0200_0000,
                count: Some(9)
            })
        ));
        assert!(matches!(k[4], CommandKind::Nop));
        assert!(
            matches!(k[5], CommandKind::WriteData(w) if w.pairs().collect::<Vec<_>>() == [(1, 2)])
        );
    }

    #[test]
    fn unknown_command_is_an_error_not_skipped() {
        let v = cmds(&[0xC1, 0x00, 0x04, 0x00]);
        let e = Csf::parse(&v).unwrap_err();
        assert_eq!(
            (e.field, e.offset, e.kind),
            ("tag", 4, ErrorKind::UnknownCommand { tag: 0xC1 })
        );
    }

    #[test]
    fn bad_lengths_are_errors() {
        for c in [
            &[0xC0, 0x00, 0x00, 0x00][..],         // zero length
            &[0xC0, 0x00, 0x08, 0x00, 0, 0, 0, 0], // NOP of 8
            &[
                0xCA, 0x00, 0x10, 0x00, 2, 0xC5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ], // 12 + 4
            &[0xBE, 0x00, 0x0C, 0x80, 3, 0x00, 0, 0, 0, 0, 0, 0], // HSH without hash alg
            &[0xC0, 0x00, 0x40, 0x00],             // runs past len
        ] {
            assert!(Csf::parse(&cmds(c)).is_err(), "{c:02x?}");
        }
    }

    #[test]
    fn header_errors_name_the_field() {
        assert_eq!(
            Csf::parse(&[0xD5, 0, 8, 0x45, 0xC0, 0, 4, 0])
                .unwrap_err()
                .field,
            "tag"
        );
        assert_eq!(
            Csf::parse(&[0xD4, 0, 8, 0x35, 0xC0, 0, 4, 0])
                .unwrap_err()
                .field,
            "version"
        );
        assert_eq!(
            Csf::parse(&[0xD4, 0, 9, 0x45, 0xC0, 0, 4, 0])
                .unwrap_err()
                .field,
            "length"
        );
        assert!(Csf::parse(&[0xD4, 0, 8, 0x45, 0xC0, 0, 4, 0]).is_ok());
    }
}
