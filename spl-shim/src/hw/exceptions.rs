//! The report the EL3 exception vectors print before halting (`arch/aarch64/vectors.rs`).
//!
//! The vectors save the general-purpose registers in an [`ExceptionFrame`] and call
//! [`report`]; it prints the kind of exception, ESR_EL3, ELR_EL3, FAR_EL3, SPSR_EL3 and the
//! registers on the board's console UART. The caller then halts (the watchdog, if armed,
//! resets the SoC). Nothing here may use semihosting: the shim runs without it.

use aarch64_cpu::registers::{ELR_EL3, ESR_EL3, FAR_EL3, Readable, SPSR_EL3};

use boot_core::shim_log;

use super::uart::Uart;

/// General-purpose registers at the time of the exception, as the vector stub saves them:
/// `x[0]..x[30]` (x30 = LR), then the stack pointer before the frame was pushed.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ExceptionFrame {
    /// x0 to x30.
    pub x: [u64; 31],
    /// SP before the exception frame was pushed.
    pub sp: u64,
}

/// Size of [`ExceptionFrame`] in bytes, as the assembly allocates it.
pub const FRAME_SIZE: usize = core::mem::size_of::<ExceptionFrame>();

/// The name of vector-table entry `index` (0..16): the source group (current EL with SP_EL0,
/// current EL with SP_ELx, lower EL AArch64, lower EL AArch32) and the type (synchronous,
/// IRQ, FIQ, SError), in VBAR order (Arm ARM D1.10.2).
pub fn kind_name(index: u64) -> &'static str {
    const NAMES: [&str; 16] = [
        "synchronous, current EL, SP_EL0",
        "IRQ, current EL, SP_EL0",
        "FIQ, current EL, SP_EL0",
        "SError, current EL, SP_EL0",
        "synchronous, current EL, SP_ELx",
        "IRQ, current EL, SP_ELx",
        "FIQ, current EL, SP_ELx",
        "SError, current EL, SP_ELx",
        "synchronous, lower EL, AArch64",
        "IRQ, lower EL, AArch64",
        "FIQ, lower EL, AArch64",
        "SError, lower EL, AArch64",
        "synchronous, lower EL, AArch32",
        "IRQ, lower EL, AArch32",
        "FIQ, lower EL, AArch32",
        "SError, lower EL, AArch32",
    ];
    usize::try_from(index)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("unknown vector")
}

/// A short name for an ESR exception class (ESR_ELx.EC, bits 31:26; Arm ARM D17.2.37).
pub fn class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown / undefined instruction",
        0x01 => "WFI/WFE trap",
        0x07 => "FP/SIMD access trap",
        0x0E => "illegal execution state",
        0x15 => "SVC",
        0x16 => "HVC",
        0x17 => "SMC",
        0x18 => "system register trap",
        0x20 => "instruction abort, lower EL",
        0x21 => "instruction abort, current EL",
        0x22 => "PC alignment fault",
        0x24 => "data abort, lower EL",
        0x25 => "data abort, current EL",
        0x26 => "SP alignment fault",
        0x2F => "SError",
        0x3C => "BRK",
        _ => "other",
    }
}

/// Prints the exception report for vector `index` on the console UART (as left by earlier
/// code: the UART is not reset, so a half-configured console still shows what it can), through
/// `boot_core::shim_log!`: defmt frames in the shim, text in the text build.
pub fn report(index: u64, frame: &ExceptionFrame) {
    let esr = ESR_EL3.get();
    let elr = ELR_EL3.get();
    let far = FAR_EL3.get();
    let spsr = SPSR_EL3.get();
    let ec = (esr >> 26) & 0x3F;
    let mut con = Uart::console();
    shim_log!(error, con, "*** EL3 exception: {} ***", kind_name(index));
    shim_log!(
        error,
        con,
        "ESR_EL3  {:#x} (EC {:#x}: {}, ISS {:#x})",
        esr,
        ec,
        class_name(ec),
        esr & 0x1FF_FFFF
    );
    shim_log!(error, con, "ELR_EL3  {:#x}", elr);
    shim_log!(error, con, "FAR_EL3  {:#x}", far);
    shim_log!(error, con, "SPSR_EL3 {:#x}", spsr);
    for (i, pair) in frame.x.chunks(2).enumerate() {
        match pair {
            [a, b] => shim_log!(error, con, "x{} {:#x}  x{} {:#x}", 2 * i, a, 2 * i + 1, b),
            [a] => shim_log!(error, con, "x{} {:#x}  sp  {:#x}", 2 * i, a, frame.sp),
            _ => {}
        }
    }
    shim_log!(error, con, "halted");
    con.flush();
}
