//! The one judgement of a boot copy (design.md §5): [`examine_copy`] judges a copy the way the
//! ROM and then the shim would, and every user calls it: the shim's boot flow, `ubootctl`'s
//! `status`, `verify`, `update`, `sync`, the next-boot prediction and the power-cut sweep.
//!
//! 1. **The SPL, as the ROM judges it.** The copy's IVT at its first byte, its boot data (in
//!    the first sector: start = `IVT.self`, no plugin, the image ending before the FIT), and
//!    on a closed part its CSF, authenticated by the board's HAB backend as if loaded at
//!    `IVT.self`. A backend that cannot authenticate an SPL away from its load address (the
//!    ROM's API) leaves that to the ROM ([`SplCheck::RomJudged`]).
//! 2. **The FIT, as the shim judges it.** Header, IVT after it, load address in the board's FIT
//!    window, the whole blob (`ivt_offset + CSF_AREA` bytes) inside the slot, read **once** into
//!    the window at that address, authenticated there, then the handoff plan computed from the
//!    authenticated bytes (once: the plan returned is the one the firmware executes).
//!
//! Both signatures must use an algorithm the board's authenticator supports
//! (`boards::HabCapabilities`). On an open part an *unsigned* SPL or FIT is accepted with a
//! warning ([`Warnings`]), because that is what the ROM does; a signature that is present but
//! fails is refused on open and closed parts alike (design.md §5).

use sha2::{Digest, Sha256};

use boards::{Board, Region, SECTOR_SIZE, Sector, SignatureAlgorithm};
use imx_hab::hab::codes::status;
use imx_hab::hab::software::KeyKind;
use imx_hab::hab::{Authenticated, Authenticator, EventSummary};
use imx_hab::image::{SignedFit, ivt_offset_for};
use imx_hab::ivt::{BOOT_DATA_SIZE, BootData, IVT_SIZE, Ivt};
use imx_hab::{ErrorKind, ParseError, Structure};

use crate::boot::handoff::{self, Plan};
use crate::boot::timing::{ClockMeter, Timings};
use crate::boot::{CSF_AREA, Hardware};
use crate::platform::{BlockRead, Clock, WatchdogService};
use crate::rollback::{self, RollbackFuses};

/// The IVT offsets a boot image may have: 0 (8M Plus, and images built that way) and
/// IVT_OFFSET_SD 0x400 (8M Mini SD/eMMC; imx8m-facts.md §2.1).
const IVT_OFFSETS: [u32; 2] = [0, 0x400];

mod identity;
mod verdict;

use identity::{fit_identity_range, spl_identity_range};
pub use identity::{flash_bin_identity, identity_parts, image_identity};
pub use verdict::{Failure, Fault, Part, Rules, Security, SplCheck, Warnings};

/// A bootable copy.
#[derive(Debug, Clone)]
pub struct Examined {
    /// How the SPL was judged.
    pub spl: SplCheck,
    /// Warnings (an unsigned part on an open SoC).
    pub warnings: Warnings,
    /// Bytes of the SPL the ROM loads (the boot data's size).
    pub spl_len: u64,
    /// Bytes of the copy that make it what it is: up to the end of the FIT's CSF (or the FIT,
    /// unsigned), relative to the copy's first byte.
    pub image_len: u64,
    /// The FIT half: where it lies in the window, and the handoff computed once over its
    /// authenticated bytes.
    pub fit: ExaminedFit,
    /// The copy's identity ([`image_identity`] over [`identity_parts`]): SHA-256 of its SPL's
    /// CSF followed by its FIT's IVT and CSF (the whole SPL / FIT where unsigned). A CSF holds
    /// the signatures and the digests of what they sign, so it identifies the signed bytes
    /// without hashing them again. The shim records it in the cell for the copy it boots;
    /// `ubootctl` finds which copy on the medium holds it.
    pub identity: [u8; 32],
}

/// What [`examine_copy`] needs to know besides the hardware.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The board (layout, memory map, HAB capabilities).
    pub board: &'a Board,
    /// Closed or open.
    pub security: Security,
    /// The anti-rollback fuses.
    pub rollback: RollbackFuses,
    /// Bytes of the copy's slot (what it may occupy).
    pub slot_bytes: u64,
    /// Memory the running shim occupies: no image may be copied over it (empty on the host).
    pub shim: &'a [Region],
}

/// Judges the copy at byte `copy_offset` of the medium: its SPL as the ROM would, then its FIT
/// as the shim would (module documentation). The FIT is read into `window` (physical address
/// `window_base`) at its load address; on success it lies there, authenticated.
pub fn examine_copy<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    ctx: &Context<'_>,
    window: &mut [u8],
    window_base: u64,
    copy_offset: u64,
) -> Result<Examined, Failure>
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    hw.watchdog.service();
    let mut warnings = Warnings::default();
    let (spl, spl_layout, mut identity) = check_spl(hw, timings, ctx, window, copy_offset)?;
    match spl {
        SplCheck::UnsignedOpen => warnings.unsigned_spl = true,
        SplCheck::RomJudged => warnings.spl_rom_judged = true,
        SplCheck::Authenticated => {}
    }
    let fit = examine_fit(hw, timings, ctx, window, window_base, copy_offset)?;
    warnings.unsigned_fit = !fit.signed;
    let start = fit.window_offset;
    let fit_part = fit_identity_range(fit.signed, fit.ivt_offset, fit.image_len);
    identity.update(&window[start + fit_part.start..start + fit_part.end]);
    Ok(Examined {
        spl,
        warnings,
        spl_len: spl_layout.len,
        image_len: ctx.board.media.fit_offset + fit.image_len,
        fit,
        identity: identity.finalize().into(),
    })
}

/// A FIT judged by [`examine_fit`].
#[derive(Debug, Clone)]
pub struct ExaminedFit {
    /// Whether it carries a signature (an unsigned FIT passes only on an open part).
    pub signed: bool,
    /// Address it was read to (and authenticated at).
    pub load_address: u64,
    /// Offset of its IVT in the blob.
    pub ivt_offset: u64,
    /// Bytes the shim reads.
    pub blob_len: u64,
    /// Offset of the blob in the window.
    pub window_offset: usize,
    /// End of the CSF (signed) or of the FIT (unsigned), relative to the FIT.
    pub image_len: u64,
    /// The handoff over the authenticated bytes.
    pub plan: Plan,
    /// The security epoch (the default configuration's `rollback-index`, 0 when absent).
    pub epoch: u32,
}

/// The FIT half of [`examine_copy`] alone: the FIT of the copy at `copy_offset` (at the
/// layout's FIT offset in it). `ubootctl verify` calls it for a signed FIT given on its own.
pub fn examine_fit<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    ctx: &Context<'_>,
    window: &mut [u8],
    window_base: u64,
    copy_offset: u64,
) -> Result<ExaminedFit, Failure>
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let fit = load_fit(hw, timings, ctx, window, window_base, copy_offset)?;
    let start = fit.window_offset;
    let fit_bytes = &window[start..start + fit.ivt_offset as usize];
    let blob_region = Region::new(fit.load_address, fit.blob_len);
    let plan = handoff::plan(fit_bytes, blob_region, ctx.shim, &ctx.board.memory)
        .map_err(|e| Failure::fit(Fault::Handoff(e)))?;
    // Only now, over authenticated bytes: an unauthenticated epoch proves nothing.
    let epoch = rollback::epoch(plan.rollback_index);
    if epoch > rollback::FUSE_BITS {
        // 64 fuse bits cannot enforce it: a commit to it would burn every bit for good.
        return Err(Failure::fit(Fault::Parse(ParseError::new(
            Structure::FitConfig,
            "rollback-index",
            0,
            ErrorKind::Invalid("is above 64, the most the rollback fuses can hold"),
        ))));
    }
    let minimum = ctx.rollback.minimum();
    if epoch < minimum {
        return Err(Failure::fit(Fault::Rollback { epoch, minimum }));
    }
    Ok(ExaminedFit {
        epoch,
        signed: fit.signed,
        load_address: fit.load_address,
        ivt_offset: fit.ivt_offset,
        blob_len: fit.blob_len,
        window_offset: start,
        image_len: fit.image_len,
        plan,
    })
}

/// Where an SPL lies in its copy, from its first sector (IVT and boot data), checked as the ROM
/// would before loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplLayout {
    /// Bytes the ROM loads from the IVT on (the boot data's size minus the IVT offset).
    pub len: u64,
    /// Offset of the CSF the IVT names, if any.
    pub csf: Option<u64>,
    /// `IVT.self`: where the ROM places the IVT (the SPL's first byte from the IVT on).
    pub self_addr: u64,
    /// `IVT.entry`: where the ROM starts the CPU.
    pub entry: u64,
}

/// The SPL layout of a copy whose first sector is `sector`, for a layout whose FIT starts at
/// `fit_offset`: the IVT (no DCD, entry inside the image), the boot data in the first sector
/// (start = `IVT.self` minus 0 or 0x400, no plugin, the image covering its own IVT and boot
/// data and ending before the FIT), the CSF pointer inside the image.
pub fn spl_layout(sector: &Sector, fit_offset: u64) -> Result<SplLayout, Failure> {
    let err = |e: ParseError| Failure::spl(Fault::Parse(e));
    let invalid = |s, field, at, why| err(ParseError::new(s, field, at, ErrorKind::Invalid(why)));
    let ivt = Ivt::parse(sector).map_err(err)?;
    let self_addr = ivt.self_addr();
    if ivt.dcd() != 0 {
        return Err(invalid(
            Structure::Ivt,
            "dcd",
            0x0C,
            "an i.MX 8M boot image has no DCD",
        ));
    }
    // The boot data, which sizes what the ROM loads: imx8mimage puts it right after the IVT;
    // it must lie in the first sector.
    let bd_off = match ivt.boot_data() {
        0 => {
            return Err(err(ParseError::new(
                Structure::Ivt,
                "boot_data",
                0x10,
                ErrorKind::Zero,
            )));
        }
        a => ivt
            .offset_of(a)
            .filter(|&o| o + BOOT_DATA_SIZE as u64 <= SECTOR_SIZE)
            .ok_or(invalid(
                Structure::Ivt,
                "boot_data",
                0x10,
                "points outside the copy's first sector",
            ))?,
    };
    let bd = BootData::parse(&sector[bd_off as usize..]).map_err(|e| err(e.shifted(bd_off)))?;
    // start = self - ivt_offset: the ROM loads `size` bytes from `ivt_offset` before the IVT
    // (IVT_OFFSET_SD 0x400 on the 8M Mini's SD layout, 0 on the 8M Plus; imx8m-facts.md §2.1).
    let before_ivt = self_addr.wrapping_sub(bd.start());
    if !IVT_OFFSETS.contains(&before_ivt) || bd.start() > self_addr {
        return Err(invalid(
            Structure::BootData,
            "start",
            bd_off,
            "does not place the IVT 0 or 0x400 bytes into the image",
        ));
    }
    if bd.plugin() != 0 {
        return Err(invalid(
            Structure::BootData,
            "plugin",
            bd_off + 8,
            "plugin images are not supported",
        ));
    }
    let len = u64::from(bd.size()).saturating_sub(u64::from(before_ivt));
    if len < bd_off + BOOT_DATA_SIZE as u64 {
        return Err(invalid(
            Structure::BootData,
            "size",
            bd_off + 4,
            "the image does not even hold its IVT and boot data",
        ));
    }
    if len > fit_offset {
        return Err(Failure::spl(Fault::TooLarge {
            needed: len,
            available: fit_offset,
        }));
    }
    if ivt.offset_of(ivt.entry()).is_none_or(|o| o >= len) {
        return Err(invalid(
            Structure::Ivt,
            "entry",
            0x04,
            "lies outside the SPL image",
        ));
    }
    let csf = match ivt.csf() {
        0 => None,
        a => Some(ivt.offset_of(a).filter(|&o| o < len).ok_or(invalid(
            Structure::Ivt,
            "csf",
            0x18,
            "points outside the SPL image",
        ))?),
    };
    Ok(SplLayout {
        len,
        csf,
        self_addr: u64::from(self_addr),
        entry: u64::from(ivt.entry()),
    })
}

/// Whether an SPL claims a signature: its IVT names a CSF and the CSF slot (to the image's end)
/// is not all zero. A partly zeroed CSF is a signature that fails, not an unsigned image.
pub(super) fn spl_signed(spl: &[u8], layout: &SplLayout) -> bool {
    layout.csf.is_some_and(|o| {
        spl.get(o as usize..)
            .is_some_and(|c| c.iter().any(|&b| b != 0))
    })
}

/// The SPL half of [`examine_copy`] alone, as the ROM judges it: the SPL of the copy at
/// `copy_offset` is read into the start of `buf` (`len` bytes from the IVT on) and judged there.
/// The ROM model of the simulation and the ROM-choice prediction ([`crate::rom`]) call it.
pub fn examine_spl<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    ctx: &Context<'_>,
    buf: &mut [u8],
    copy_offset: u64,
) -> Result<(SplCheck, SplLayout), Failure>
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    check_spl(hw, timings, ctx, buf, copy_offset).map(|(check, layout, _)| (check, layout))
}

/// Checks the SPL half; returns how it was judged, its layout and the identity hash so far
/// (over the SPL's bytes).
fn check_spl<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    ctx: &Context<'_>,
    window: &mut [u8],
    copy_offset: u64,
) -> Result<(SplCheck, SplLayout, Sha256), Failure>
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let mut sector: Sector = [0; SECTOR_SIZE as usize];
    read(hw, timings, copy_offset, &mut sector).map_err(Failure::spl)?;
    let layout = spl_layout(&sector, ctx.board.media.fit_offset)?;
    // The SPL as the ROM loads it, read into the start of the window (the FIT is read over it
    // afterwards): hashed into the copy's identity, authenticated where the backend can.
    let n = layout.len.next_multiple_of(SECTOR_SIZE) as usize;
    let available = window.len() as u64;
    let buf = window.get_mut(..n).ok_or(Failure::spl(Fault::TooLarge {
        needed: layout.len,
        available,
    }))?;
    read(hw, timings, copy_offset, buf).map_err(Failure::spl)?;
    let spl = &buf[..layout.len as usize];
    let signed = spl_signed(spl, &layout);
    let mut identity = Sha256::new();
    identity.update(&spl[spl_identity_range(signed, &layout)]);
    if !signed {
        return match ctx.security {
            Security::Closed => Err(Failure::spl(Fault::NotSigned)),
            Security::Open => Ok((SplCheck::UnsignedOpen, layout, identity)),
        };
    }
    if !hw.hab.can_authenticate_spl() {
        return Ok((SplCheck::RomJudged, layout, identity));
    }
    hw.watchdog.service();
    let t0 = hw.clock.ticks();
    let auth = hw.hab.authenticate_spl(spl);
    timings.auth_ticks += hw.clock.ticks().saturating_sub(t0);
    match auth {
        None => Ok((SplCheck::RomJudged, layout, identity)),
        Some(Err(e)) => Err(Failure::spl(Fault::Auth(e))),
        Some(Ok(a)) => {
            supported(ctx, &a).map_err(Failure::spl)?;
            Ok((SplCheck::Authenticated, layout, identity))
        }
    }
}

/// Refuses a signature the board's authenticator cannot verify.
fn supported(ctx: &Context<'_>, a: &Authenticated) -> Result<(), Fault> {
    let Some(key) = a.srk_key else {
        return Ok(());
    };
    let algorithm = match key {
        KeyKind::P256 => SignatureAlgorithm::EcdsaP256,
        KeyKind::Rsa(_) => SignatureAlgorithm::Rsa,
    };
    if ctx.board.hab_caps.supports(algorithm) {
        Ok(())
    } else {
        Err(Fault::Algorithm {
            board: ctx.board.name,
            key,
        })
    }
}

/// A FIT read (and, when signed, authenticated) in the window.
struct LoadedFit {
    signed: bool,
    load_address: u64,
    ivt_offset: u64,
    blob_len: u64,
    window_offset: usize,
    /// End of the CSF (signed) or of the FIT (unsigned), relative to the FIT.
    image_len: u64,
}

/// Reads the copy's FIT into the window at its load address and authenticates it there.
fn load_fit<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    ctx: &Context<'_>,
    window: &mut [u8],
    window_base: u64,
    copy_offset: u64,
) -> Result<LoadedFit, Failure>
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let err = |e: ParseError| Failure::fit(Fault::Parse(e));
    let fit_offset = ctx.board.media.fit_offset;
    let at = copy_offset.saturating_add(fit_offset);
    let room = ctx.slot_bytes.saturating_sub(fit_offset);

    // 1. The FIT header: its totalsize places the IVT.
    let mut sector: Sector = [0; SECTOR_SIZE as usize];
    read(hw, timings, at, &mut sector).map_err(Failure::fit)?;
    let total =
        u64::from(imx_hab::fit::totalsize(&sector).map_err(|e| err(e.shifted(fit_offset)))?);
    let ivt_offset = ivt_offset_for(total);
    let blob_len = ivt_offset.saturating_add(CSF_AREA);
    if blob_len > room {
        return Err(Failure::fit(Fault::TooLarge {
            needed: fit_offset.saturating_add(blob_len),
            available: ctx.slot_bytes,
        }));
    }

    // 2. The IVT after it: where the blob was signed to be. Zeros there: not signed.
    read(hw, timings, at + ivt_offset, &mut sector).map_err(Failure::fit)?;
    let signed = sector[..imx_hab::ivt::IVT_SIZE].iter().any(|&b| b != 0);
    let window_region = Region::new(window_base, window.len() as u64);
    let load = if signed {
        let ivt = Ivt::parse(&sector).map_err(|e| err(e.shifted(fit_offset + ivt_offset)))?;
        u64::from(ivt.self_addr()).wrapping_sub(ivt_offset)
    } else if ctx.security == Security::Closed {
        return Err(Failure::fit(Fault::NotSigned));
    } else {
        // An unsigned FIT on an open part has no signed load address: the window's start.
        ctx.board.memory.fit_window.start
    };
    if load < window_region.start || !window_region.contains_range(load, blob_len) {
        return Err(Failure::fit(Fault::LoadAddress {
            load,
            len: blob_len,
            window: ctx.board.memory.fit_window,
        }));
    }

    // 3. The whole blob, once, into the window at the load address.
    let start = (load - window_base) as usize;
    let blob = &mut window[start..start + blob_len as usize];
    hw.watchdog.service();
    read(hw, timings, at, blob).map_err(Failure::fit)?;
    hw.watchdog.service();
    let blob: &[u8] = blob;
    if !signed {
        return Ok(LoadedFit {
            signed,
            load_address: load,
            ivt_offset,
            blob_len,
            window_offset: start,
            // The zero IVT belongs to the image: it is what says "unsigned".
            image_len: ivt_offset + IVT_SIZE as u64,
        });
    }

    // 4. Authenticate in place.
    let t0 = hw.clock.ticks();
    let auth = {
        let mut meter = ClockMeter {
            clock: hw.clock,
            timings,
            started: t0,
        };
        hw.hab.authenticate_metered(blob, load, &mut meter)
    };
    timings.auth_ticks += hw.clock.ticks().saturating_sub(t0);
    hw.watchdog.service();
    let auth = auth.map_err(|e| Failure::fit(Fault::Auth(e)))?;
    if auth.ivt_offset != ivt_offset {
        return Err(err(ParseError::new(
            Structure::Ivt,
            "self",
            fit_offset + ivt_offset + 0x14,
            ErrorKind::Mismatch {
                found: auth.ivt_offset,
                expected: ivt_offset,
            },
        )));
    }
    supported(ctx, &auth).map_err(Failure::fit)?;
    let image_len = SignedFit::parse(blob).map_or(blob_len, |s| s.signed_len().min(blob_len));
    Ok(LoadedFit {
        signed,
        load_address: load,
        ivt_offset,
        blob_len,
        window_offset: start,
        image_len,
    })
}

/// A FAILURE event with the ROM's closest reason and context.
pub(crate) const fn failure_event(r: u8, c: u8) -> EventSummary {
    EventSummary {
        status: status::FAILURE,
        reason: r,
        context: c,
        engine: 0,
    }
}

/// Reads whole blocks at byte `offset` and adds the time and bytes to `timings`.
pub(crate) fn read<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    offset: u64,
    buf: &mut [u8],
) -> Result<(), Fault>
where
    D: BlockRead + ?Sized,
    C: Clock,
{
    let t0 = hw.clock.ticks();
    let r = hw.disk.read_blocks(offset / SECTOR_SIZE, buf);
    timings.read_ticks += hw.clock.ticks().saturating_sub(t0);
    if r.is_ok() {
        timings.read_bytes += buf.len() as u64;
    }
    r.map_err(Fault::Read)
}
