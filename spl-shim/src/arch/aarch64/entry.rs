//! Reset entry for AArch64: the first instructions the shim runs.

use core::arch::global_asm;

// The entry runs before any Rust code: only the boot core (MPIDR Aff0 = 0) continues; FP/SIMD
// must be enabled before Rust code runs because the target uses NEON registers (crates.md
// §3.1: CPTR_EL3.TFP = 0 at EL3, CPACR_EL1.FPEN = 0b11).
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
1:  mov     x2, #(3 << 20)
    msr     cpacr_el1, x2
    isb
    ldr     x0, =__stack_top
    mov     sp, x0
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
2:  cmp     x0, x1
    b.hs    3f
    str     xzr, [x0], #8
    b       2b
3:  bl      shim_main
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
