//! Ending QEMU with an exit code through Arm semihosting (`docs/qemu-imx8mp.md` §7).
//!
//! **Only valid when QEMU runs with semihosting enabled** (`-semihosting` or
//! `-semihosting-config enable=on,target=native`). Without it the `hlt #0xF000` trap is an
//! UNDEFINED instruction at EL3 (ESR EC 0): the exception vectors report it and halt. On
//! silicon the same happens unless a debugger catches the trap. The test firmware uses this;
//! the boot shim never does (which is why it lives here and not in `spl_shim::hw`), and the
//! exception handler must not.

/// SYS_EXIT_EXTENDED: like SYS_EXIT, but the parameter block carries the exit code on
/// AArch64 too (Arm semihosting spec; measured with 77 in QEMU 10, qemu-imx8mp.md §7).
const SYS_EXIT_EXTENDED: u64 = 0x20;
/// SYS_EXIT (measured with 42, 100, 3, qemu-imx8mp.md §7).
const SYS_EXIT: u64 = 0x18;
/// ADP_Stopped_ApplicationExit: the reason code for a normal program exit.
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;

/// One semihosting call: `x0` = operation, `x1` = parameter, `hlt #0xF000`. Returns `x0`.
fn call(op: u64, param: u64) -> u64 {
    let ret: u64;
    // SAFETY: the semihosting trap reads the parameter block at `param` (a live stack array in
    // the caller) and, for the exit operations, does not return when the host honours it. It
    // touches no other memory and no registers other than x0 (the result).
    unsafe {
        core::arch::asm!(
            "hlt #0xf000",
            inout("x0") op => ret,
            in("x1") param,
            options(nostack)
        );
    }
    ret
}

/// Ends the QEMU process with exit status `code` (the host sees `code & 0xFF` on POSIX).
/// Tries SYS_EXIT_EXTENDED, then SYS_EXIT; if neither ends the simulation (a host that
/// returned from the call), the core halts.
///
/// Precondition: semihosting is enabled in QEMU (see the module documentation).
pub fn exit(code: u32) -> ! {
    let block: [u64; 2] = [ADP_STOPPED_APPLICATION_EXIT, u64::from(code)];
    let param = block.as_ptr() as u64;
    call(SYS_EXIT_EXTENDED, param);
    call(SYS_EXIT, core::hint::black_box(param));
    loop {
        aarch64_cpu::asm::wfe();
    }
}
