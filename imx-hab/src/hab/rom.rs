//! The i.MX 8M ROM's HAB API as an [`Authenticator`] (bare metal only; imx8m-facts.md §4).
//!
//! [`RomHab`] reads the ROM Vector Table (RVT), checks its header and calls the ROM the way
//! U-Boot's `imx_hab_authenticate_image()` does (imx8m-facts.md §4.4, §4.5):
//!
//! 1. in software, before the ROM sees anything: the blob lies at `load_address`; it parses as a
//!    signed FIT; `IVT.self` is `load + ivt_offset`; the IVT has no DCD; the CSF has no Write
//!    Data, Check Data or Set MID; every Authenticate Data block lies inside the blob and the
//!    blocks together cover `[load, load + ivt_offset + 0x20)` (the ROM does not check
//!    coverage; the software verifier does, so both backends agree on what "authentic" means);
//! 2. `entry()`, `check_target(MEMORY, load, bytes)`, `authenticate_image(cid, ivt_offset,
//!    &start, &bytes, NULL)`, `exit()` (exit is called whenever entry succeeded);
//! 3. `report_status(&config, &state)`, then `report_event(ANY, index, buf, &len)` for
//!    `index = 0, 1, …` while it returns SUCCESS, each record decoded by [`super::event`].
//!
//! `bytes` is `ivt_offset + 0x20 + CSF extent` (the blob up to the end of the last record the
//! CSF points to), never beyond the blob; U-Boot passes a CSF padded to 0x2000 instead.
//!
//! # Verdict
//!
//! Authentic only if entry, check_target and exit returned SUCCESS, authenticate_image returned
//! non-NULL, and no event logged during this authentication is a failure (WARNING included), on
//! an open part too ([`super::event`] has the rule). The HAB event log accumulates from the ROM's
//! own boot of the SPL onwards, and a failed primary copy leaves its events behind when the
//! secondary is tried, so only events with an index at or after the count taken just before
//! `entry()` are this image's (all of them if the log got shorter). `report_status`'s status
//! summarises the whole log, so it decides only when the log was empty before the call.
//! [`RomFailure::events`] counts this authentication's events.
//!
//! Failures found before calling the ROM:
//!
//! | what | reported as |
//! |---|---|
//! | the blob is malformed, `IVT.self` or DCD wrong, a refused command, a block outside the blob or missing coverage | [`AuthFailure::Software`] with the [`VerifyError`] of that check |
//! | the blob is not at `load_address` (or not 4-byte aligned) | [`AuthFailure::Rom`]: FAILURE, INV_ADDRESS, context TARGET |
//! | not running at EL3 (the RVT is callable only there; below EL3 U-Boot goes through a SiP SMC) | [`AuthFailure::Rom`]: FAILURE, UNS_STATE, context ENTRY |
//! | no RVT (tag not 0xDD, version not 0x4x, a null or misaligned slot: QEMU reads 0 there) | [`AuthFailure::Rom`]: FAILURE, INV_CALL, context ENTRY |
//!
//! These have `config` and `state` 0 (no real code is 0: the ROM was not asked), 0 events and a
//! synthesised [`RomFailure::first_failure`] with engine 0.
//!
//! # Calling notes
//!
//! - Each RVT slot is a 64-bit pointer (U-Boot reads `ulong`); the functions use the AAPCS64
//!   C ABI. Statuses and `enum` out-parameters are C `enum`s, 32 bits wide.
//! - U-Boot saves and restores x18 around every ROM call because the ROM may clobber it and
//!   U-Boot keeps `gd` there. Rust's `aarch64-unknown-none` does not reserve x18 (it is an
//!   ordinary caller-saved temporary), so a clobber is harmless unless the firmware is built
//!   with `+reserve-x18`.
//! - The ROM runs on the caller's stack, at the caller's exception level, with the caller's MMU
//!   and cache settings; the CAAM clock is always on on i.MX 8M.

use core::ffi::c_void;
use core::ptr;

use super::codes::{context, reason, status};
use super::event::{EventRecord, EventTally};
use super::software::{CommandFault, Coverage, VerifyError, block_range};
use super::{AuthFailure, Authenticated, Authenticator, EventSummary, RomFailure};
use crate::codes::TAG_RVT;
use crate::csf::{Authenticate, CommandKind, Csf, Set};
use crate::image::{SignedFit, ivt_offset_for};
use crate::ivt::IVT_SIZE;
use crate::{ParseError, Structure};

/// RVT address on i.MX 8M Mini, Nano and Plus.
pub const RVT_IMX8MM: usize = 0x900;
/// RVT address on i.MX 8M Quad.
pub const RVT_IMX8MQ: usize = 0x880;

/// Caller ID of the ROM itself.
pub const CID_ROM: u8 = 0;
/// Caller ID U-Boot (SPL and proper) authenticates with (`HAB_CID_UBOOT`).
pub const CID_UBOOT: u8 = 1;
/// Caller ID of TF-A.
pub const CID_TFA: u8 = 2;

/// `check_target` type: memory.
pub const TARGET_MEMORY: u8 = 0x0F;

/// Size of the buffer each event record is read into (U-Boot uses 128, barebox 256).
pub const EVENT_BUF_LEN: usize = 256;
/// Most events read from the log; a longer log counts as a failure.
pub const MAX_EVENTS: u32 = 64;

/// RVT slot offsets (imx8m-facts.md §4.1).
mod slot {
    pub const ENTRY: usize = 0x08;
    pub const EXIT: usize = 0x10;
    pub const CHECK_TARGET: usize = 0x18;
    pub const AUTHENTICATE_IMAGE: usize = 0x20;
    pub const REPORT_EVENT: usize = 0x40;
    pub const REPORT_STATUS: usize = 0x48;
}

/// `entry()`, `exit()`.
type StatusFn = unsafe extern "C" fn() -> u32;
/// `check_target(type, start, bytes)`.
type CheckTargetFn = unsafe extern "C" fn(u8, *const c_void, usize) -> u32;
/// `authenticate_image(cid, ivt_offset, &start, &bytes, loader)`.
type AuthenticateImageFn =
    unsafe extern "C" fn(u8, isize, *mut *mut c_void, *mut usize, *const c_void) -> *mut c_void;
/// `report_event(status, index, event, &bytes)`.
type ReportEventFn = unsafe extern "C" fn(u32, u32, *mut u8, *mut usize) -> u32;
/// `report_status(&config, &state)`.
type ReportStatusFn = unsafe extern "C" fn(*mut u32, *mut u32) -> u32;

/// The RVT functions this binding calls, read from a checked RVT.
#[derive(Clone, Copy)]
struct Api {
    entry: StatusFn,
    exit: StatusFn,
    check_target: CheckTargetFn,
    authenticate_image: AuthenticateImageFn,
    report_event: ReportEventFn,
    report_status: ReportStatusFn,
}

/// The ROM's HAB API at an RVT address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RomHab {
    rvt_addr: usize,
    caller_id: u8,
}

impl RomHab {
    /// A binding to the RVT at `rvt_addr` ([`RVT_IMX8MM`], [`RVT_IMX8MQ`]) authenticating with
    /// `caller_id` ([`CID_UBOOT`] for what U-Boot's SPL would authenticate).
    ///
    /// # Safety
    ///
    /// `rvt_addr` must be readable for 0x50 bytes (the ROM, or memory reading as zero as in
    /// QEMU), and if it holds a header with tag 0xDD and version 0x4x, the pointers in its slots
    /// must be the HAB ROM API functions of imx8m-facts.md §4.1, callable from this exception
    /// level with the C ABI. Nothing else may run the HAB API concurrently.
    pub const unsafe fn new(rvt_addr: usize, caller_id: u8) -> Self {
        RomHab {
            rvt_addr,
            caller_id,
        }
    }

    /// The RVT address.
    pub const fn rvt_addr(&self) -> usize {
        self.rvt_addr
    }

    /// The caller ID passed to `authenticate_image`.
    pub const fn caller_id(&self) -> u8 {
        self.caller_id
    }

    /// The RVT header's version byte (HAB version `v >> 4`.`v & 0xF`), or `None` if there is
    /// no RVT (tag not 0xDD or version not 0x4x).
    pub fn version(&self) -> Option<u8> {
        // SAFETY: `new`'s contract makes `rvt_addr .. rvt_addr + 0x50` readable; these are
        // byte reads, so alignment does not matter. Volatile: ROM contents, read as they are.
        let (tag, ver) = unsafe {
            (
                ptr::read_volatile(ptr::with_exposed_provenance::<u8>(self.rvt_addr)),
                ptr::read_volatile(ptr::with_exposed_provenance::<u8>(self.rvt_addr + 3)),
            )
        };
        (tag == TAG_RVT && ver & 0xF0 == 0x40).then_some(ver)
    }

    /// `report_status()`: (status, config, state), or `None` without an RVT or below EL3.
    pub fn report_status(&self) -> Option<(u8, u8, u8)> {
        let api = self.api()?;
        Some(report_status(&api))
    }

    /// The function pointer in RVT slot `offset`: non-zero and 4-byte aligned (A64 code).
    fn slot(&self, offset: usize) -> Option<*const ()> {
        let at = self.rvt_addr + offset;
        if offset > slot::REPORT_STATUS || !at.is_multiple_of(8) {
            return None;
        }
        // SAFETY: `new`'s contract makes `rvt_addr .. rvt_addr + 0x50` readable, the 8 bytes at
        // `offset <= 0x48` lie inside, and `at` is 8-byte aligned (checked above).
        let v = unsafe { ptr::read_volatile(ptr::with_exposed_provenance::<u64>(at)) };
        let addr = usize::try_from(v).ok()?;
        (addr != 0 && addr.is_multiple_of(4)).then(|| ptr::with_exposed_provenance::<()>(addr))
    }

    /// The API, if there is an RVT and this code runs at EL3.
    fn api(&self) -> Option<Api> {
        if !self.rvt_addr.is_multiple_of(8) || !at_el3() {
            return None;
        }
        self.version()?;
        let (entry, exit, check_target, authenticate_image, report_event, report_status) = (
            self.slot(slot::ENTRY)?,
            self.slot(slot::EXIT)?,
            self.slot(slot::CHECK_TARGET)?,
            self.slot(slot::AUTHENTICATE_IMAGE)?,
            self.slot(slot::REPORT_EVENT)?,
            self.slot(slot::REPORT_STATUS)?,
        );
        // SAFETY: the RVT header is present, so by `new`'s contract each slot holds the ROM
        // function of that slot, whose C signature is the type transmuted to (imx8m-facts.md
        // §4.1, U-Boot `hab.h`). A data pointer and a function pointer have the same size.
        unsafe {
            Some(Api {
                entry: core::mem::transmute::<*const (), StatusFn>(entry),
                exit: core::mem::transmute::<*const (), StatusFn>(exit),
                check_target: core::mem::transmute::<*const (), CheckTargetFn>(check_target),
                authenticate_image: core::mem::transmute::<*const (), AuthenticateImageFn>(
                    authenticate_image,
                ),
                report_event: core::mem::transmute::<*const (), ReportEventFn>(report_event),
                report_status: core::mem::transmute::<*const (), ReportStatusFn>(report_status),
            })
        }
    }
}

/// Whether this code runs at EL3 (where the SPL calls the RVT directly).
#[cfg(target_arch = "aarch64")]
fn at_el3() -> bool {
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects and is allowed at every EL above EL0;
    // firmware never runs at EL0.
    unsafe {
        core::arch::asm!(
            "mrs {}, CurrentEL",
            out(reg) el,
            options(nomem, nostack, preserves_flags)
        );
    }
    (el >> 2) & 3 == 3
}

/// Whether this code runs at EL3: never, off AArch64.
#[cfg(not(target_arch = "aarch64"))]
fn at_el3() -> bool {
    false
}

/// A ROM status word as a HAB code (anything wider than a byte is a failure).
fn code(v: u32) -> u8 {
    u8::try_from(v).unwrap_or(status::FAILURE)
}

/// A failure found before the ROM was called.
fn early(reason: u8, context: u8) -> AuthFailure {
    AuthFailure::Rom(RomFailure {
        status: status::FAILURE,
        config: 0,
        state: 0,
        first_failure: Some(EventSummary {
            status: status::FAILURE,
            reason,
            context,
            engine: 0,
        }),
        events: 0,
    })
}

/// What the software checks established, and what the ROM is given.
struct Plan {
    ivt_offset: u64,
    /// `ivt_offset` as the ROM takes it.
    rom_ivt_offset: isize,
    /// Bytes from the load address passed to `check_target` and `authenticate_image`.
    bytes: usize,
    entry: u32,
    signed_bytes: u64,
}

/// The Authenticate Data commands of `csf` (not Authenticate CSF), with their CSF offsets.
fn data_commands<'a>(csf: &Csf<'a>) -> impl Iterator<Item = (u64, Authenticate<'a>)> + 'a {
    csf.commands().filter_map(|c| match c.kind {
        CommandKind::Authenticate(a) if !a.is_csf() => Some((c.offset, a)),
        _ => None,
    })
}

/// U-Boot's checks (imx8m-facts.md §4.5) plus block placement and coverage, in software.
fn plan(blob: &[u8], load_address: u64) -> Result<Plan, AuthFailure> {
    let sw = |e: VerifyError| AuthFailure::Software(e);
    let parse = |e: ParseError| AuthFailure::Software(VerifyError::Parse(e));
    if blob.as_ptr().addr() as u64 != load_address || !load_address.is_multiple_of(4) {
        return Err(early(reason::INV_ADDRESS, context::TARGET));
    }
    let ivt_offset = ivt_offset_for(u64::from(crate::fit::totalsize(blob).map_err(parse)?));
    let image = SignedFit::parse(blob).map_err(parse)?;
    debug_assert_eq!(image.ivt_offset, ivt_offset);
    let rom_ivt_offset = isize::try_from(ivt_offset).map_err(|_| {
        parse(ParseError::invalid(
            Structure::Fit,
            "totalsize",
            4,
            "puts the IVT out of the ROM's reach",
        ))
    })?;
    let expected_self = load_address + ivt_offset;
    if u64::from(image.ivt.self_addr()) != expected_self {
        return Err(sw(VerifyError::IvtSelf {
            found: image.ivt.self_addr(),
            expected: expected_self,
        }));
    }
    if image.ivt.dcd() != 0 {
        return Err(sw(VerifyError::IvtDcd {
            found: image.ivt.dcd(),
        }));
    }
    let csf = image.csf;
    for cmd in csf.commands() {
        if matches!(
            cmd.kind,
            CommandKind::WriteData(_)
                | CommandKind::CheckData(_)
                | CommandKind::Set(Set::Mid { .. })
        ) {
            return Err(sw(VerifyError::Command {
                offset: image.csf_offset + cmd.offset,
                fault: CommandFault::Forbidden,
            }));
        }
    }
    // Block placement and coverage exactly as the software verifier checks them.
    let mut covered = Coverage::new();
    for (offset, a) in data_commands(&csf) {
        for (index, block) in a.blocks().enumerate() {
            if block_range(blob, load_address, &block).is_none() {
                return Err(sw(VerifyError::BlockOutsideImage {
                    offset: image.csf_offset + offset,
                    index,
                    block,
                }));
            }
            covered.add(block).map_err(sw)?;
        }
    }
    let must_cover = expected_self + IVT_SIZE as u64;
    if let Some(from) = covered.first_gap(load_address, must_cover) {
        return Err(sw(VerifyError::NotCovered {
            from,
            to: must_cover,
        }));
    }
    let signed_bytes = covered.total();
    let signed_len = image.signed_len();
    let bytes = usize::try_from(signed_len)
        .ok()
        .filter(|&b| b <= blob.len())
        .ok_or_else(|| {
            parse(ParseError::truncated(
                Structure::CsfHeader,
                "extent",
                image.csf_offset,
                signed_len - image.csf_offset,
                blob.len() as u64 - image.csf_offset,
            ))
        })?;
    Ok(Plan {
        ivt_offset,
        rom_ivt_offset,
        bytes,
        entry: image.ivt.entry(),
        signed_bytes,
    })
}

/// `report_status()` as (status, config, state).
fn report_status(api: &Api) -> (u8, u8, u8) {
    let (mut config, mut state) = (0u32, 0u32);
    // SAFETY: `report_status` is the ROM's (Api comes from a checked RVT); it writes one C enum
    // (32 bits) through each pointer, both to live, aligned locals.
    let st = unsafe { (api.report_status)(&mut config, &mut state) };
    // A configuration or state wider than a byte is no known code: 0, like "not asked".
    let byte = |v: u32| u8::try_from(v).unwrap_or(0);
    (code(st), byte(config), byte(state))
}

/// Walks the event log from index 0, calling `f` with each event at or after index `from`
/// (`None` for a record that does not decode). Returns the number of events in the log, or
/// `None` if it could not all be read (more than [`MAX_EVENTS`], or a record larger than the
/// buffer).
fn walk_events(api: &Api, from: u32, mut f: impl FnMut(Option<EventRecord<'_>>)) -> Option<u32> {
    let mut buf = [0u8; EVENT_BUF_LEN];
    for index in 0..MAX_EVENTS {
        let mut len = buf.len();
        // SAFETY: `report_event` is the ROM's (Api comes from a checked RVT); it writes at most
        // `len` bytes (the buffer's size) to `buf` and one `size_t` to `len`, both live locals.
        let st = unsafe {
            (api.report_event)(u32::from(status::ANY), index, buf.as_mut_ptr(), &mut len)
        };
        if code(st) != status::SUCCESS {
            // The ROM reports a record too large for the buffer by asking for more room.
            return (len <= buf.len()).then_some(index);
        }
        if index >= from {
            f(buf.get(..len).and_then(|r| EventRecord::parse(r).ok()));
        }
    }
    None
}

impl Authenticator for RomHab {
    fn authenticate(
        &mut self,
        blob: &[u8],
        load_address: u64,
    ) -> Result<Authenticated, AuthFailure> {
        let plan = plan(blob, load_address)?;
        if !at_el3() {
            return Err(early(reason::UNS_STATE, context::ENTRY));
        }
        let api = self
            .api()
            .ok_or_else(|| early(reason::INV_CALL, context::ENTRY))?;
        // Events already in the log (the ROM's boot of the SPL, an earlier copy) are not ours;
        // an unreadable log counts every event as ours.
        let before = walk_events(&api, u32::MAX, |_| {}).unwrap_or(0);
        let start = blob.as_ptr().cast::<c_void>();

        let mut failed = None;
        // SAFETY: the ROM's `entry` (checked RVT), no arguments.
        let st = code(unsafe { (api.entry)() });
        if st != status::SUCCESS {
            failed = Some(st);
        } else {
            // SAFETY: the ROM's `check_target`; it only reads the address range, which is the
            // live `blob` (`plan.bytes <= blob.len()`).
            let st = code(unsafe { (api.check_target)(TARGET_MEMORY, start, plan.bytes) });
            if st != status::SUCCESS {
                failed = Some(st);
            } else {
                let mut rom_start = start.cast_mut();
                let mut rom_bytes = plan.bytes;
                // SAFETY: the ROM's `authenticate_image` with a NULL loader: it reads the IVT at
                // `start + ivt_offset`, the CSF and the records it points to, all inside the
                // first `plan.bytes` bytes of `blob` (SignedFit::parse and `plan`), and the
                // signed blocks, which `plan` checked lie inside `blob`. It writes only through
                // the two pointers to live locals and to its own memory: the CSF has no Write
                // Data, and Csf::parse accepts only CMS signatures (nothing decrypted in place),
                // so `blob`, borrowed shared, is never written.
                let entry = unsafe {
                    (api.authenticate_image)(
                        self.caller_id,
                        plan.rom_ivt_offset,
                        &mut rom_start,
                        &mut rom_bytes,
                        ptr::null(),
                    )
                };
                if entry.is_null() {
                    failed = Some(status::FAILURE);
                }
            }
            // Bracket every entry() with exit(), also after a failure.
            // SAFETY: the ROM's `exit`, no arguments.
            let st = code(unsafe { (api.exit)() });
            if st != status::SUCCESS && failed.is_none() {
                failed = Some(st);
            }
        }

        let (rs_status, config, state) = report_status(&api);
        let mut tally = EventTally::new();
        let total = walk_events(&api, u32::MAX, |_| {});
        // Ours are the events from `before` on, or all of them if the log got shorter.
        let from = match total {
            Some(n) if n >= before => before,
            _ => 0,
        };
        if walk_events(&api, from, |r| match r {
            Some(e) => tally.record(&e),
            None => tally.record_malformed(),
        })
        .is_none()
        {
            tally.record_malformed();
        }
        let status = match failed {
            Some(st) => st,
            // report_status summarises the whole log: it speaks for this image only when the
            // log held nothing else.
            None if from == 0 => rs_status,
            None => status::SUCCESS,
        };
        tally
            .verdict(status, config, state)
            .map_err(AuthFailure::Rom)?;
        Ok(Authenticated {
            entry: plan.entry,
            ivt_offset: plan.ivt_offset,
            signed_bytes: plan.signed_bytes,
            srk_key: None,
        })
    }
}
