//! Copying an authenticated image to its load address at handoff (design.md §5 step 4).
//!
//! `core::ptr::copy_nonoverlapping` lowers to `compiler_builtins`' `memcpy`, which interleaves
//! one load and one store per 8 bytes (per byte when source and destination differ in alignment
//! modulo 8, as `+strict-align` forbids unaligned words; FIT external data is only 4-byte
//! aligned). [`copy_image`] moves 64-byte blocks through four NEON registers instead: `LD1`/`ST1`
//! of byte elements have no alignment requirement beyond a byte, so they are also valid with the
//! MMU off, where all memory is Device memory and an access not aligned to its element size
//! faults (Arm ARM, "Alignment of data accesses"). Under QEMU this matters more than the instruction count suggests: the source window
//! and a load address 64 MiB apart share a slot of TCG's direct-mapped software TLB, so an
//! interleaved word copy misses it on every access (1 MiB: 6.5-11.5 ms with `memcpy`, against
//! 1.1-2.3 ms to read or write the same megabyte alone; `docs/qemu-imx8mp.md` §13).

/// Copies `len` bytes from `src` to `dst` in 64-byte blocks through NEON registers, then the
/// tail of fewer than 64 bytes with `memcpy`.
///
/// # Safety
/// `src..src+len` must be readable, `dst..dst+len` writable, and the two ranges must not
/// overlap; nothing else may access them during the copy. FP/SIMD must be enabled at the
/// current exception level (the entry code does).
pub unsafe fn copy_image(dst: *mut u8, src: *const u8, len: usize) {
    let blocks = len / 64;
    let done = blocks * 64;
    if blocks > 0 {
        // SAFETY: reads `blocks * 64 <= len` bytes from `src` and writes as many to `dst`
        // (caller's contract); v0-v3 and the copied pointers/counter are declared clobbered.
        unsafe {
            core::arch::asm!(
                "2:",
                "ld1 {{v0.16b, v1.16b, v2.16b, v3.16b}}, [{src}], #64",
                "st1 {{v0.16b, v1.16b, v2.16b, v3.16b}}, [{dst}], #64",
                "subs {n}, {n}, #1",
                "b.ne 2b",
                src = inout(reg) src => _,
                dst = inout(reg) dst => _,
                n = inout(reg) blocks => _,
                out("v0") _, out("v1") _, out("v2") _, out("v3") _,
                options(nostack),
            );
        }
    }
    // SAFETY: the remaining `len - done < 64` bytes lie inside both ranges.
    unsafe { core::ptr::copy_nonoverlapping(src.add(done), dst.add(done), len - done) };
}
