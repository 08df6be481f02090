//! The inspect report: plain data built from `imx-hab`'s views, serialisable as JSON.
//!
//! Numbers stay numbers in JSON (offsets are from the start of the file unless the field says
//! `csf_offset`, which is from the start of its CSF, as `csf_parser` counts); digests are hex.

use imx_hab::codes;
use imx_hab::csf::{Command, CommandKind, Csf, KeyRole, Referenced, Set};
use imx_hab::fit::Fit;
use imx_hab::image::{FitPart, FlashBin, Image, SignedFit};
use imx_hab::ivt::{BootData, Ivt};
use imx_hab::records::Record;
use imx_hab::srk::{SrkKeyData, SrkTable, fuse_words};
use serde::Serialize;

/// Everything `inspect` says about one file.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Path as given.
    pub file: String,
    /// File size in bytes.
    pub size: u64,
    /// `flash.bin`, `signed FIT` or `bare FIT`.
    pub kind: &'static str,
    /// The SPL part of a flash.bin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spl: Option<SplReport>,
    /// The U-Boot FIT.
    pub fit: FitReport,
}

/// SPL part of a flash.bin.
#[derive(Debug, Serialize)]
pub struct SplReport {
    /// The IVT at offset 0.
    pub ivt: IvtReport,
    /// Boot data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_data: Option<BootDataReport>,
    /// Offset of the SPL CSF slot, if the IVT points to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csf_slot_offset: Option<u64>,
    /// The SPL CSF, if the slot holds one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csf: Option<CsfReport>,
}

/// Boot data fields.
#[derive(Debug, Serialize)]
pub struct BootDataReport {
    /// File offset.
    pub offset: u64,
    /// `start`.
    pub start: u32,
    /// `size`.
    pub size: u32,
    /// `plugin`.
    pub plugin: u32,
}

/// IVT fields.
#[derive(Debug, Serialize)]
pub struct IvtReport {
    /// File offset.
    pub offset: u64,
    /// Header bytes as one LE word (`csf_parser` style, 0x412000D1).
    pub header: u32,
    /// Version byte.
    pub version: u8,
    /// `entry`.
    pub entry: u32,
    /// `reserved1`.
    pub reserved1: u32,
    /// `dcd`.
    pub dcd: u32,
    /// `boot_data`.
    pub boot_data: u32,
    /// `self`.
    #[serde(rename = "self")]
    pub self_addr: u32,
    /// `csf`.
    pub csf: u32,
    /// `reserved2`.
    pub reserved2: u32,
}

/// The FIT and, when signed, its IVT and CSF.
#[derive(Debug, Serialize)]
pub struct FitReport {
    /// File offset of the FIT.
    pub offset: u64,
    /// Whether an IVT and CSF follow it.
    pub signed: bool,
    /// FDT `totalsize`.
    pub totalsize: u64,
    /// Top-level description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Address the blob was signed for (`IVT.self - ivt_offset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_address: Option<u64>,
    /// Images under `/images`.
    pub images: Vec<FitImageReport>,
    /// The default configuration.
    pub configuration: Option<ConfigReport>,
    /// IVT after the FIT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ivt: Option<IvtReport>,
    /// CSF after the IVT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csf: Option<CsfReport>,
}

/// One FIT image.
#[derive(Debug, Serialize)]
pub struct FitImageReport {
    /// Node name.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `type`.
    #[serde(rename = "type")]
    pub image_type: Option<String>,
    /// `arch`.
    pub arch: Option<String>,
    /// `os`.
    pub os: Option<String>,
    /// `compression`.
    pub compression: Option<String>,
    /// `load`.
    pub load: Option<u64>,
    /// `entry`.
    pub entry: Option<u64>,
    /// File offset of the payload.
    pub data_offset: u64,
    /// Payload length.
    pub data_size: u64,
    /// Whether the payload is embedded in the tree.
    pub embedded: bool,
}

/// The default configuration.
#[derive(Debug, Serialize)]
pub struct ConfigReport {
    /// Node name.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `firmware`.
    pub firmware: Option<String>,
    /// `kernel`.
    pub kernel: Option<String>,
    /// `loadables`.
    pub loadables: Vec<String>,
    /// `fdt`.
    pub fdt: Option<String>,
    /// `rollback-index`: the security epoch (absent: 0).
    pub rollback_index: Option<u32>,
}

/// A CSF with its commands and records.
#[derive(Debug, Serialize)]
pub struct CsfReport {
    /// File offset.
    pub offset: u64,
    /// Header tag (0xD4).
    pub tag: u8,
    /// Header length field: header plus commands.
    pub length: usize,
    /// Header version byte.
    pub version: u8,
    /// Bytes from the CSF start to the end of its last record.
    pub extent: usize,
    /// Commands in order.
    pub commands: Vec<CommandReport>,
    /// Records the commands point to, in CSF order.
    pub records: Vec<RecordReport>,
    /// SRK hash of the installed SRK table (hex, as `srktool` writes the fuse file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srk_hash: Option<String>,
    /// The same as eight fuse words (bank 6 words 0-3, bank 7 words 0-3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srk_fuse_words: Option<[u32; 8]>,
}

/// One CSF command; fields that do not apply to the command are omitted.
#[derive(Debug, Default, Serialize)]
pub struct CommandReport {
    /// Offset from the CSF start.
    pub csf_offset: u64,
    /// Tag byte.
    pub tag: u8,
    /// Name, e.g. `Install SRK`, `Authenticate Data`.
    pub name: &'static str,
    /// Length field.
    pub length: usize,
    /// Flags byte (Install Key, Authenticate, Check Data, Write Data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<u8>,
    /// Protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u8>,
    /// Algorithm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<u8>,
    /// Install Key source (SRK index or verifying slot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<u8>,
    /// Install Key target slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<u8>,
    /// Install Key `key_dat` (CSF-relative).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_dat: Option<u32>,
    /// Install Key appended certificate hash (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Authenticate verifying key slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<u8>,
    /// Engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<u8>,
    /// Engine configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_config: Option<u8>,
    /// Authenticate `aut_start` (CSF-relative).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aut_start: Option<u32>,
    /// Authenticate Data blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<BlockReport>>,
    /// Unlock / Init words (the first is the feature mask).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<Vec<u32>>,
    /// Set configuration item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<u8>,
    /// Set MID fields `[bank, row, bit, fuses]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mid: Option<[u8; 4]>,
    /// Check / Write Data access width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u8>,
    /// Check Data address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<u32>,
    /// Check Data mask.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<u32>,
    /// Check Data count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Write Data pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pairs: Option<Vec<(u32, u32)>>,
}

/// One Authenticate Data block.
#[derive(Debug, Serialize)]
pub struct BlockReport {
    /// Absolute start.
    pub start: u32,
    /// Length.
    pub length: u32,
}

/// A record a command points to.
#[derive(Debug, Serialize)]
pub struct RecordReport {
    /// `srk_table`, `certificate` or `signature`.
    pub kind: &'static str,
    /// What it is for: `SRK`, `CSFK`, `IMGK slot 2`, `CSF signature`, `image signature (key 2)`.
    pub role: String,
    /// Offset of the record from the CSF start.
    pub csf_offset: u64,
    /// Offset of the record body from the CSF start (what `csf_parser` prints).
    pub body_csf_offset: u64,
    /// Tag byte.
    pub tag: u8,
    /// Length field (whole record).
    pub length: usize,
    /// Version byte.
    pub version: u8,
    /// SRK table details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srk_table: Option<SrkReport>,
    /// Certificate details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateReport>,
    /// Signature details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureReport>,
}

/// SRK table contents.
#[derive(Debug, Serialize)]
pub struct SrkReport {
    /// Index installed by the Install SRK command.
    pub installed_index: u8,
    /// Keys in table order.
    pub keys: Vec<SrkKeyReport>,
    /// SRK hash (hex).
    pub hash: String,
}

/// One SRK.
#[derive(Debug, Serialize)]
pub struct SrkKeyReport {
    /// Index.
    pub index: usize,
    /// Record length.
    pub length: usize,
    /// `RSA-2048`, `ECDSA P-256 (prime256v1)` or `hash only`.
    pub key: String,
    /// Key size in bits (0 for hash only).
    pub bits: u32,
    /// CA flag.
    pub ca: bool,
    /// Digest the record contributes to the SRK hash (hex).
    pub digest: String,
}

/// Certificate contents.
#[derive(Debug, Serialize)]
pub struct CertificateReport {
    /// DER length.
    pub der_length: usize,
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial (hex).
    pub serial: String,
    /// Public key algorithm.
    pub key: String,
    /// Key size in bits.
    pub key_bits: u32,
    /// basicConstraints cA.
    pub ca: bool,
    /// Algorithm of the issuer's signature.
    pub signature_algorithm: &'static str,
    /// Length of the issuer's signature value.
    pub signature_length: usize,
}

/// CMS signature contents.
#[derive(Debug, Serialize)]
pub struct SignatureReport {
    /// DER length.
    pub der_length: usize,
    /// Issuer of the signer certificate.
    pub signer_issuer: String,
    /// Serial of the signer certificate (hex).
    pub signer_serial: String,
    /// Digest algorithm (`sha256` or the OID).
    pub digest_algorithm: String,
    /// Signature algorithm.
    pub signature_algorithm: &'static str,
    /// Length of the signature value.
    pub signature_length: usize,
    /// Whether the content is detached.
    pub detached: bool,
    /// messageDigest attribute (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_digest: Option<String>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

impl Report {
    /// Builds the report of a decoded image.
    pub fn new(file: &str, size: u64, image: &Image<'_>) -> Self {
        let (spl, fit) = match image {
            Image::FlashBin(fb) => (
                Some(spl_report(fb)),
                fit_part_report(&fb.fit, fb.fit_offset),
            ),
            Image::SignedFit(s) => (None, signed_fit_report(s, 0)),
            Image::BareFit(f) => (None, fit_report(f, 0)),
        };
        Report {
            file: file.to_owned(),
            size,
            kind: image.kind_name(),
            spl,
            fit,
        }
    }
}

fn spl_report(fb: &FlashBin<'_>) -> SplReport {
    let boot_data = fb.boot_data.map(|bd: BootData<'_>| BootDataReport {
        offset: fb.spl_ivt.offset_of(fb.spl_ivt.boot_data()).unwrap_or(0),
        start: bd.start(),
        size: bd.size(),
        plugin: bd.plugin(),
    });
    SplReport {
        ivt: ivt_report(&fb.spl_ivt, 0),
        boot_data,
        csf_slot_offset: fb.spl_csf_offset,
        csf: fb
            .spl_csf
            .as_ref()
            .zip(fb.spl_csf_offset)
            .map(|(c, o)| csf_report(c, o)),
    }
}

fn fit_part_report(part: &FitPart<'_>, offset: u64) -> FitReport {
    match part {
        FitPart::Signed(s) => signed_fit_report(s, offset),
        FitPart::Bare(f) => fit_report(f, offset),
    }
}

fn signed_fit_report(s: &SignedFit<'_>, offset: u64) -> FitReport {
    let mut r = fit_report(&s.fit, offset);
    r.signed = true;
    r.load_address = Some(s.load_address());
    r.ivt = Some(ivt_report(&s.ivt, offset + s.ivt_offset));
    r.csf = Some(csf_report(&s.csf, offset + s.csf_offset));
    r
}

fn fit_report(f: &Fit<'_>, offset: u64) -> FitReport {
    let images = f
        .images()
        .map(|i| FitImageReport {
            name: i.name.to_owned(),
            description: owned(i.description),
            image_type: owned(i.image_type),
            arch: owned(i.arch),
            os: owned(i.os),
            compression: owned(i.compression),
            load: i.load,
            entry: i.entry,
            data_offset: offset + i.data.offset,
            data_size: i.data.len,
            embedded: i.data.embedded,
        })
        .collect();
    // Fit::parse checked the default configuration, so it is present on a parsed FIT.
    let configuration = f.default_config().ok().map(|c| ConfigReport {
        name: c.name.to_owned(),
        description: owned(c.description),
        firmware: owned(c.firmware),
        kernel: owned(c.kernel),
        loadables: c.loadables().map(str::to_owned).collect(),
        fdt: owned(c.fdt),
        rollback_index: c.rollback_index,
    });
    FitReport {
        offset,
        signed: false,
        totalsize: f.totalsize() as u64,
        description: owned(f.description()),
        load_address: None,
        images,
        configuration,
        ivt: None,
        csf: None,
    }
}

fn ivt_report(ivt: &Ivt<'_>, offset: u64) -> IvtReport {
    IvtReport {
        offset,
        header: ivt.header_word(),
        version: ivt.version(),
        entry: ivt.entry(),
        reserved1: ivt.reserved1(),
        dcd: ivt.dcd(),
        boot_data: ivt.boot_data(),
        self_addr: ivt.self_addr(),
        csf: ivt.csf(),
        reserved2: ivt.reserved2(),
    }
}

fn csf_report(csf: &Csf<'_>, offset: u64) -> CsfReport {
    let commands: Vec<_> = csf.commands().map(|c| command_report(&c)).collect();
    let mut records = Vec::new();
    let mut srk_table: Option<SrkTable<'_>> = None;
    for cmd in csf.commands() {
        let Some(r) = csf.referenced(&cmd) else {
            continue;
        };
        records.push(record_report(&cmd, r));
        if let Referenced::SrkTable(t) = r {
            srk_table.get_or_insert(t.table);
        }
    }
    records.sort_by_key(|r| r.csf_offset);
    records.dedup_by_key(|r| r.csf_offset);
    let hash = srk_table.map(|t| t.hash());
    CsfReport {
        offset,
        tag: codes::TAG_CSF,
        length: csf.len(),
        version: csf.version(),
        extent: csf.extent(),
        commands,
        records,
        srk_hash: hash.map(|h| hex(&h)),
        srk_fuse_words: hash.map(|h| fuse_words(&h)),
    }
}

fn command_report(c: &Command<'_>) -> CommandReport {
    let mut r = CommandReport {
        csf_offset: c.offset,
        tag: c.bytes[0],
        name: c.kind.name(),
        length: c.bytes.len(),
        ..Default::default()
    };
    match c.kind {
        CommandKind::InstallKey(k) => {
            r.flags = Some(k.flags);
            r.protocol = Some(k.protocol);
            r.algorithm = Some(k.algorithm);
            r.source = Some(k.source);
            r.target = Some(k.target);
            r.key_dat = Some(k.key_dat);
            r.hash = k.hash.map(hex);
        }
        CommandKind::Authenticate(a) => {
            r.flags = Some(a.flags);
            r.key = Some(a.key);
            r.protocol = Some(a.protocol);
            r.engine = Some(a.engine);
            r.engine_config = Some(a.engine_config);
            r.aut_start = Some(a.aut_start);
            r.blocks = Some(
                a.blocks()
                    .map(|b| BlockReport {
                        start: b.start,
                        length: b.len,
                    })
                    .collect(),
            );
        }
        CommandKind::Unlock(w) | CommandKind::Init(w) => {
            r.engine = Some(w.engine);
            r.words = Some(w.words().collect());
        }
        CommandKind::Set(s) => {
            r.item = Some(c.bytes[3]);
            match s {
                Set::Engine {
                    algorithm,
                    engine,
                    engine_config,
                } => {
                    r.algorithm = Some(algorithm);
                    r.engine = Some(engine);
                    r.engine_config = Some(engine_config);
                }
                Set::Mid {
                    bank,
                    row,
                    bit,
                    fuses,
                } => r.mid = Some([bank, row, bit, fuses]),
            }
        }
        CommandKind::CheckData(d) => {
            r.width = Some(d.width);
            r.flags = Some(d.flags);
            r.address = Some(d.address);
            r.mask = Some(d.mask);
            r.count = d.count;
        }
        CommandKind::WriteData(w) => {
            r.width = Some(w.width);
            r.flags = Some(w.flags);
            r.pairs = Some(w.pairs().collect());
        }
        CommandKind::Nop => {}
    }
    r
}

fn record_base(kind: &'static str, role: String, rec: &Record<'_>) -> RecordReport {
    RecordReport {
        kind,
        role,
        csf_offset: rec.offset,
        body_csf_offset: rec.body_offset(),
        tag: rec.tag,
        length: rec.len(),
        version: rec.version,
        srk_table: None,
        certificate: None,
        signature: None,
    }
}

fn record_report(cmd: &Command<'_>, r: Referenced<'_>) -> RecordReport {
    match r {
        Referenced::SrkTable(t) => {
            let installed_index = match cmd.kind {
                CommandKind::InstallKey(k) => k.source,
                _ => 0,
            };
            let keys = t
                .table
                .keys()
                .map(|k| SrkKeyReport {
                    index: k.index,
                    length: k.bytes.len(),
                    key: match k.data {
                        SrkKeyData::Rsa { .. } => format!("RSA-{}", k.bits()),
                        SrkKeyData::Ec { curve, .. } => {
                            format!("ECDSA P-{} ({})", curve.bits(), curve.name())
                        }
                        SrkKeyData::HashOnly { .. } => "hash only".to_owned(),
                    },
                    bits: k.bits(),
                    ca: k.is_ca(),
                    digest: hex(&k.digest()),
                })
                .collect();
            let mut rep = record_base("srk_table", "SRK table".to_owned(), &t.record);
            rep.srk_table = Some(SrkReport {
                installed_index,
                keys,
                hash: hex(&t.table.hash()),
            });
            rep
        }
        Referenced::Certificate(c) => {
            let role = match cmd.kind {
                CommandKind::InstallKey(k) if k.role() == KeyRole::Csfk => "CSFK".to_owned(),
                CommandKind::InstallKey(k) => format!("IMGK slot {}", k.target),
                _ => "certificate".to_owned(),
            };
            let cert = &c.certificate;
            let mut rep = record_base("certificate", role, &c.record);
            rep.certificate = Some(CertificateReport {
                der_length: cert.der.len(),
                subject: cert.subject.to_string(),
                issuer: cert.issuer.to_string(),
                serial: hex(cert.serial),
                key: cert.public_key.describe().to_string(),
                key_bits: cert.public_key.bits(),
                ca: cert.is_ca,
                signature_algorithm: cert.signature_algorithm.name(),
                signature_length: cert.signature.len(),
            });
            rep
        }
        Referenced::Signature(s) => {
            let role = match cmd.kind {
                CommandKind::Authenticate(a) if a.is_csf() => "CSF signature".to_owned(),
                CommandKind::Authenticate(a) => format!("image signature (key {})", a.key),
                _ => "signature".to_owned(),
            };
            let sig = &s.signature;
            let mut rep = record_base("signature", role, &s.record);
            rep.signature = Some(SignatureReport {
                der_length: sig.der.len(),
                signer_issuer: sig.signer_issuer.to_string(),
                signer_serial: hex(sig.signer_serial),
                digest_algorithm: if sig.digest_is_sha256() {
                    "sha256".to_owned()
                } else {
                    sig.digest_algorithm.to_string()
                },
                signature_algorithm: sig.signature_algorithm.name(),
                signature_length: sig.signature.len(),
                detached: sig.detached,
                message_digest: sig.message_digest.map(hex),
            });
            rep
        }
    }
}
