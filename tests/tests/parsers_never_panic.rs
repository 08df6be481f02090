//! Robustness of every `imx-hab` parser: arbitrary bytes, generated structures and mutated or
//! truncated HAB4 fixtures must give `Ok` or a well-formed `Err`, never a panic.
//!
//! Each property runs a bounded number of cases (`PROPTEST_CASES` overrides it for a deeper
//! local run). Failures are not persisted to regression files; a shrunk failing input is
//! printed instead and belongs in a named deterministic test.

use std::ops::Range;

use boards::AN12900_LAYOUT;
use imx_hab::cms::CmsSignature;
use imx_hab::csf::{CommandKind, Csf, Referenced};
use imx_hab::fit::Fit;
use imx_hab::image::{FitPart, Image, SignedFit};
use imx_hab::ivt::{BootData, Ivt};
use imx_hab::records::Record;
use imx_hab::sit::Sit;
use imx_hab::srk::{SrkKeyData, SrkTable};
use imx_hab::x509::Certificate;
use imx_hab::{ErrorKind, ParseError, Structure};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// One HAB4 fixture set: the signed blob and its `layout.env`.
struct Fixture {
    name: &'static str,
    signed: &'static [u8],
    layout: &'static str,
    srk_fuse: &'static [u8],
}

const ECC: Fixture = Fixture {
    name: "ecc-p256",
    signed: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/hab4/ecc-p256/signed.bin"
    )),
    layout: include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/hab4/ecc-p256/layout.env"
    )),
    srk_fuse: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/hab4/ecc-p256/srk_fuse.bin"
    )),
};

const RSA: Fixture = Fixture {
    name: "rsa2048",
    signed: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/hab4/rsa2048/signed.bin"
    )),
    layout: include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/hab4/rsa2048/layout.env"
    )),
    srk_fuse: include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/hab4/rsa2048/srk_fuse.bin"
    )),
};

const FIXTURES: [&Fixture; 2] = [&ECC, &RSA];

/// The certificate and signature records of a CSF, as `layout.env` names them.
const CERT_RECORDS: [&str; 2] = ["CSFK_CERT_REC", "IMG_CERT_REC"];
const SIG_RECORDS: [&str; 2] = ["CSF_SIG_REC", "IMG_SIG_REC"];

impl Fixture {
    fn value(&self, key: &str) -> &'static str {
        self.layout
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .unwrap_or_else(|| panic!("{}: layout.env has no {key}", self.name))
    }

    fn hex(s: &str) -> usize {
        usize::from_str_radix(s.trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("not hex: {s}"))
    }

    /// A `KEY=0xNN` value.
    fn number(&self, key: &str) -> usize {
        Self::hex(self.value(key))
    }

    /// A `KEY=offset:length` value as a range of `signed.bin`.
    fn range(&self, key: &str) -> Range<usize> {
        let (off, len) = self.value(key).split_once(':').expect("offset:length");
        let off = Self::hex(off);
        off..off + Self::hex(len)
    }

    fn ivt_offset(&self) -> usize {
        self.number("IVT_OFFSET")
    }

    fn csf_offset(&self) -> usize {
        self.number("CSF_OFFSET")
    }

    /// The CSF: from its offset to the end of the file.
    fn csf(&self) -> &'static [u8] {
        &self.signed[self.csf_offset()..]
    }

    /// Header and commands of the CSF, as offsets into `signed.bin`.
    fn commands(&self) -> Range<usize> {
        self.csf_offset()..self.csf_offset() + self.number("CSF_CMDS_LEN")
    }

    /// A whole record (header included).
    fn record(&self, key: &str) -> &'static [u8] {
        &self.signed[self.range(key)]
    }

    /// The DER body of a certificate or signature record (after its 4-byte header).
    fn der_body(&self, key: &str) -> &'static [u8] {
        &self.record(key)[4..]
    }

    /// Where the FIT's structure nodes after the last payload and its strings block lie.
    fn fit_tail(&self) -> Range<usize> {
        self.range("DATA_FDT_1").end..self.number("FIT_TOTALSIZE")
    }

    /// The regions mutations concentrate on, each with a name for failure messages.
    fn regions(&self) -> [(&'static str, Range<usize>); 4] {
        [
            ("IVT+CSF", self.ivt_offset()..self.signed.len()),
            (
                "IVT+CSF header and commands",
                self.ivt_offset()..self.commands().end,
            ),
            ("FIT header and first nodes", 0..0x200),
            ("FIT last nodes and strings", self.fit_tail()),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Checks shared by every test
// ---------------------------------------------------------------------------------------------

/// An error must render, name a field, and point inside the input. A truncation may point
/// past the end: it names where the missing bytes should have started (an IVT expected at
/// `ALIGN(totalsize, 0x1000)`, a record at a command's `key_dat`).
fn check_error(e: &ParseError, input_len: usize) {
    let text = e.to_string();
    assert!(!text.is_empty(), "empty message for {e:?}");
    assert!(!e.field.is_empty(), "no field named in {e:?}");
    if !matches!(e.kind, ErrorKind::Truncated { .. }) {
        assert!(
            e.offset <= input_len as u64,
            "offset past the input ({input_len:#x} bytes): {text} ({e:?})"
        );
    }
}

/// Passes `r` through after checking its error, if any, against an input of `input_len` bytes.
fn checked<T>(r: Result<T, ParseError>, input_len: usize) -> Result<T, ParseError> {
    if let Err(e) = &r {
        check_error(e, input_len);
    }
    r
}

fn exercise_ivt(b: &[u8]) -> Result<(), ParseError> {
    let ivt = checked(Ivt::parse(b), b.len())?;
    assert!(b.len() >= 0x20 && Ivt::has_header(b));
    let _ = (
        ivt.header_word(),
        ivt.version(),
        ivt.dcd(),
        ivt.boot_data(),
        ivt.csf(),
    );
    assert_ne!(ivt.entry(), 0);
    assert_ne!(ivt.self_addr(), 0);
    assert_eq!((ivt.reserved1(), ivt.reserved2()), (0, 0));
    assert_eq!(ivt.offset_of(ivt.self_addr()), Some(0));
    let _ = (
        ivt.offset_of(0),
        ivt.offset_of(u32::MAX),
        ivt.offset_of(ivt.csf()),
    );
    Ok(())
}

fn exercise_boot_data(b: &[u8]) -> Result<(), ParseError> {
    let bd = checked(BootData::parse(b), b.len())?;
    assert!(bd.size() != 0 && bd.plugin() <= 1);
    let _ = bd.start();
    Ok(())
}

fn exercise_sit(
    b: &[u8],
    device_bytes: u64,
    primary_len: u64,
    copy_len: u64,
) -> Result<(), ParseError> {
    let sit = checked(Sit::parse(b), b.len())?;
    let _ = (sit.tag(), sit.unused_words());
    let area = checked(
        sit.validate(&AN12900_LAYOUT, device_bytes, primary_len, copy_len),
        b.len(),
    )?;
    assert_eq!(area.first_sector, sit.first_sector_number());
    assert!(area.offset >= AN12900_LAYOUT.primary_offset().saturating_add(primary_len));
    assert!(
        area.offset
            .checked_add(copy_len)
            .is_some_and(|end| end <= device_bytes)
    );
    assert_eq!(area.capacity, device_bytes - area.offset);
    Ok(())
}

fn exercise_certificate_parsed(c: &Certificate<'_>) {
    let _ = (
        format!("{}", c.subject),
        format!("{}", c.issuer),
        c.subject.common_name(),
        c.issuer.common_name(),
    );
    let _ = (
        c.public_key.bits(),
        c.public_key.describe().to_string(),
        c.signature_algorithm.name(),
        c.is_ca,
    );
    let _ = (c.serial, c.signature);
    assert!(c.tbs.len() < c.der.len());
}

fn exercise_certificate(b: &[u8]) -> Result<(), ParseError> {
    let c = checked(Certificate::parse(b), b.len())?;
    assert_eq!(c.der, b);
    exercise_certificate_parsed(&c);
    Ok(())
}

fn exercise_cms_parsed(s: &CmsSignature<'_>) {
    let _ = (
        format!("{}", s.signer_issuer),
        s.signer_issuer.common_name(),
        s.digest_is_sha256(),
    );
    let _ = (
        s.detached,
        s.has_certificates,
        s.signer_serial,
        s.message_digest,
        s.signature_algorithm.name(),
    );
    if let Some(attrs) = s.signed_attributes {
        assert!(attrs.len() < s.der.len());
    }
}

fn exercise_cms(b: &[u8]) -> Result<(), ParseError> {
    let s = checked(CmsSignature::parse(b), b.len())?;
    assert_eq!(s.der, b);
    exercise_cms_parsed(&s);
    Ok(())
}

fn exercise_srk_parsed(t: &SrkTable<'_>) {
    assert!((1..=4).contains(&t.len()) && !t.is_empty());
    let mut covered = 4;
    for (i, k) in t.keys().enumerate() {
        assert_eq!((k.index, k.offset), (i, covered));
        covered += k.bytes.len();
        let _ = (k.digest(), k.bits(), k.is_ca(), k.flags);
        match k.data {
            SrkKeyData::Rsa { modulus, exponent } => {
                assert!(!modulus.is_empty() && !exponent.is_empty())
            }
            SrkKeyData::Ec { curve, x, y } => {
                assert!(x.len() == curve.coordinate_len() && y.len() == x.len())
            }
            SrkKeyData::HashOnly { digest } => assert_eq!(digest.len(), 32),
        }
    }
    assert_eq!(covered, t.bytes().len(), "keys do not fill the table");
    assert_eq!(t.keys().count(), t.len());
    assert!(t.key(t.len() - 1).is_some() && t.key(t.len()).is_none());
    let _ = t.hash();
}

fn exercise_srk(b: &[u8]) -> Result<(), ParseError> {
    let t = checked(SrkTable::parse(b), b.len())?;
    assert!(t.bytes().len() <= b.len());
    exercise_srk_parsed(&t);
    Ok(())
}

fn exercise_csf_parsed(csf: &Csf<'_>, input_len: usize) {
    assert!(csf.len() >= 8 && csf.len() <= input_len && !csf.is_empty());
    assert_eq!(csf.signed_bytes().len(), csf.len());
    assert_eq!(csf.version() & 0xF0, 0x40);
    let mut covered = 4;
    for cmd in csf.commands() {
        assert_eq!(cmd.offset, covered as u64, "commands are not contiguous");
        covered += cmd.bytes.len();
        let _ = cmd.kind.name();
        let points_to_record = match cmd.kind {
            CommandKind::InstallKey(k) => {
                let _ = (k.role(), k.hash);
                true
            }
            CommandKind::Authenticate(a) => {
                let _ = (
                    a.is_csf(),
                    a.blocks().fold(0u64, |n, b| n + u64::from(b.start ^ b.len)),
                );
                true
            }
            CommandKind::Unlock(w) | CommandKind::Init(w) => {
                let _ = (w.words().count(), w.features());
                false
            }
            CommandKind::WriteData(w) => {
                let _ = w.pairs().count();
                false
            }
            _ => false,
        };
        let referenced = csf.referenced(&cmd);
        assert_eq!(
            referenced.is_some(),
            points_to_record,
            "{} at {:#x}",
            cmd.kind.name(),
            cmd.offset
        );
        let record = match referenced {
            None => continue,
            Some(Referenced::SrkTable(t)) => {
                exercise_srk_parsed(&t.table);
                t.record
            }
            Some(Referenced::Certificate(c)) => {
                exercise_certificate_parsed(&c.certificate);
                c.record
            }
            Some(Referenced::Signature(s)) => {
                exercise_cms_parsed(&s.signature);
                s.record
            }
        };
        assert!(record.offset as usize + record.len() <= input_len);
        assert_eq!(record.body().len() + 4, record.len());
    }
    assert_eq!(covered, csf.len(), "commands do not fill the header length");
    let extent = csf.extent();
    assert!(
        csf.len() <= extent && extent <= input_len,
        "extent {extent:#x} of {input_len:#x}"
    );
}

fn exercise_csf(b: &[u8]) -> Result<(), ParseError> {
    let csf = checked(Csf::parse(b), b.len())?;
    assert!(Csf::has_header(b));
    exercise_csf_parsed(&csf, b.len());
    Ok(())
}

fn exercise_fit_parsed(fit: &Fit<'_>, input_len: usize) {
    assert!(fit.totalsize() <= input_len);
    let _ = fit.description();
    for img in fit.images() {
        assert_eq!(
            fit.data(&img).len() as u64,
            img.data.len,
            "image {}",
            img.name
        );
        assert!(fit.image_by_name(img.name).is_some());
        let _ = (
            img.description,
            img.image_type,
            img.arch,
            img.os,
            img.compression,
            img.load,
            img.entry,
        );
    }
    let config = fit
        .default_config()
        .expect("a parsed FIT has a valid default configuration");
    let _ = (config.name, config.description);
    for wanted in config
        .firmware
        .into_iter()
        .chain(config.kernel)
        .chain(config.fdt)
        .chain(config.loadables())
    {
        assert!(
            fit.image_by_name(wanted).is_some(),
            "configuration names missing image {wanted}"
        );
    }
}

fn exercise_fit(b: &[u8]) -> Result<(), ParseError> {
    let fit = checked(Fit::parse(b), b.len())?;
    exercise_fit_parsed(&fit, b.len());
    Ok(())
}

fn exercise_signed_fit_parsed(s: &SignedFit<'_>) {
    let len = s.blob.len();
    exercise_fit_parsed(&s.fit, len);
    assert_eq!(s.ivt_offset % 0x1000, 0);
    assert!(s.csf_offset >= s.ivt_offset + 0x20);
    let _ = s.load_address();
    exercise_csf_parsed(&s.csf, len - s.csf_offset as usize);
    assert!(s.signed_len() <= len as u64);
}

fn exercise_signed_fit(b: &[u8]) -> Result<u64, ParseError> {
    let s = checked(SignedFit::parse(b), b.len())?;
    exercise_signed_fit_parsed(&s);
    Ok(s.signed_len())
}

fn exercise_image(b: &[u8]) -> Result<&'static str, ParseError> {
    let image = checked(Image::parse(b, &AN12900_LAYOUT), b.len())?;
    match &image {
        Image::SignedFit(s) => exercise_signed_fit_parsed(s),
        Image::BareFit(f) => exercise_fit_parsed(f, b.len()),
        Image::FlashBin(f) => {
            let _ = (
                f.spl_ivt.entry(),
                f.boot_data.map(|d| d.size()),
                f.spl_csf_offset,
            );
            if let (Some(off), Some(csf)) = (f.spl_csf_offset, &f.spl_csf) {
                exercise_csf_parsed(csf, b.len() - off as usize);
            }
            let fit_bytes = b.len() - f.fit_offset as usize;
            match &f.fit {
                FitPart::Signed(s) => exercise_signed_fit_parsed(s),
                FitPart::Bare(fit) => exercise_fit_parsed(fit, fit_bytes),
            }
        }
    }
    Ok(image.kind_name())
}

/// Every parser of the crate on the same bytes.
fn exercise_all(b: &[u8]) {
    let _ = exercise_ivt(b);
    let _ = exercise_boot_data(b);
    let _ = exercise_sit(b, u64::MAX, 2 << 20, 2 << 20);
    let _ = exercise_csf(b);
    let _ = exercise_srk(b);
    let _ = exercise_certificate(b);
    let _ = exercise_cms(b);
    let _ = exercise_fit(b);
    let _ = exercise_signed_fit(b);
    let _ = exercise_image(b);
}

// ---------------------------------------------------------------------------------------------
// Input generators
// ---------------------------------------------------------------------------------------------

fn config(cases: u32) -> Config {
    let mut c = Config::default(); // reads PROPTEST_* from the environment
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c.failure_persistence = None;
    c
}

/// One byte edit: where (scaled into a region), a value, and how to apply it.
type Edit = (Index, u8, u8);

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((any::<Index>(), any::<u8>(), 0..3u8), 1..=8)
}

/// Applies `edits` inside `region` of `bytes`: XOR with a non-zero byte, overwrite, or
/// overwrite with a boundary value (0, 0xFF, 0x7F, 0x80, 1).
fn apply(bytes: &mut [u8], region: &Range<usize>, edits: &[Edit]) {
    let region = region.start.min(bytes.len())..region.end.min(bytes.len());
    if region.is_empty() {
        return;
    }
    for (at, v, op) in edits {
        let i = region.start + at.index(region.len());
        match op {
            0 => bytes[i] ^= (*v).max(1),
            1 => bytes[i] = *v,
            _ => bytes[i] = [0x00, 0xFF, 0x7F, 0x80, 0x01][usize::from(*v) % 5],
        }
    }
}

/// A region covering any input (`apply` clamps it to the input).
const WHOLE: Range<usize> = 0..usize::MAX;

fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..4096)
}

/// Integers that sit on the edges the parsers compute with, and arbitrary ones.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(u64::MAX),
        Just(u64::MAX - 3),
        Just(u64::from(u32::MAX)),
        Just(0x8000_0000u64),
        0..0x1000u64,
        any::<u64>(),
    ]
}

fn edgy_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(u32::MAX),
        Just(u32::MAX - 3),
        Just(0x8000_0000u32),
        0..0x1000u32,
        any::<u32>()
    ]
}

/// Overwrites the start of `b` with a valid-looking header so that the parser gets past its
/// first check: `prime` selects which one (0 = leave the bytes alone).
fn primed(mut b: Vec<u8>, prime: u8) -> Vec<u8> {
    let n = b.len();
    let len16 = |len: usize| (len.min(0xFFFF) as u16).to_be_bytes();
    let header: Vec<u8> = match prime {
        1 => vec![0xD1, 0x00, 0x20, 0x41, 0, 0, 0, 0x44, 0, 0, 0, 0],
        2 => [&[0xD4][..], &len16(n), &[0x45]].concat(),
        3 => [&[0xD7][..], &len16(n), &[0x40, 0xE1]].concat(),
        4 => [&[0x30, 0x82][..], &len16(n.saturating_sub(4))].concat(),
        5 => [&[0xD0, 0x0D, 0xFE, 0xED][..], &(n as u32).to_be_bytes()].concat(),
        _ => Vec::new(),
    };
    let k = header.len().min(n);
    b[..k].copy_from_slice(&header[..k]);
    b
}

// --- Generated FITs: a minimal FDT writer and a strategy for trees with FIT-shaped nodes ---

/// A property value in a generated tree.
#[derive(Debug, Clone)]
enum Value {
    Str(&'static str),
    U32(u32),
    U64(u64),
    Bytes(Vec<u8>),
}

impl Value {
    fn encode(&self) -> Vec<u8> {
        match self {
            Value::Str(s) => [s.as_bytes(), &[0]].concat(),
            Value::U32(v) => v.to_be_bytes().to_vec(),
            Value::U64(v) => v.to_be_bytes().to_vec(),
            Value::Bytes(b) => b.clone(),
        }
    }
}

type Props = Vec<(&'static str, Value)>;

/// A tree with `/images` and `/configurations` as a FIT has, with arbitrary contents.
#[derive(Debug, Clone)]
struct GenFit {
    images: Vec<(&'static str, Props)>,
    configs: Vec<(&'static str, Props)>,
    default: Option<Value>,
    tail: Vec<u8>,
}

/// Writes a version-17 FDT blob with an empty memory reservation map.
#[derive(Default)]
struct FdtWriter {
    structure: Vec<u8>,
    strings: Vec<u8>,
}

impl FdtWriter {
    fn token(&mut self, t: u32) {
        self.structure.extend_from_slice(&t.to_be_bytes());
    }
    fn pad(&mut self) {
        while !self.structure.len().is_multiple_of(4) {
            self.structure.push(0);
        }
    }
    fn begin(&mut self, name: &str) {
        self.token(1);
        self.structure.extend_from_slice(name.as_bytes());
        self.structure.push(0);
        self.pad();
    }
    fn end(&mut self) {
        self.token(2);
    }
    fn prop(&mut self, name: &str, value: &[u8]) {
        let key = [name.as_bytes(), &[0]].concat();
        let nameoff = match self
            .strings
            .windows(key.len())
            .position(|w| w == key.as_slice())
        {
            Some(o) => o,
            None => {
                self.strings.extend_from_slice(&key);
                self.strings.len() - key.len()
            }
        };
        self.token(3);
        self.token(value.len() as u32);
        self.token(nameoff as u32);
        self.structure.extend_from_slice(value);
        self.pad();
    }
    fn node(&mut self, name: &str, props: &Props) {
        self.begin(name);
        for (k, v) in props {
            self.prop(k, &v.encode());
        }
        self.end();
    }
    fn finish(mut self) -> Vec<u8> {
        self.token(9);
        let off_rsv = 40u32;
        let off_struct = off_rsv + 16;
        let off_strings = off_struct + self.structure.len() as u32;
        let total = off_strings + self.strings.len() as u32;
        let mut blob = Vec::with_capacity(total as usize);
        for w in [
            0xD00D_FEED,
            total,
            off_struct,
            off_strings,
            off_rsv,
            17,
            16,
            0,
            self.strings.len() as u32,
            self.structure.len() as u32,
        ] {
            blob.extend_from_slice(&u32::to_be_bytes(w));
        }
        blob.extend_from_slice(&[0; 16]);
        blob.extend_from_slice(&self.structure);
        blob.extend_from_slice(&self.strings);
        blob
    }
}

impl GenFit {
    fn blob(&self) -> Vec<u8> {
        let mut w = FdtWriter::default();
        w.begin("");
        w.prop("description", b"generated\0");
        w.begin("images");
        for (name, props) in &self.images {
            w.node(name, props);
        }
        w.end();
        w.begin("configurations");
        if let Some(d) = &self.default {
            w.prop("default", &d.encode());
        }
        for (name, props) in &self.configs {
            w.node(name, props);
        }
        w.end();
        w.end();
        let mut blob = w.finish();
        blob.extend_from_slice(&self.tail);
        blob
    }
}

const IMAGE_NAMES: [&str; 4] = ["uboot", "atf", "fdt-1", "kernel"];
const CONFIG_NAMES: [&str; 2] = ["conf-1", "conf-2"];

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(&["uboot", "atf", "fdt-1", "conf-1", "firmware", ""][..])
            .prop_map(Value::Str),
        edgy_u32().prop_map(Value::U32),
        edgy_u64().prop_map(Value::U64),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
        Just(Value::Bytes(b"atf\0uboot\0".to_vec())),
        Just(Value::Bytes(b"atf\0\xff\0".to_vec())),
    ]
}

/// A value of the type a FIT property of that name has, or (one time in five) any value.
fn typed_value(name: &'static str) -> BoxedStrategy<Value> {
    let image_name = || prop::sample::select(&IMAGE_NAMES[..]).prop_map(Value::Str);
    let typed = match name {
        "load" | "entry" | "data-size" | "data-offset" | "data-position" => prop_oneof![
            edgy_u32().prop_map(Value::U32),
            edgy_u64().prop_map(Value::U64)
        ]
        .boxed(),
        "data" => prop::collection::vec(any::<u8>(), 0..32)
            .prop_map(Value::Bytes)
            .boxed(),
        "firmware" | "kernel" | "fdt" => image_name().boxed(),
        "loadables" => prop::collection::vec(prop::sample::select(&IMAGE_NAMES[..]), 1..3)
            .prop_map(|names| {
                Value::Bytes(names.iter().flat_map(|n| n.bytes().chain([0])).collect())
            })
            .boxed(),
        _ => prop::sample::select(&["firmware", "u-boot", "arm64", "none", "flat_dt", ""][..])
            .prop_map(Value::Str)
            .boxed(),
    };
    prop_oneof![4 => typed, 1 => value()].boxed()
}

fn props(names: &'static [&'static str]) -> impl Strategy<Value = Props> {
    prop::collection::vec(
        prop::sample::select(names).prop_flat_map(|n| (Just(n), typed_value(n))),
        0..6,
    )
}

/// The payload properties of an image: embedded `data`, external data (`data-size` and
/// `data-offset` and/or `data-position`, one or two cells, mostly small, sometimes near the
/// integer limits), or nothing.
fn payload() -> impl Strategy<Value = Props> {
    let cell = || {
        prop_oneof![
            3 => (0..0x140u32).prop_map(Value::U32),
            1 => edgy_u32().prop_map(Value::U32),
            1 => edgy_u64().prop_map(Value::U64),
        ]
    };
    let external = (
        cell(),
        prop::option::weighted(0.8, cell()),
        prop::option::weighted(0.3, cell()),
    )
        .prop_map(|(size, offset, position)| {
            [
                Some(("data-size", size)),
                offset.map(|v| ("data-offset", v)),
                position.map(|v| ("data-position", v)),
            ]
            .into_iter()
            .flatten()
            .collect()
        });
    prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..32)
            .prop_map(|d| vec![("data", Value::Bytes(d))]),
        6 => external,
        1 => Just(Vec::new()),
    ]
}

fn gen_image() -> impl Strategy<Value = (&'static str, Props)> {
    const IMAGE_PROPS: &[&str] = &[
        "data",
        "data-size",
        "data-offset",
        "data-position",
        "load",
        "entry",
        "type",
        "os",
        "arch",
        "compression",
        "description",
    ];
    (
        prop::sample::select(&IMAGE_NAMES[..]),
        payload(),
        prop::collection::vec(
            prop::sample::select(IMAGE_PROPS).prop_flat_map(|n| (Just(n), typed_value(n))),
            0..4,
        ),
    )
        .prop_map(|(name, payload, rest)| (name, payload.into_iter().chain(rest).collect()))
}

fn gen_fit() -> impl Strategy<Value = GenFit> {
    const CONFIG_PROPS: &[&str] = &["firmware", "kernel", "fdt", "loadables", "description"];
    // Mostly "conf-1", the name the default mostly names.
    let config_name = prop_oneof![
        3 => Just(CONFIG_NAMES[0]),
        1 => prop::sample::select(&CONFIG_NAMES[..]),
    ];
    (
        prop::collection::vec(gen_image(), 1..4),
        prop::collection::vec((config_name, props(CONFIG_PROPS)), 1..3),
        prop_oneof![
            6 => Just(Some(Value::Str(CONFIG_NAMES[0]))),
            1 => Just(Some(Value::Str(CONFIG_NAMES[1]))),
            1 => Just(None),
            1 => value().prop_map(Some),
        ],
        prop::collection::vec(any::<u8>(), 0..256),
    )
        .prop_map(|(images, configs, default, tail)| GenFit {
            images,
            configs,
            default,
            tail,
        })
}

// --- Generated CSFs: random command sequences in front of a fixture's records ---

/// A command in a generated CSF: tag, declared length, parameter byte, body bytes, and, for
/// commands that point to a record, which record (an index into the fixture's records, or an
/// arbitrary offset).
#[derive(Debug, Clone)]
struct GenCommand {
    tag: u8,
    len: u16,
    par: u8,
    body: Vec<u8>,
    target: Result<usize, u32>,
}

/// A length that is valid for a command tag (Install Key with and without a SHA-256 hash,
/// Authenticate with 0-3 blocks, …).
fn valid_len(tag: u8) -> BoxedStrategy<u16> {
    let lens: &'static [u16] = match tag {
        0xBE => &[12, 12 + 32],
        0xCA => &[12, 20, 28, 36],
        0xB2 => &[8, 12, 16],
        0xB4 => &[4, 8, 12],
        0xB1 => &[8],
        0xCF => &[12, 16],
        0xCC => &[12, 20],
        _ => &[4],
    };
    prop::sample::select(lens).boxed()
}

fn gen_command() -> impl Strategy<Value = GenCommand> {
    let tags = prop_oneof![
        6 => prop::sample::select(&[0xBE, 0xCA, 0xB2, 0xB4, 0xB1, 0xCF, 0xCC, 0xC0][..]),
        1 => any::<u8>(),
    ];
    let par = prop_oneof![
        prop::sample::select(&[0x00, 0x02, 0x03, 0x01, 0x80, 0x82, 0x1D][..]),
        any::<u8>()
    ];
    let target = prop_oneof![3 => (0..5usize).prop_map(Ok), 1 => any::<u32>().prop_map(Err)];
    // Body bytes: Install Key protocol / algorithm and Authenticate protocol come out right
    // often enough from these values.
    let body_byte = prop_oneof![
        3 => prop::sample::select(&[0x00, 0x03, 0x09, 0x17, 0xC5, 0x01, 0x02][..]),
        1 => any::<u8>(),
    ];
    (tags, par, prop::collection::vec(body_byte, 0..80), target)
        .prop_flat_map(|(tag, par, body, target)| {
            let len = prop_oneof![4 => valid_len(tag), 1 => 0..80u16];
            (Just(tag), len, Just(par), Just(body), Just(target))
        })
        .prop_map(|(tag, len, par, body, target)| GenCommand {
            tag,
            len,
            par,
            body,
            target,
        })
}

/// Builds header ‖ commands ‖ the fixture's SRK table, certificate and signature records,
/// pointing each Install Key / Authenticate command at its chosen record.
fn gen_csf(fx: &Fixture, version: u8, cmds: &[GenCommand]) -> Vec<u8> {
    let csf_start = fx.csf_offset();
    let records_start = fx.commands().end;
    let keys = [
        "SRK_TABLE_REC",
        CERT_RECORDS[0],
        SIG_RECORDS[0],
        CERT_RECORDS[1],
        SIG_RECORDS[1],
    ];
    let mut out = vec![0xD4, 0, 0, version];
    for c in cmds {
        let start = out.len();
        out.extend_from_slice(&[c.tag, (c.len >> 8) as u8, c.len as u8, c.par]);
        let body_len = usize::from(c.len).saturating_sub(4);
        out.extend((0..body_len).map(|i| c.body.get(i).copied().unwrap_or(0)));
        if matches!(c.tag, 0xBE | 0xCA) && out.len() >= start + 12 {
            if c.tag == 0xBE && matches!(c.target, Ok(0)) {
                out[start + 4] = 0x03; // protocol SRK
            }
            if c.tag == 0xCA {
                out[start + 5] = 0xC5; // protocol CMS
            }
            // Patched below, once the command length is known.
            out[start + 8..start + 12].copy_from_slice(&[0xFF; 4]);
        }
    }
    let cmds_len = out.len();
    let shift = cmds_len as i64 - (records_start - csf_start) as i64;
    // Second pass: point each record-bearing command at its record in the copied tail.
    let mut at = 4;
    for c in cmds {
        let start = at;
        at += usize::from(c.len).max(4);
        if matches!(c.tag, 0xBE | 0xCA) && at.min(cmds_len) >= start + 12 {
            let target = match c.target {
                Ok(i) => (fx.range(keys[i]).start as i64 - csf_start as i64 + shift) as u32,
                Err(raw) => raw,
            };
            out[start + 8..start + 12].copy_from_slice(&target.to_be_bytes());
        }
    }
    let declared = cmds_len.min(0xFFFF) as u16;
    out[1..3].copy_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(&fx.signed[records_start..]);
    out
}

// ---------------------------------------------------------------------------------------------
// Deterministic tests on the unmodified fixtures and their truncations
// ---------------------------------------------------------------------------------------------

/// The unmodified fixtures parse with every parser that applies to them.
#[test]
fn unmodified_fixtures_parse_with_every_parser() {
    for fx in FIXTURES {
        let signed = fx.signed;
        assert_eq!(exercise_image(signed).unwrap(), "signed FIT", "{}", fx.name);
        let s = SignedFit::parse(signed).unwrap();
        assert_eq!(
            (s.ivt_offset as usize, s.csf_offset as usize),
            (fx.ivt_offset(), fx.csf_offset()),
            "{}",
            fx.name
        );
        exercise_signed_fit(signed).unwrap();
        exercise_fit(signed).unwrap();
        exercise_ivt(&signed[fx.ivt_offset()..]).unwrap();
        exercise_csf(fx.csf()).unwrap();
        exercise_srk(fx.record("SRK_TABLE_REC")).unwrap();
        assert_eq!(
            &SrkTable::parse(fx.record("SRK_TABLE_REC")).unwrap().hash()[..],
            fx.srk_fuse,
            "{}",
            fx.name
        );
        for key in CERT_RECORDS {
            exercise_certificate(fx.der_body(key))
                .unwrap_or_else(|e| panic!("{} {key}: {e}", fx.name));
        }
        for key in SIG_RECORDS {
            exercise_cms(fx.der_body(key)).unwrap_or_else(|e| panic!("{} {key}: {e}", fx.name));
        }
    }
}

/// Cutting a signed FIT anywhere from its IVT on is an error until the CSF's last record is
/// complete, and parses from there on (only zero padding follows).
#[test]
fn signed_fit_truncated_in_ivt_or_csf_is_rejected_until_the_last_record_ends() {
    for fx in FIXTURES {
        let full = fx.signed;
        let signed_len = exercise_signed_fit(full).unwrap() as usize;
        let last_record_end = fx.range("IMG_SIG_REC").end;
        assert_eq!(signed_len, last_record_end, "{}", fx.name);
        for len in fx.ivt_offset()..=full.len() {
            let r = exercise_signed_fit(&full[..len]);
            if len < signed_len {
                let e = r
                    .err()
                    .unwrap_or_else(|| panic!("{}: truncated at {len:#x} parsed", fx.name));
                assert!(
                    e.offset >= fx.ivt_offset() as u64,
                    "{}: cut at {len:#x} reported before the IVT: {e}",
                    fx.name
                );
            } else {
                assert_eq!(
                    r.unwrap_or_else(|e| panic!("{}: cut at {len:#x}: {e}", fx.name)) as usize,
                    signed_len
                );
            }
            let _ = exercise_image(&full[..len]);
        }
    }
}

/// Cutting the CSF slice short of its extent is an error; from the extent on it parses.
#[test]
fn csf_truncated_before_its_extent_is_rejected() {
    for fx in FIXTURES {
        let csf = fx.csf();
        let extent = Csf::parse(csf).unwrap().extent();
        for len in 0..=csf.len() {
            assert_eq!(
                exercise_csf(&csf[..len]).is_ok(),
                len >= extent,
                "{}: CSF cut at {len:#x}",
                fx.name
            );
        }
    }
}

/// Every proper prefix of an SRK table, certificate or signature record body is rejected, and
/// so is a DER body with a trailing byte (DER bodies must fill their input exactly).
#[test]
fn truncated_srk_tables_certificates_and_signatures_are_rejected() {
    for fx in FIXTURES {
        let table = fx.record("SRK_TABLE_REC");
        for len in 0..table.len() {
            assert!(
                exercise_srk(&table[..len]).is_err(),
                "{}: SRK table cut at {len:#x}",
                fx.name
            );
        }
        for key in CERT_RECORDS.into_iter().chain(SIG_RECORDS) {
            let der = fx.der_body(key);
            let parse = |b: &[u8]| {
                if key.contains("CERT") {
                    exercise_certificate(b)
                } else {
                    exercise_cms(b)
                }
            };
            for len in 0..der.len() {
                assert!(
                    parse(&der[..len]).is_err(),
                    "{} {key} cut at {len:#x}",
                    fx.name
                );
            }
            assert!(
                parse(&[der, &[0]].concat()).is_err(),
                "{} {key} with a trailing byte",
                fx.name
            );
        }
    }
}

/// A FIT whose external `data-offset` is near `u64::MAX` is rejected: the payload position
/// `ALIGN(totalsize, 4) + data-offset` must not overflow. Regression: found by
/// `generated_fit_never_panics` as "attempt to add with overflow" in `fit.rs` (a debug-build
/// panic; release builds wrapped and placed the payload inside the tree).
#[test]
fn fit_with_data_offset_near_u64_max_is_an_error_not_an_overflow() {
    // The shrunk input of `generated_fit_never_panics`: /images/uboot { data-size = <0>;
    // data-offset = /bits/ 64 <0xffffffffffffffff>; }, no configuration needed.
    let fit = GenFit {
        images: vec![(
            "uboot",
            vec![
                ("data-size", Value::U32(0)),
                ("data-offset", Value::U64(u64::MAX)),
            ],
        )],
        configs: Vec::new(),
        default: None,
        tail: Vec::new(),
    };
    let blob = fit.blob();
    let r = std::panic::catch_unwind(|| exercise_fit(&blob).map(|_| ()));
    match r {
        Ok(r) => assert!(r.is_err(), "FIT with data-offset 0xffffffffffffffff parsed"),
        Err(_) => panic!("Fit::parse panicked on {}", hex(&blob)),
    }
}

/// An SRK table or key record whose length field is below its own header is malformed, not
/// truncated: reporting "needs 0x1 bytes, only 0xe4 remain" contradicts itself. Regression:
/// found by `mutated_srk_table_never_panics` (key record length 1 in the ecc-p256 table).
#[test]
fn srk_length_below_the_header_is_not_reported_as_a_truncation() {
    for fx in FIXTURES {
        let original = fx.record("SRK_TABLE_REC");
        // Record 0's length (bytes 5..7), then the table's own length (bytes 1..3).
        for (at, field) in [(5, "key record length"), (1, "table length")] {
            for short in 0..4u16 {
                let mut b = original.to_vec();
                b[at..at + 2].copy_from_slice(&short.to_be_bytes());
                let e = SrkTable::parse(&b).unwrap_err();
                if let ErrorKind::Truncated { needed, available } = e.kind {
                    assert!(
                        needed > available,
                        "{}: {field} {short}: {e} (input {} bytes: {})",
                        fx.name,
                        b.len(),
                        hex(&b[..8])
                    );
                }
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A flash.bin around a fixture: SPL IVT (boot data, CSF = a copy of the fixture's CSF) at 0,
/// the signed FIT at the layout's FIT offset.
fn flash_bin(fx: &Fixture) -> Vec<u8> {
    const SPL_SELF: u32 = 0x007E_0FC0;
    const SPL_CSF_AT: usize = 0x1000;
    let fit_at = AN12900_LAYOUT.fit_offset as usize;
    let mut f = vec![0u8; fit_at];
    let ivt = [
        0x41_2000D1u32,
        SPL_SELF + 0x40,
        0,
        0,
        SPL_SELF + 0x20,
        SPL_SELF,
        SPL_SELF + SPL_CSF_AT as u32,
        0,
    ];
    for (i, w) in ivt.iter().enumerate() {
        f[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    f[0x20..0x2C].copy_from_slice(
        &[
            SPL_SELF.to_le_bytes(),
            (fit_at as u32).to_le_bytes(),
            [0; 4],
        ]
        .concat(),
    );
    let csf = fx.csf();
    f[SPL_CSF_AT..SPL_CSF_AT + csf.len()].copy_from_slice(csf);
    f.extend_from_slice(fx.signed);
    f
}

/// The synthetic flash.bin built around each fixture parses as a flash.bin with a signed FIT.
#[test]
fn flash_bin_around_a_fixture_parses() {
    for fx in FIXTURES {
        let f = flash_bin(fx);
        assert_eq!(exercise_image(&f).unwrap(), "flash.bin", "{}", fx.name);
        let Ok(Image::FlashBin(fb)) = Image::parse(&f, &AN12900_LAYOUT) else {
            unreachable!()
        };
        assert!(
            fb.spl_csf.is_some() && fb.boot_data.is_some() && matches!(fb.fit, FitPart::Signed(_))
        );
    }
}

/// The generated CSF with the fixture's own commands reproduces the fixture CSF and parses.
#[test]
fn csf_generator_round_trips_the_fixture_layout() {
    for fx in FIXTURES {
        let built = gen_csf(fx, fx.csf()[3], &[]);
        assert_eq!(built[4..], fx.signed[fx.commands().end..], "{}", fx.name);
        assert!(
            Csf::parse(&built).is_err(),
            "{}: a CSF without commands has length 4",
            fx.name
        );
    }
}

/// `Record::parse` at every offset of each fixture CSF, for every record tag, never panics and
/// finds exactly the records the layout names.
#[test]
fn record_parse_at_every_offset_of_the_fixture_csfs() {
    for fx in FIXTURES {
        let csf = fx.csf();
        let base = fx.csf_offset();
        for off in 0..=csf.len() as u64 + 8 {
            for (tag, s) in [
                (0xD7, Structure::Certificate),
                (0xD7, Structure::SrkTable),
                (0xD8, Structure::Signature),
            ] {
                if let Ok(r) = checked(Record::parse(csf, off, tag, s), csf.len()) {
                    assert_eq!(r.bytes, &csf[off as usize..off as usize + r.len()]);
                }
            }
        }
        for key in [
            "SRK_TABLE_REC",
            CERT_RECORDS[0],
            SIG_RECORDS[0],
            CERT_RECORDS[1],
            SIG_RECORDS[1],
        ] {
            let range = fx.range(key);
            let tag = if key.contains("SIG") { 0xD8 } else { 0xD7 };
            let r = Record::parse(
                csf,
                (range.start - base) as u64,
                tag,
                Structure::Certificate,
            )
            .unwrap();
            assert_eq!(r.len(), range.len(), "{} {key}", fx.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes, some with a valid-looking header in front, never panic any parser.
    #[test]
    fn arbitrary_bytes_never_panic_any_parser(b in arbitrary_bytes(), prime in 0..6u8) {
        exercise_all(&primed(b, prime));
    }

    /// `Ivt::parse` on arbitrary bytes with a valid header: Ok exactly when the words agree.
    #[test]
    fn ivt_with_valid_header_and_arbitrary_words_never_panics(
        version in 0x3Fu8..=0x44, words in prop::collection::vec(edgy_u32(), 0..8),
    ) {
        let mut b = vec![0xD1, 0x00, 0x20, version];
        b.extend(words.iter().flat_map(|w| w.to_le_bytes()));
        // entry (word 0) and self (word 4) non-zero, the reserved words 1 and 6 zero.
        let ok = b.len() == 32
            && (0x40..=0x43).contains(&version)
            && words[0] != 0
            && words[1] == 0
            && words[4] != 0
            && words[6] == 0;
        prop_assert_eq!(exercise_ivt(&b).is_ok(), ok);
        let _ = exercise_boot_data(&b[4..]);
    }

    /// `Sit::parse` and `Sit::validate` with arbitrary table words and device, primary and copy
    /// sizes never panic, and an accepted table places the copy inside the device.
    #[test]
    fn sit_validate_never_panics_on_arbitrary_sizes(
        words in prop::collection::vec(edgy_u32(), 0..6),
        tag_ok in any::<bool>(),
        device_bytes in edgy_u64(), primary_len in edgy_u64(), copy_len in edgy_u64(),
    ) {
        let mut b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        if tag_ok && b.len() >= 12 {
            b[8..12].copy_from_slice(&imx_hab::sit::SIT_TAG.to_le_bytes());
        }
        let _ = exercise_sit(&b, device_bytes, primary_len, copy_len);
    }

    /// `Record::parse` with an arbitrary offset, tag and structure never panics.
    #[test]
    fn record_parse_never_panics_on_arbitrary_offsets(
        b in prop::collection::vec(any::<u8>(), 0..64),
        offset in edgy_u64(),
        tag in any::<u8>(),
        which in 0..4usize,
    ) {
        const STRUCTURES: [Structure; 4] =
            [Structure::SrkTable, Structure::Certificate, Structure::Signature, Structure::Ivt];
        let s = STRUCTURES[which];
        if let Ok(r) = Record::parse(&b, offset, tag, s) {
            prop_assert_eq!(r.tag, tag);
            prop_assert!(r.len() > 4 && r.body_offset() == offset + 4 && r.version & 0xF0 == 0x40);
        }
    }

    /// The fixture signed FIT with 1-8 bytes edited in the IVT, the CSF, the FIT header or the
    /// FIT's last nodes never panics `Image::parse` (nor the other parsers on the same bytes).
    #[test]
    fn mutated_signed_fit_never_panics(fx in 0..2usize, region in 0..4usize, edits in edits()) {
        let fx = FIXTURES[fx];
        let mut b = fx.signed.to_vec();
        let (_name, range) = fx.regions()[region].clone();
        apply(&mut b, &range, &edits);
        let r = exercise_image(&b);
        let _ = exercise_signed_fit(&b);
        if b == fx.signed {
            prop_assert!(r.is_ok());
        }
    }

    /// The fixture signed FIT, edited in the IVT+CSF region and cut at a random length in it,
    /// never panics.
    #[test]
    fn mutated_and_truncated_signed_fit_never_panics(
        fx in 0..2usize,
        cut in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>(), 0..3u8), 0..=4),
    ) {
        let fx = FIXTURES[fx];
        let mut b = fx.signed.to_vec();
        apply(&mut b, &(fx.ivt_offset()..usize::MAX), &edits);
        let len = fx.ivt_offset() - 0x100 + cut.index(b.len() - fx.ivt_offset() + 0x101);
        b.truncate(len);
        let _ = exercise_image(&b);
        let _ = exercise_signed_fit(&b);
    }

    /// The fixture signed FIT cut at any length never panics, and is an error when cut short
    /// of the FIT or of the CSF's last record.
    #[test]
    fn truncated_signed_fit_never_panics(fx in 0..2usize, cut in any::<Index>()) {
        let fx = FIXTURES[fx];
        let len = cut.index(fx.signed.len() + 1);
        let b = &fx.signed[..len];
        let _ = exercise_image(b);
        let r = exercise_signed_fit(b);
        prop_assert_eq!(r.is_ok(), len >= fx.range("IMG_SIG_REC").end);
    }

    /// The fixture CSF (from the CSF offset) with 1-8 bytes edited never panics `Csf::parse`;
    /// half the cases edit only the header and commands.
    #[test]
    fn mutated_csf_never_panics(fx in 0..2usize, commands_only in any::<bool>(), edits in edits()) {
        let fx = FIXTURES[fx];
        let mut b = fx.csf().to_vec();
        let range = if commands_only { 0..fx.commands().len() } else { 0..b.len() };
        apply(&mut b, &range, &edits);
        let r = exercise_csf(&b);
        if b == fx.csf() {
            prop_assert!(r.is_ok());
        }
    }

    /// A CSF of random commands in front of a fixture's records never panics `Csf::parse`.
    #[test]
    fn generated_csf_commands_never_panic(
        fx in 0..2usize,
        version in prop_oneof![Just(0x43u8), Just(0x45u8), any::<u8>()],
        cmds in prop::collection::vec(gen_command(), 0..8),
    ) {
        let fx = FIXTURES[fx];
        let b = gen_csf(fx, version, &cmds);
        let _ = exercise_csf(&b);
    }

    /// The fixture SRK table record with 1-8 bytes edited (or cut) never panics
    /// `SrkTable::parse`, `keys()` or `hash()`.
    #[test]
    fn mutated_srk_table_never_panics(
        fx in 0..2usize,
        edits in edits(),
        cut in any::<Index>(),
        do_cut in any::<bool>(),
    ) {
        let fx = FIXTURES[fx];
        let mut b = fx.record("SRK_TABLE_REC").to_vec();
        apply(&mut b, &WHOLE, &edits);
        if do_cut {
            b.truncate(cut.index(b.len() + 1));
        }
        let r = exercise_srk(&b);
        if b == fx.record("SRK_TABLE_REC") {
            prop_assert!(r.is_ok());
        }
    }

    /// The fixture certificate DER bodies with 1-8 bytes edited never panic
    /// `Certificate::parse` (nor `CmsSignature::parse`), and the subject still formats.
    #[test]
    fn mutated_certificate_never_panics(fx in 0..2usize, which in 0..2usize, edits in edits()) {
        let fx = FIXTURES[fx];
        let original = fx.der_body(CERT_RECORDS[which]);
        let mut b = original.to_vec();
        apply(&mut b, &WHOLE, &edits);
        let r = exercise_certificate(&b);
        let _ = exercise_cms(&b);
        if b == original {
            prop_assert!(r.is_ok());
        }
    }

    /// The fixture CMS signature DER bodies with 1-8 bytes edited never panic
    /// `CmsSignature::parse` (nor `Certificate::parse`).
    #[test]
    fn mutated_cms_signature_never_panics(fx in 0..2usize, which in 0..2usize, edits in edits()) {
        let fx = FIXTURES[fx];
        let original = fx.der_body(SIG_RECORDS[which]);
        let mut b = original.to_vec();
        apply(&mut b, &WHOLE, &edits);
        let r = exercise_cms(&b);
        let _ = exercise_certificate(&b);
        if b == original {
            prop_assert!(r.is_ok());
        }
    }

    /// Generated FIT trees (arbitrary image and configuration properties, external data
    /// offsets and positions near the integer limits) never panic `Fit::parse` or `Image::parse`.
    #[test]
    fn generated_fit_never_panics(fit in gen_fit()) {
        let blob = fit.blob();
        let _ = exercise_fit(&blob);
        let _ = exercise_image(&blob);
    }

    /// A flash.bin around a fixture, with 1-8 bytes edited in the SPL IVT, boot data and SPL
    /// CSF or in the FIT's IVT and CSF, never panics `Image::parse`.
    #[test]
    fn mutated_flash_bin_never_panics(fx in 0..2usize, spl in any::<bool>(), edits in edits()) {
        let fx = FIXTURES[fx];
        let mut b = flash_bin(fx);
        let range = if spl {
            0..0x1000 + fx.csf().len()
        } else {
            AN12900_LAYOUT.fit_offset as usize + fx.ivt_offset()..b.len()
        };
        apply(&mut b, &range, &edits);
        let _ = exercise_image(&b);
    }
}
