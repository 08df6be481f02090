//! Reset entry for AArch64: the first instructions the shim runs, and the fatal-exception
//! handler the exception vectors (`vectors.rs`) call.
//!
//! Linked into every firmware binary through [`crate::arch`]; each binary defines
//! `extern "C" fn shim_main() -> !`.

use core::arch::global_asm;

// The entry runs before any Rust code:
// 1. only the boot core (MPIDR_EL1.Aff0 = 0) continues; others park in a `wfe` loop
//    (qemu-imx8mp.md §1: park them even though QEMU starts them powered off);
// 2. FP/SIMD is enabled before Rust code runs because the target uses NEON registers
//    (crates.md §3.1: CPTR_EL3 = 0 at EL3 clears TFP; CPTR_EL2.TFP likewise at EL2;
//    CPACR_EL1.FPEN = 0b11 for EL1/EL0);
// 3. at EL3, VBAR_EL3 = the vector table (vectors.rs), so any fault is reported;
// 4. SP = __stack_top (linker script), BSS zeroed (8-byte aligned bounds, sections.ld);
// 5. `shim_main` is called and must not return; if it does, the core parks.
global_asm!(
    r#"
    .section .text.entry, "ax"
    .global _start
_start:
    mrs     x0, mpidr_el1
    and     x0, x0, #0xff
    cbnz    x0, 9f
    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #3
    b.ne    1f
    msr     cptr_el3, xzr
    ldr     x0, =__exception_vectors
    msr     vbar_el3, x0
    b       2f
1:  cmp     x1, #2
    b.ne    2f
    mov     x0, #0x33ff
    msr     cptr_el2, x0
2:  mov     x2, #(3 << 20)
    msr     cpacr_el1, x2
    isb
    ldr     x0, =__stack_top
    mov     sp, x0
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
3:  cmp     x0, x1
    b.hs    4f
    str     xzr, [x0], #8
    b       3b
4:  bl      shim_main
9:  wfe
    b       9b
"#
);

/// Stops this core for good (the watchdog, when armed, resets the SoC).
pub fn halt() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Called by every vector-table entry with the entry index (0..15) and the saved registers:
/// prints the report on the console UART and halts. Never uses semihosting.
// SAFETY: defined once, in this library, for every binary; only the vector assembly calls it,
// with a valid frame on the stack, following the C ABI.
#[unsafe(no_mangle)]
extern "C" fn shim_exception(index: u64, frame: &crate::hw::exceptions::ExceptionFrame) -> ! {
    crate::hw::exceptions::report(index, frame);
    halt()
}
