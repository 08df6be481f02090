//! What each fuzz target runs: one `imx-hab` parser and every accessor of what it returns, with
//! the invariants a successful parse promises asserted. A panic anywhere is a finding.
//!
//! `tests/tests/parsers_never_panic.rs` (package `workspace-tests`) runs the same checks as
//! property tests in every test run; keep the two in step.

use boards::AN12900_LAYOUT;
use imx_hab::cms::CmsSignature;
use imx_hab::codes::{TAG_CRT, TAG_SIG};
use imx_hab::csf::{CommandKind, Csf, Referenced};
use imx_hab::fit::Fit;
use imx_hab::image::{FitPart, Image, SignedFit};
use imx_hab::ivt::{BootData, Ivt};
use imx_hab::records::Record;
use imx_hab::sit::Sit;
use imx_hab::srk::SrkTable;
use imx_hab::x509::Certificate;
use imx_hab::{ErrorKind, ParseError, Structure};

/// An error renders, names a field, and (unless it reports a truncation, which may name where
/// missing bytes should have started) points inside the input.
fn check(e: &ParseError, input_len: usize) {
    assert!(!e.to_string().is_empty() && !e.field.is_empty(), "{e:?}");
    if !matches!(e.kind, ErrorKind::Truncated { .. }) {
        assert!(
            e.offset <= input_len as u64,
            "offset past the input ({input_len:#x} bytes): {e}"
        );
    }
}

fn ok<T>(r: imx_hab::Result<T>, input_len: usize) -> Option<T> {
    r.map_err(|e| check(&e, input_len)).ok()
}

fn le64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
    u64::from_le_bytes(w)
}

/// Target `ivt`.
pub fn ivt(data: &[u8]) {
    let Some(ivt) = ok(Ivt::parse(data), data.len()) else {
        return;
    };
    assert!(Ivt::has_header(data) && ivt.entry() != 0 && ivt.self_addr() != 0);
    assert_eq!((ivt.reserved1(), ivt.reserved2()), (0, 0));
    let _ = (
        ivt.header_word(),
        ivt.version(),
        ivt.dcd(),
        ivt.boot_data(),
        ivt.csf(),
    );
    let _ = (
        ivt.offset_of(ivt.csf()),
        ivt.offset_of(0),
        ivt.offset_of(u32::MAX),
    );
}

/// Target `boot_data`.
pub fn boot_data(data: &[u8]) {
    let Some(bd) = ok(BootData::parse(data), data.len()) else {
        return;
    };
    assert!(bd.size() != 0 && bd.plugin() <= 1);
    let _ = bd.start();
}

/// Target `sit`: 24 bytes of sizes, then the table.
pub fn sit(data: &[u8]) {
    let (sizes, table) = data.split_at(data.len().min(24));
    let (device, primary, copy) = (
        le64(sizes),
        le64(sizes.get(8..).unwrap_or(&[])),
        le64(sizes.get(16..).unwrap_or(&[])),
    );
    let Some(sit) = ok(Sit::parse(table), table.len()) else {
        return;
    };
    let _ = (sit.tag(), sit.unused_words());
    let Some(area) = ok(
        sit.validate(&AN12900_LAYOUT, device, primary, copy),
        table.len(),
    ) else {
        return;
    };
    assert_eq!(area.first_sector, sit.first_sector_number());
    assert!(area.offset >= AN12900_LAYOUT.primary_offset().saturating_add(primary));
    assert!(
        area.offset
            .checked_add(copy)
            .is_some_and(|end| end <= device)
    );
    assert_eq!(area.capacity, device - area.offset);
}

fn certificate_parsed(c: &Certificate<'_>) {
    let _ = (
        c.subject.to_string(),
        c.issuer.to_string(),
        c.subject.common_name(),
        c.issuer.common_name(),
    );
    let _ = (
        c.public_key.bits(),
        c.public_key.describe().to_string(),
        c.signature_algorithm.name(),
        c.is_ca,
    );
    assert!(c.tbs.len() < c.der.len());
}

fn cms_parsed(s: &CmsSignature<'_>) {
    let _ = (
        s.signer_issuer.to_string(),
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
}

fn srk_parsed(t: &SrkTable<'_>) {
    assert!((1..=4).contains(&t.len()));
    let mut covered = 4;
    for (i, k) in t.keys().enumerate() {
        assert_eq!((k.index, k.offset), (i, covered));
        covered += k.bytes.len();
        let _ = (k.digest(), k.bits(), k.is_ca(), k.data);
    }
    assert_eq!(covered, t.bytes().len());
    assert!(t.key(t.len() - 1).is_some() && t.key(t.len()).is_none());
    let _ = t.hash();
}

fn csf_parsed(csf: &Csf<'_>, input_len: usize) {
    assert!(csf.len() >= 8 && csf.len() <= input_len);
    let mut covered = 4;
    for cmd in csf.commands() {
        assert_eq!(cmd.offset, covered as u64);
        covered += cmd.bytes.len();
        let _ = cmd.kind.name();
        let points = match cmd.kind {
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
        let r = csf.referenced(&cmd);
        assert_eq!(r.is_some(), points);
        let record = match r {
            None => continue,
            Some(Referenced::SrkTable(t)) => {
                srk_parsed(&t.table);
                t.record
            }
            Some(Referenced::Certificate(c)) => {
                certificate_parsed(&c.certificate);
                c.record
            }
            Some(Referenced::Signature(s)) => {
                cms_parsed(&s.signature);
                s.record
            }
        };
        assert!(record.offset as usize + record.len() <= input_len);
    }
    assert_eq!(covered, csf.len());
    let extent = csf.extent();
    assert!(csf.len() <= extent && extent <= input_len);
}

/// Target `csf`.
pub fn csf(data: &[u8]) {
    if let Some(csf) = ok(Csf::parse(data), data.len()) {
        csf_parsed(&csf, data.len());
    }
    // A record at an offset the input chooses (its first byte).
    let at = u64::from(data.first().copied().unwrap_or(0));
    for (tag, s) in [
        (TAG_CRT, Structure::SrkTable),
        (TAG_CRT, Structure::Certificate),
        (TAG_SIG, Structure::Signature),
    ] {
        if let Some(r) = ok(Record::parse(data, at, tag, s), data.len()) {
            assert_eq!(r.body().len() + 4, r.len());
        }
    }
}

/// Target `srk_table`.
pub fn srk_table(data: &[u8]) {
    if let Some(t) = ok(SrkTable::parse(data), data.len()) {
        srk_parsed(&t);
    }
}

/// Target `x509`.
pub fn x509(data: &[u8]) {
    if let Some(c) = ok(Certificate::parse(data), data.len()) {
        certificate_parsed(&c);
    }
}

/// Target `cms`.
pub fn cms(data: &[u8]) {
    if let Some(s) = ok(CmsSignature::parse(data), data.len()) {
        cms_parsed(&s);
    }
}

fn fit_parsed(fit: &Fit<'_>, input_len: usize) {
    assert!(fit.totalsize() <= input_len);
    let _ = fit.description();
    for img in fit.images() {
        assert_eq!(fit.data(&img).len() as u64, img.data.len);
        let _ = (
            img.image_type,
            img.os,
            img.arch,
            img.compression,
            img.load,
            img.entry,
            img.description,
        );
    }
    let config = fit
        .default_config()
        .expect("a parsed FIT has a valid default configuration");
    for wanted in config
        .firmware
        .into_iter()
        .chain(config.kernel)
        .chain(config.fdt)
        .chain(config.loadables())
    {
        assert!(fit.image_by_name(wanted).is_some());
    }
}

/// Target `fit`.
pub fn fit(data: &[u8]) {
    if let Some(f) = ok(Fit::parse(data), data.len()) {
        fit_parsed(&f, data.len());
    }
}

fn signed_fit_parsed(s: &SignedFit<'_>) {
    fit_parsed(&s.fit, s.blob.len());
    assert!(s.csf_offset >= s.ivt_offset + 0x20);
    let _ = s.load_address();
    csf_parsed(&s.csf, s.blob.len() - s.csf_offset as usize);
    assert!(s.signed_len() <= s.blob.len() as u64);
}

/// Target `image`.
pub fn image(data: &[u8]) {
    let Some(image) = ok(Image::parse(data, &AN12900_LAYOUT), data.len()) else {
        return;
    };
    let _ = image.kind_name();
    match &image {
        Image::SignedFit(s) => signed_fit_parsed(s),
        Image::BareFit(f) => fit_parsed(f, data.len()),
        Image::FlashBin(f) => {
            let _ = (f.spl_ivt.entry(), f.boot_data.map(|d| d.size()));
            if let (Some(off), Some(csf)) = (f.spl_csf_offset, &f.spl_csf) {
                csf_parsed(csf, data.len() - off as usize);
            }
            match &f.fit {
                FitPart::Signed(s) => signed_fit_parsed(s),
                FitPart::Bare(fit) => fit_parsed(fit, data.len() - f.fit_offset as usize),
            }
        }
    }
}
