//! `ubootctl verify`: decide whether an image would boot, with the one judgement the shim and
//! every other command use (`boot_core::examine`): a flash.bin as a copy (its SPL as the ROM
//! judges it, then its FIT as the shim does), a signed FIT on its own as a copy's FIT. The
//! software verifier's report adds the signer details to an accepted part; it decides nothing.

use std::path::Path;

use boards::Board;
use boot_core::examine::{Failure as CopyFailure, Part, Security, SplCheck};
use imx_hab::hab::codes::{context_name, reason_name, status_name};
use imx_hab::hab::software::{Report, verify, verify_spl_image};
use imx_hab::image::Image;
use serde::Serialize;

use crate::exit::Failure;
use crate::fuses::FuseValues;

use crate::output::{out, outln};
use ubootctl::media::{judge_fit, judge_flash_bin};

/// The verdict on one signed part of the image.
#[derive(Debug, Serialize)]
pub struct PartVerdict {
    /// `FIT` or `SPL`.
    pub part: &'static str,
    /// File offset of the part.
    pub offset: u64,
    /// Load address it was verified at.
    pub load_address: Option<u64>,
    /// Whether it is accepted (authentic, or unsigned on an open part).
    pub accepted: bool,
    /// Whether it was examined (a FIT after a refused SPL is not).
    pub examined: bool,
    /// Accepted without a signature because the part is open, or left to the ROM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<&'static str>,
    /// Stable failure class of the one vocabulary (`image-signature`, `not-signed`, …).
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
    /// The FIT's security epoch (`rollback-index`, 0 when absent), when accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
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
    /// `closed` or `open` (SEC_CONFIG).
    pub security: &'static str,
    /// The board whose ROM and shim the image is judged for.
    pub board: &'static str,
    /// SRK hash used (hex).
    pub srk_hash: String,
    /// The rollback minimum in the fuses; `None` when they were not read (`--srk-hash`).
    pub rollback_minimum: Option<u32>,
    /// Whether every part is authentic.
    pub accepted: bool,
    /// One verdict per signed part.
    pub parts: Vec<PartVerdict>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A part with nothing filled in.
fn part(name: Part, offset: u64) -> PartVerdict {
    PartVerdict {
        part: name.name(),
        offset,
        load_address: None,
        accepted: false,
        examined: false,
        warning: None,
        check: None,
        reason: None,
        hab: HabEvent {
            status: "-",
            reason: "-",
            context: "-",
        },
        srk_index: None,
        srk_key: None,
        csfk: None,
        image_key: None,
        blocks: None,
        signed_bytes: None,
        epoch: None,
    }
}

/// An accepted part, with the signer details of the verifier's report when signed.
fn accepted(mut p: PartVerdict, load: u64, report: Option<Report<'_>>) -> PartVerdict {
    p.accepted = true;
    p.examined = true;
    p.load_address = Some(load);
    p.hab = HabEvent {
        status: "HAB_SUCCESS",
        reason: "HAB_RSN_ANY",
        context: "HAB_CTX_ANY",
    };
    if let Some(rep) = report {
        p.srk_index = Some(rep.srk_index);
        p.srk_key = Some(rep.srk_key.to_string());
        p.csfk = rep.csfk.map(|c| c.subject.to_string());
        p.image_key = rep.image_key.map(|c| c.subject.to_string());
        p.blocks = Some(rep.blocks);
        p.signed_bytes = Some(rep.signed_bytes);
    }
    p
}

/// A refused part: the failure class, why, and the HAB event the ROM would log.
fn refused(mut p: PartVerdict, f: &CopyFailure) -> PartVerdict {
    let ev = f.event();
    let name = |n: Option<&'static str>| n.unwrap_or("unknown");
    p.examined = true;
    p.check = Some(f.class().name());
    p.reason = Some(f.to_string());
    p.hab = HabEvent {
        status: name(status_name(ev.status)),
        reason: name(reason_name(ev.reason)),
        context: name(context_name(ev.context)),
    };
    p
}

/// Runs `verify` and prints the result.
pub fn run(path: &Path, board: &Board, fuses: &FuseValues, json: bool) -> Result<bool, Failure> {
    let bytes = crate::image_file::read_image(path, &board.media)?;
    let image = Image::parse(&bytes, &board.media).ok();
    let fit_offset = board.media.fit_offset;
    let mut parts = Vec::new();
    let kind = image
        .as_ref()
        .map_or("unrecognised image", |i| i.kind_name());
    if let Some(Image::SignedFit(_) | Image::BareFit(_)) = image {
        let p = part(Part::Fit, 0);
        parts.push(match judge_fit(&bytes, board, &fuses.fuses) {
            Ok(fit) => {
                let report = fit
                    .signed
                    .then(|| {
                        verify(
                            &bytes[..fit.blob_len.min(bytes.len() as u64) as usize],
                            fit.load_address,
                            &fuses.fuses,
                        )
                        .ok()
                    })
                    .flatten();
                let mut p = accepted(p, fit.load_address, report);
                p.warning = (!fit.signed).then_some("unsigned FIT accepted: the part is open");
                p.epoch = Some(fit.epoch);
                p
            }
            Err(f) => refused(p, &f),
        });
    } else {
        let spl = part(Part::Spl, 0);
        let fit = part(Part::Fit, fit_offset);
        match judge_flash_bin(&bytes, board, &fuses.fuses) {
            Ok(info) => {
                let spl_report = match info.spl {
                    SplCheck::Authenticated => verify_spl_image(&bytes, &fuses.fuses).ok(),
                    _ => None,
                };
                // Accepted, so the IVT at offset 0 parses: where the ROM places the SPL.
                let spl_load = imx_hab::ivt::Ivt::parse(&bytes).map_or(0, |i| i.self_addr());
                let mut s = accepted(spl, spl_load.into(), spl_report);
                s.warning = match info.spl {
                    SplCheck::UnsignedOpen => Some("unsigned SPL accepted: the part is open"),
                    SplCheck::RomJudged => Some("SPL signature left to the ROM"),
                    SplCheck::Authenticated => None,
                };
                let blob = &bytes[fit_offset as usize..];
                let fit_report = (!info.warnings.unsigned_fit)
                    .then(|| verify(blob, info.load_address, &fuses.fuses).ok())
                    .flatten();
                let mut f = accepted(fit, info.load_address, fit_report);
                f.epoch = Some(info.epoch);
                f.warning = info
                    .warnings
                    .unsigned_fit
                    .then_some("unsigned FIT accepted: the part is open");
                parts.push(s);
                parts.push(f);
            }
            Err(e) if e.part == Part::Spl => {
                parts.push(refused(spl, &e));
                parts.push(fit);
            }
            Err(e) => {
                let mut s = spl;
                s.accepted = true;
                s.examined = true;
                parts.push(s);
                parts.push(refused(fit, &e));
            }
        }
    }
    let accepted = parts.iter().all(|p| p.accepted);
    let report = VerifyReport {
        file: path.display().to_string(),
        kind,
        fuses: fuses.source.clone(),
        security: Security::of(&fuses.fuses).name(),
        board: board.name,
        srk_hash: hex(&fuses.fuses.srk_hash),
        rollback_minimum: fuses
            .rollback_known
            .then(|| boot_core::rollback::RollbackFuses(fuses.fuses.rollback).minimum()),
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

fn render(r: &VerifyReport) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {} for {}, fuses from {} ({} part, SRK hash {})",
        r.file, r.kind, r.board, r.fuses, r.security, r.srk_hash
    );
    if let Some(m) = r.rollback_minimum {
        let _ = writeln!(o, "  rollback minimum {m} (fuses)");
    }
    for p in &r.parts {
        let at = p
            .load_address
            .map(|l| format!(" at {l:#x}"))
            .unwrap_or_default()
            + &p.epoch.map(|e| format!(", epoch {e}")).unwrap_or_default();
        if !p.examined {
            let _ = writeln!(
                o,
                "  {} (file offset {:#x}): not examined (the copy is refused before it)",
                p.part, p.offset
            );
        } else if p.accepted && p.srk_index.is_some() {
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
        } else if p.accepted {
            let _ = writeln!(
                o,
                "  {} (file offset {:#x}){at}: ACCEPTED{}",
                p.part,
                p.offset,
                p.warning
                    .map(|w| format!(" (WARNING: {w})"))
                    .unwrap_or_default()
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
