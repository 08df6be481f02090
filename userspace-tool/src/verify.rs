//! `ubootctl verify`: decide "authentic or not" exactly as the shim will, with the software
//! HAB4 verifier, for a signed FIT or a flash.bin (its FIT and, when signed, its SPL).

use std::path::Path;

use boards::Board;
use imx_hab::hab::codes::{context_name, reason_name, status_name};
use imx_hab::hab::software::{Report, VerifyError, verify, verify_spl};
use imx_hab::image::{FitPart, Image};
use serde::Serialize;

use crate::exit::Failure;
use crate::fuses::FuseValues;
use crate::output::{out, outln};

/// The verdict on one signed part of the image.
#[derive(Debug, Serialize)]
pub struct PartVerdict {
    /// `FIT` or `SPL`.
    pub part: &'static str,
    /// File offset of the part.
    pub offset: u64,
    /// Load address it was verified at.
    pub load_address: Option<u64>,
    /// Whether it is authentic.
    pub accepted: bool,
    /// Stable name of the failed check (`image-signature`, `srk-hash`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<&'static str>,
    /// Why it was rejected, as a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The HAB event the ROM would log: status, reason, context.
    pub hab: HabEvent,
    /// Installed SRK index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srk_index: Option<u8>,
    /// SRK key type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srk_key: Option<String>,
    /// CSFK certificate subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csfk: Option<String>,
    /// Image key certificate subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_key: Option<String>,
    /// Authenticated blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<usize>,
    /// Bytes they cover.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_bytes: Option<u64>,
}

/// HAB-style status triple.
#[derive(Debug, Serialize)]
pub struct HabEvent {
    /// Status name.
    pub status: &'static str,
    /// Reason name.
    pub reason: &'static str,
    /// Context name.
    pub context: &'static str,
}

/// The whole verify result.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Path as given.
    pub file: String,
    /// Image kind.
    pub kind: &'static str,
    /// Where the fuse values came from.
    pub fuses: String,
    /// SRK hash used (hex).
    pub srk_hash: String,
    /// Whether every part is authentic.
    pub accepted: bool,
    /// One verdict per signed part.
    pub parts: Vec<PartVerdict>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn verdict(
    part: &'static str,
    offset: u64,
    load: Option<u64>,
    r: Result<Report<'_>, VerifyError>,
) -> PartVerdict {
    let name = |n: Option<&'static str>| n.unwrap_or("unknown");
    match r {
        Ok(rep) => PartVerdict {
            part,
            offset,
            load_address: Some(rep.load_address),
            accepted: true,
            check: None,
            reason: None,
            hab: HabEvent {
                status: name(status_name(rep.status)),
                reason: "HAB_RSN_ANY",
                context: "HAB_CTX_ANY",
            },
            srk_index: Some(rep.srk_index),
            srk_key: Some(rep.srk_key.to_string()),
            csfk: rep.csfk.map(|c| c.subject.to_string()),
            image_key: rep.image_key.map(|c| c.subject.to_string()),
            blocks: Some(rep.blocks),
            signed_bytes: Some(rep.signed_bytes),
        },
        Err(e) => {
            let ev = e.event();
            let hab = HabEvent {
                status: name(status_name(ev.status)),
                reason: name(reason_name(ev.reason)),
                context: name(context_name(ev.context)),
            };
            rejected(part, offset, load, e.check(), e.to_string(), hab)
        }
    }
}

/// A rejected part: the failed check, why, and the HAB event the ROM would log.
fn rejected(
    part: &'static str,
    offset: u64,
    load_address: Option<u64>,
    check: &'static str,
    reason: String,
    hab: HabEvent,
) -> PartVerdict {
    PartVerdict {
        part,
        offset,
        load_address,
        accepted: false,
        check: Some(check),
        reason: Some(reason),
        hab,
        srk_index: None,
        srk_key: None,
        csfk: None,
        image_key: None,
        blocks: None,
        signed_bytes: None,
    }
}

/// A signed FIT at `offset` of `bytes`: verified at the address its IVT was signed for, which
/// must lie in the board's FIT window (the shim refuses anything else).
fn fit_verdict(
    fit: &[u8],
    offset: u64,
    load: u64,
    board: &Board,
    fuses: &FuseValues,
) -> PartVerdict {
    if !board
        .memory
        .fit_window
        .contains_range(load, fit.len() as u64)
    {
        let w = board.memory.fit_window;
        let reason = format!(
            "signed for load address {load:#x}, outside {}'s FIT window {:#x}..{:#x}",
            board.name,
            w.start,
            w.end()
        );
        let hab = HabEvent {
            status: "HAB_FAILURE",
            reason: "HAB_INV_ADDRESS",
            context: "HAB_CTX_TARGET",
        };
        return rejected("FIT", offset, Some(load), "load-address", reason, hab);
    }
    verdict("FIT", offset, Some(load), verify(fit, load, &fuses.fuses))
}

/// Runs `verify` and prints the result.
pub fn run(path: &Path, board: &Board, fuses: &FuseValues, json: bool) -> Result<bool, Failure> {
    let bytes = std::fs::read(path).map_err(|e| Failure::io("read", path, e))?;
    let image = Image::parse(&bytes, &board.media).map_err(|error| Failure::Invalid {
        path: path.to_owned(),
        error,
    })?;
    let mut parts = Vec::new();
    match &image {
        Image::SignedFit(s) => parts.push(fit_verdict(&bytes, 0, s.load_address(), board, fuses)),
        Image::FlashBin(fb) => {
            if fb.spl_csf.is_some() {
                parts.push(verdict(
                    "SPL",
                    0,
                    Some(fb.spl_ivt.self_addr().into()),
                    verify_spl(&bytes, &board.media, &fuses.fuses),
                ));
            }
            let fit_bytes = &bytes[fb.fit_offset as usize..];
            match &fb.fit {
                FitPart::Signed(s) => parts.push(fit_verdict(
                    fit_bytes,
                    fb.fit_offset,
                    s.load_address(),
                    board,
                    fuses,
                )),
                FitPart::Bare(_) => parts.push(unsigned("FIT", fb.fit_offset)),
            }
        }
        Image::BareFit(_) => parts.push(unsigned("FIT", 0)),
    }
    let accepted = parts.iter().all(|p| p.accepted);
    let report = VerifyReport {
        file: path.display().to_string(),
        kind: image.kind_name(),
        fuses: fuses.source.clone(),
        srk_hash: hex(&fuses.fuses.srk_hash),
        accepted,
        parts,
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).expect("plain data serialises")
        );
    } else {
        out!("{}", render(&report));
    }
    Ok(accepted)
}

fn unsigned(part: &'static str, offset: u64) -> PartVerdict {
    let hab = HabEvent {
        status: "HAB_FAILURE",
        reason: "HAB_INV_IVT",
        context: "HAB_CTX_AUTHENTICATE",
    };
    let reason = "not signed: no IVT and CSF follow the FIT".to_owned();
    rejected(part, offset, None, "not-signed", reason, hab)
}

fn render(r: &VerifyReport) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {}, fuses from {} (SRK hash {})",
        r.file, r.kind, r.fuses, r.srk_hash
    );
    for p in &r.parts {
        let at = p
            .load_address
            .map(|l| format!(" at {l:#x}"))
            .unwrap_or_default();
        if p.accepted {
            let _ = writeln!(
                o,
                "  {} (file offset {:#x}){at}: AUTHENTIC: SRK {} ({}), CSF key {}, image key {}, {} block(s), {:#x} bytes signed",
                p.part,
                p.offset,
                p.srk_index.unwrap_or(0),
                p.srk_key.as_deref().unwrap_or("?"),
                p.csfk.as_deref().unwrap_or("none (fast authentication)"),
                p.image_key.as_deref().unwrap_or("the SRK"),
                p.blocks.unwrap_or(0),
                p.signed_bytes.unwrap_or(0)
            );
        } else {
            let _ = writeln!(
                o,
                "  {} (file offset {:#x}){at}: REJECTED ({}): {} [{} {} {}]",
                p.part,
                p.offset,
                p.check.unwrap_or("?"),
                p.reason.as_deref().unwrap_or("?"),
                p.hab.status,
                p.hab.reason,
                p.hab.context
            );
        }
    }
    let _ = writeln!(o, "{}", if r.accepted { "accepted" } else { "rejected" });
    o
}
