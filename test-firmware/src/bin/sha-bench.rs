//! SHA-256 throughput of the firmware's hash backend, measured in QEMU (issue 4 figures).
//!
//! Hashes 2 MiB of DRAM (the board's FIT window, filled with a pattern) several times with the
//! `sha2` crate as the shim links it, times it with the generic timer, prints
//! `sha-bench: backend <hw|soft> <bytes> bytes in <us> us (<MB/s> MB/s) digest <hex>` and exits
//! QEMU through semihosting (needs `-semihosting-config enable=on,target=native`).
//! `cargo xtask bench` builds it twice: with the ARMv8 SHA-256 instructions (the workspace
//! default, `.cargo/config.toml`) and with `-C target-feature=-sha2` (the software backend).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod bench {
    use core::fmt::Write;

    use boot_core::platform::Clock;
    use sha2::{Digest, Sha256};
    use spl_shim::hw::BOARD;
    use spl_shim::hw::timer::GenericTimer;
    use spl_shim::hw::uart::Uart;
    use test_firmware::hw::semihosting;

    const LEN: usize = 2 << 20;
    const RUNS: u32 = 5;

    /// Called by the entry code (`spl_shim::arch`).
    // SAFETY: defined once in this binary; only the entry assembly calls it.
    #[unsafe(no_mangle)]
    extern "C" fn shim_main() -> ! {
        let mut console = Uart::console();
        console.init(&BOARD.console);
        // SAFETY: the FIT window is DRAM that nothing else uses in this program (boards crate:
        // inside `memory.dram`, 16 MiB ≥ LEN).
        let buf = unsafe {
            core::slice::from_raw_parts_mut(BOARD.memory.fit_window.start as *mut u8, LEN)
        };
        let mut x = 0x9E37_79B9u32;
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let timer = GenericTimer::new();
        let mut best = u64::MAX;
        let mut digest = [0u8; 32];
        for _ in 0..RUNS {
            let t0 = timer.now();
            let d = Sha256::digest(&buf[..]);
            best = best.min(timer.now() - t0);
            digest.copy_from_slice(&d);
        }
        let us = timer.micros(best).max(1);
        let backend = if cfg!(target_feature = "sha2") {
            "hw"
        } else {
            "soft"
        };
        let _ = write!(
            console,
            "sha-bench: backend {backend} {LEN} bytes in {us} us ({} MB/s) digest ",
            LEN as u64 / us
        );
        for b in digest {
            let _ = write!(console, "{b:02x}");
        }
        let _ = writeln!(console);
        console.flush();
        semihosting::exit(0)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        semihosting::exit(255)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("sha-bench is firmware: `cargo xtask bench` builds and runs it in QEMU");
    std::process::exit(2);
}
