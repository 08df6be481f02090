//! The shim firmware for `aarch64-unknown-none` (design.md §5).
//!
//! Current state: early entry only (park secondary cores, FP/SIMD on, stack, BSS cleared) and a
//! link check that the `no_std` libraries need no allocator. The drivers and the boot flow
//! come with the firmware issue. On a host target this binary only explains how to build it.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
#[path = "../arch/aarch64/entry.rs"]
mod entry;

#[cfg(target_os = "none")]
mod firmware {
    use boards::qemu_imx8mp::BOARD;
    use imx_hab::hab::software::SoftwareHab;
    use imx_hab::hab::{Authenticator, Fuses};
    use imx_hab::image::Image;
    use imx_hab::sit::Sit;
    use spl_shim::policy::{CopyVerdict, SitVerdict, decide};

    /// Called by the entry code on the boot core with a stack and a zeroed BSS.
    // SAFETY: `shim_main` is defined once and only the entry assembly calls it, with the
    // stack set up and BSS cleared, as the C ABI expects.
    #[unsafe(no_mangle)]
    extern "C" fn shim_main() -> ! {
        // Link check: exercise the parsers and the policy on an empty sector so that the
        // final link proves they need no global allocator.
        let sector = core::hint::black_box([0u8; 512]);
        let sit_ok = Sit::parse(&sector)
            .and_then(|s| s.validate(&BOARD.media, 1 << 30, 1 << 21, 1 << 21))
            .is_ok();
        let primary = match Image::parse(&sector, &BOARD.media) {
            Ok(_) => CopyVerdict::Authentic,
            Err(_) => CopyVerdict::NotAuthentic,
        };
        let sit = if sit_ok {
            SitVerdict::Valid
        } else {
            SitVerdict::Invalid
        };
        // The software HAB4 verifier (SHA-256 + ECDSA P-256 + DER), so that the link also
        // measures what authentication costs in `.text` (`cargo xtask bench` reports it).
        let fuses = Fuses::from_simulated_block(&core::hint::black_box([0u8; 64]));
        let blob: &[u8] = core::hint::black_box(&sector);
        let load = core::hint::black_box(BOARD.memory.fit_window.start);
        let secondary = match (SoftwareHab { fuses }).authenticate(blob, load) {
            Ok(_) => CopyVerdict::Authentic,
            Err(_) => CopyVerdict::NotAuthentic,
        };
        core::hint::black_box(decide(primary, || sit, || secondary));
        crate::entry::halt()
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        crate::entry::halt()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "spl-shim is firmware: build it with `cargo build -p spl-shim --target aarch64-unknown-none`"
    );
    std::process::exit(2);
}
