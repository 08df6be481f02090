//! The test payload: a tiny `no_std` program that stands in for bl31/U-Boot in simulation.
//!
//! The shim loads it from the FIT (linked at 0x4020_0000, `linker/test-payload.ld`) and jumps to
//! it at EL3. It prints one marker line with the slot it reads from the boot cell
//! (`BOARD.cell_addr`, word 0) and the image version patched into [`VERSION`] by
//! `cargo xtask image`, waits for the harness (any character on the console, or
//! [`EXIT_AFTER_US`]) so that the cell can be read over QMP while QEMU still runs, and exits
//! QEMU through semihosting with the slot as exit code. Requires semihosting
//! (`-semihosting-config enable=on,target=native`, the simulation contract).
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod payload {
    use core::fmt::Write;

    use boot_core::platform::WatchdogService;
    use spl_shim::hw::timer::GenericTimer;
    use spl_shim::hw::uart::Uart;
    use spl_shim::hw::watchdog::Watchdog;
    use test_firmware::hw::payload;
    use test_firmware::hw::semihosting;

    /// Marker + version text; `cargo xtask image` overwrites the bytes after the marker with the
    /// image version (NUL-padded). Kept in its own section so that the linker keeps it whole.
    #[used]
    #[unsafe(link_section = ".rodata.payload_version")]
    static VERSION: [u8; payload::VERSION_FIELD_LEN] = payload::UNPATCHED_VERSION_FIELD;

    /// Longest wait for the harness before exiting anyway.
    const EXIT_AFTER_US: u64 = 20_000_000;

    fn version() -> &'static str {
        payload::version_text(&VERSION)
    }

    fn cell_slot() -> u32 {
        payload::cell_slot()
    }

    /// Called by the entry code (`spl_shim::arch`).
    // SAFETY: defined once in this binary; only the entry assembly calls it.
    #[unsafe(no_mangle)]
    extern "C" fn shim_main() -> ! {
        let mut console = Uart::console();
        let mut wdog = Watchdog::board();
        let slot = cell_slot();
        let el = payload::current_el();
        let _ = writeln!(console, "payload: version {} slot {slot} EL{el}", version());
        let _ = writeln!(console, "payload: press a key to exit");
        let timer = GenericTimer::new();
        let mut deadline = timer.deadline_us(EXIT_AFTER_US);
        while console.try_read_byte().is_none() && !deadline.expired() {
            wdog.service();
        }
        let _ = writeln!(console, "payload: exit {slot}");
        console.flush();
        semihosting::exit(slot)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        semihosting::exit(255)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "test-payload is firmware: `cargo build --profile firmware -p test-firmware --target aarch64-unknown-none --bin test-payload`"
    );
    std::process::exit(2);
}
