//! The EL3 exception vector table: 16 entries of 0x80 bytes, 2 KiB aligned (Arm ARM D1.10.2,
//! VBAR_ELx). Installed in VBAR_EL3 by the entry code (`entry.rs`).
//!
//! Every entry pushes an `ExceptionFrame` (`crate::hw::exceptions`: x0..x30 and the
//! interrupted SP, 256 bytes) on the current stack and calls `shim_exception(index, frame)`
//! with the entry's index 0..15 (source group × type, in VBAR order). That function prints
//! the report on the console and never returns; if it did, the core would park in a `wfe`
//! loop. No entry returns to the interrupted code: every exception is fatal in the shim.

use core::arch::global_asm;

// Frame layout (must match `ExceptionFrame`): x0..x30 at 8 × n, the interrupted SP at 248.
global_asm!(
    r#"
    .section .text.vectors, "ax"
    .balign 2048
    .global __exception_vectors
__exception_vectors:
    .irp index, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .balign 0x80
    sub     sp, sp, #256
    stp     x0, x1, [sp, #0]
    mov     x0, #\index
    b       __exception_common
    .endr

    .balign 0x80
__exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    add     x1, sp, #256
    stp     x30, x1, [sp, #240]
    mov     x1, sp
    bl      shim_exception
1:  wfe
    b       1b
"#
);
