//! GICv3: the minimal Secure EL3 set-up a Non-secure OS needs before it runs (what TF-A's BL31
//! does on i.MX 8M before U-Boot and Linux, as facts: groups, affinity routing, redistributor
//! wake-up and the EL3 system-register interface), for the Linux stand-in
//! (`bin/linux-stand-in.rs`).
//!
//! Register names, offsets and bits: Arm *GICv3 and GICv4 Architecture Specification* (IHI 0069)
//! §12 (GICD_*, GICR_*) and §12.2 (ICC_SRE_EL3). With `GICD_CTLR.DS = 0` (two security states,
//! the GIC-500 of i.MX 8M as TF-A runs it) the group and mode registers below are Secure-only:
//! the Non-secure OS cannot move interrupts into its own group, so EL3 must put every interrupt
//! into Group 1 Non-secure (IGROUPR = 1, IGRPMODR = 0, IHI 0069 §3.1.2 Table 3-1) and wake the
//! redistributor (GICR_WAKER is Secure-only, §12.11.42). QEMU 10's `imx8mp-evk` GIC reports
//! `GICD_CTLR.DS = 1` (*measured*: one security state; Linux logs "GICD_CTRL.DS=1"); the same
//! set-up is then merely redundant, with GICD_CTLR in its single-state layout.
//!
//! Addresses: the GIC of i.MX 8M Plus and Mini, distributor at 0x38800000 and redistributors
//! at 0x38880000 (Linux `imx8mp.dtsi`/`imx8mm.dtsi` `interrupt-controller@38800000`;
//! `docs/qemu-imx8mp.md` §2 for QEMU). Each redistributor is two 64 KiB frames, RD_base then
//! SGI_base (IHI 0069 §12.10; no VLPI frames on GIC-500/GICv3 without GICv4).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

/// GICD base of i.MX 8M Plus / Mini (module docs).
pub const GICD_BASE: u64 = 0x3880_0000;
/// First GICR (RD_base of core 0) of i.MX 8M Plus / Mini (module docs).
pub const GICR_BASE: u64 = 0x3888_0000;
/// Stride between redistributors: RD_base + SGI_base, 2 × 64 KiB (IHI 0069 §12.10).
pub const GICR_STRIDE: u64 = 0x2_0000;
/// Offset of SGI_base from RD_base (IHI 0069 §12.10).
pub const GICR_SGI_OFFSET: u64 = 0x1_0000;
/// At most this many redistributor frames are examined (i.MX 8M has 4 cores; QEMU ≤ 4).
const MAX_REDISTRIBUTORS: u64 = 8;
/// Polls of GICD_CTLR.RWP / GICR_WAKER.ChildrenAsleep before giving up (QEMU settles at once;
/// a GIC-500 within a few cycles).
const POLL_LIMIT: u32 = 1_000_000;

register_bitfields! {u32,
    /// GICD_CTLR, Secure view when DS = 0 (IHI 0069 §12.9.4).
    GICD_CTLR [
        /// Enable Group 0 interrupts.
        EnableGrp0 OFFSET(0) NUMBITS(1) [],
        /// Enable Non-secure Group 1 interrupts.
        EnableGrp1NS OFFSET(1) NUMBITS(1) [],
        /// Enable Secure Group 1 interrupts.
        EnableGrp1S OFFSET(2) NUMBITS(1) [],
        /// Affinity routing enable, Secure state.
        ARE_S OFFSET(4) NUMBITS(1) [],
        /// Affinity routing enable, Non-secure state.
        ARE_NS OFFSET(5) NUMBITS(1) [],
        /// Disable Security (1 = a single security state).
        DS OFFSET(6) NUMBITS(1) [],
        /// Register write pending.
        RWP OFFSET(31) NUMBITS(1) []
    ],
    /// GICD_TYPER (IHI 0069 §12.9.38).
    GICD_TYPER [
        /// Number of SPI INTIDs: 32 × (ITLinesNumber + 1) including SGIs/PPIs.
        ITLinesNumber OFFSET(0) NUMBITS(5) []
    ],
    /// GICR_WAKER (IHI 0069 §12.11.42).
    GICR_WAKER [
        /// 1 = the PE is asleep: the redistributor does not forward interrupts to it.
        ProcessorSleep OFFSET(1) NUMBITS(1) [],
        /// Read-only: 1 while the interface to the PE is quiescent.
        ChildrenAsleep OFFSET(2) NUMBITS(1) []
    ]
}

register_bitfields! {u64,
    /// GICR_TYPER (IHI 0069 §12.11.37).
    GICR_TYPER [
        /// 1 = the last redistributor of this GIC.
        Last OFFSET(4) NUMBITS(1) [],
        /// Aff3.Aff2.Aff1.Aff0 of the PE this redistributor serves.
        Affinity OFFSET(32) NUMBITS(32) []
    ]
}

register_structs! {
    /// The distributor registers used here (IHI 0069 Table 12-25).
    GicdRegisters {
        (0x0000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x0004 => typer: ReadOnly<u32, GICD_TYPER::Register>),
        (0x0008 => _reserved0),
        /// GICD_IGROUPR<n>: 1 bit per INTID, 1 = Group 1 (with IGRPMODR = 0: Non-secure).
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => _reserved1),
        /// GICD_IGRPMODR<n>: group modifier, 0 with IGROUPR = 1 → Non-secure Group 1.
        (0x0D00 => igrpmodr: [ReadWrite<u32>; 32]),
        (0x0D80 => @END),
    }
}

register_structs! {
    /// RD_base frame of one redistributor (IHI 0069 Table 12-27).
    GicrRdRegisters {
        (0x0000 => _ctlr: ReadWrite<u32>),
        (0x0004 => _iidr: ReadOnly<u32>),
        (0x0008 => typer: ReadOnly<u64, GICR_TYPER::Register>),
        (0x0010 => _statusr: ReadWrite<u32>),
        (0x0014 => waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x0018 => @END),
    }
}

register_structs! {
    /// SGI_base frame of one redistributor: SGIs 0-15 and PPIs 16-31 (IHI 0069 Table 12-29).
    GicrSgiRegisters {
        (0x0000 => _reserved0),
        /// GICR_IGROUPR0.
        (0x0080 => igroupr0: ReadWrite<u32>),
        (0x0084 => _reserved1),
        /// GICR_IGRPMODR0.
        (0x0D00 => igrpmodr0: ReadWrite<u32>),
        (0x0D04 => @END),
    }
}

/// ICC_SRE_EL3 bits (IHI 0069 §12.2.15): SRE (system-register interface at EL3), DFB and DIB
/// (FIQ/IRQ bypass disabled) and Enable (lower ELs may use ICC_SRE_EL2/EL1; without it Linux's
/// write of ICC_SRE_EL2 at EL2 traps to EL3).
pub const ICC_SRE_EL3_VALUE: u64 = 0b1111;

/// What [`init_for_nonsecure`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GicReport {
    /// GICD_CTLR.DS read before the set-up (true: one security state).
    pub security_disabled: bool,
    /// INTIDs covered by the distributor, 32 × (ITLinesNumber + 1).
    pub lines: u32,
    /// Base of the redistributor of this core.
    pub redistributor: u64,
    /// GICR_WAKER.ChildrenAsleep cleared within the poll bound.
    pub awake: bool,
}

/// Why the set-up failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicError {
    /// No redistributor frame carries this core's affinity.
    NoRedistributor,
    /// GICD_CTLR.RWP stayed set.
    DistributorBusy,
}

fn icc_sre_el3_write(value: u64) {
    // SAFETY: ICC_SRE_EL3 (S3_6_C12_C12_5, IHI 0069 §12.2.15) only configures the GIC
    // system-register interface; this runs at EL3, where the register exists on every
    // GICv3 core. The `isb` makes the new value visible to later instructions.
    unsafe {
        core::arch::asm!("msr S3_6_C12_C12_5, {v}", "isb", v = in(reg) value, options(nostack));
    }
}

fn mpidr_affinity() -> u32 {
    use aarch64_cpu::registers::{MPIDR_EL1, Readable as _};
    let m = MPIDR_EL1.get();
    // MPIDR_EL1: Aff0 7:0, Aff1 15:8, Aff2 23:16, Aff3 39:32 (Arm ARM D23.2) → GICR_TYPER's
    // Aff3.Aff2.Aff1.Aff0 packing.
    ((m & 0xFF_FFFF) | ((m >> 8) & 0xFF00_0000)) as u32
}

fn wait_rwp(d: &GicdRegisters) -> Result<(), GicError> {
    for _ in 0..POLL_LIMIT {
        if !d.ctlr.is_set(GICD_CTLR::RWP) {
            return Ok(());
        }
    }
    Err(GicError::DistributorBusy)
}

/// Secure EL3 set-up of the GIC for a Non-secure OS on this core:
/// 1. ICC_SRE_EL3 = SRE | DFB | DIB | Enable ([`ICC_SRE_EL3_VALUE`]);
/// 2. GICD_CTLR: all groups off, wait RWP; ARE_S | ARE_NS (affinity routing, required before
///    the group registers are interpreted for GICv3 mode), wait RWP;
/// 3. every SPI to Non-secure Group 1: GICD_IGROUPR<n> = all ones, GICD_IGRPMODR<n> = 0 for
///    n = 1..=ITLinesNumber (n = 0, the SGIs/PPIs, is RES0 with ARE and lives in the GICR);
/// 4. GICD_CTLR |= EnableGrp1NS (Linux enables its own group again through the Non-secure
///    view, IHI 0069 §12.9.4);
/// 5. this core's redistributor (GICR_TYPER.Affinity = MPIDR affinity): SGIs/PPIs to
///    Non-secure Group 1 (GICR_IGROUPR0 = all ones, GICR_IGRPMODR0 = 0), then
///    GICR_WAKER.ProcessorSleep = 0 and a bounded wait for ChildrenAsleep = 0 (§12.11.42).
pub fn init_for_nonsecure() -> Result<GicReport, GicError> {
    icc_sre_el3_write(ICC_SRE_EL3_VALUE);

    // SAFETY: GICD_BASE is the distributor's register block (module docs), device memory
    // mapped flat at EL3 with the MMU off; accessed only through the volatile cells.
    let d = unsafe { &*(GICD_BASE as *const GicdRegisters) };
    let security_disabled = d.ctlr.is_set(GICD_CTLR::DS);
    d.ctlr.set(0);
    wait_rwp(d)?;
    // With DS = 1 there is one security state and GICD_CTLR has the single-state layout
    // (IHI 0069 §12.9.4): bit 4 is ARE, bit 1 EnableGrp1, bit 5 RES0.
    let are = if security_disabled {
        GICD_CTLR::ARE_S::SET
    } else {
        GICD_CTLR::ARE_S::SET + GICD_CTLR::ARE_NS::SET
    };
    d.ctlr.write(are);
    wait_rwp(d)?;
    let it_lines = d.typer.read(GICD_TYPER::ITLinesNumber) as usize;
    for n in 1..=it_lines.min(31) {
        d.igroupr[n].set(u32::MAX);
        d.igrpmodr[n].set(0);
    }
    d.ctlr.write(are + GICD_CTLR::EnableGrp1NS::SET);
    wait_rwp(d)?;

    let affinity = mpidr_affinity();
    let mut found = None;
    for i in 0..MAX_REDISTRIBUTORS {
        let base = GICR_BASE + i * GICR_STRIDE;
        // SAFETY: `base` is the RD_base frame of redistributor `i`, inside the GICR region
        // (module docs); the loop stops at the frame marked Last.
        let rd = unsafe { &*(base as *const GicrRdRegisters) };
        if rd.typer.read(GICR_TYPER::Affinity) as u32 == affinity {
            found = Some(base);
            break;
        }
        if rd.typer.is_set(GICR_TYPER::Last) {
            break;
        }
    }
    let base = found.ok_or(GicError::NoRedistributor)?;
    // SAFETY: as above; SGI_base follows RD_base at +64 KiB (module docs).
    let (rd, sgi) = unsafe {
        (
            &*(base as *const GicrRdRegisters),
            &*((base + GICR_SGI_OFFSET) as *const GicrSgiRegisters),
        )
    };
    sgi.igroupr0.set(u32::MAX);
    sgi.igrpmodr0.set(0);
    rd.waker.write(GICR_WAKER::ProcessorSleep::CLEAR);
    let mut awake = false;
    for _ in 0..POLL_LIMIT {
        if !rd.waker.is_set(GICR_WAKER::ChildrenAsleep) {
            awake = true;
            break;
        }
    }
    Ok(GicReport {
        security_disabled,
        lines: 32 * (it_lines as u32 + 1),
        redistributor: base,
        awake,
    })
}
