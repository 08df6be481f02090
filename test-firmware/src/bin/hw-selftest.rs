//! Driver self-test firmware: exercises the console UART, the generic timer, the watchdog and
//! the uSDHC driver of `spl_shim::hw` under QEMU, then ends QEMU through semihosting with exit
//! code 0 (all checks passed) or 1 (a driver error, printed first).
//!
//! Run (`tests/tests/qemu_drivers.rs` does it):
//! `qemu-system-aarch64 -M imx8mp-evk -m 1G -smp 1 -display none -serial null -serial stdio
//! -semihosting-config enable=on,target=native -device loader,file=hw-selftest,cpu-num=0
//! -drive if=sd,bus=1,file=disk.img,format=raw`.
//!
//! Output lines the test parses: `card: <SDSC|SDHC> blocks=<n>`, one
//! `read: lba=<l> blocks=<n> sha256=<hex> us=<t>` per read, `out-of-range: ok`, and
//! `hw-selftest: PASS` or `hw-selftest: FAIL: <error>`.
//!
//! Fault mode: when the word at [`MODE_ADDR`](firmware::MODE_ADDR) (DRAM start + 255 MiB,
//! planted with `-device loader,addr=0x4ff00000,data=0xfa170001,data-len=4`) is
//! `0xFA17_0001`, the self-test instead arms the watchdog for 1 s, prints
//! `fault-test: reading <addr>` and reads the first address past the board's DRAM: the
//! resulting synchronous external abort must be reported by the EL3 vectors (FAR = that
//! address) and the watchdog must then reset the SoC (`-no-reboot` ends QEMU).
//!
//! On a host target this binary only explains how to build it.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use core::fmt::Write;

    use boards::Sector;
    use boot_core::platform::{BlockRead, Clock, MediaError, WatchdogService};
    use embedded_hal::delay::DelayNs;
    use sha2::{Digest, Sha256};
    use spl_shim::hw::BOARD;
    use spl_shim::hw::timer::GenericTimer;
    use spl_shim::hw::uart::Uart;
    use spl_shim::hw::usdhc::Usdhc;
    use spl_shim::hw::watchdog::Watchdog;
    use test_firmware::hw::semihosting;

    /// Watchdog timeout while the test runs: long enough for the 2 MiB read (≈ 1 s in QEMU,
    /// qemu-imx8mp.md §6) between two services.
    const WATCHDOG_TIMEOUT_MS: u32 = 10_000;

    /// Largest read: 2 MiB (4096 blocks), the timing figure of qemu-imx8mp.md §6.
    const BIG_READ_BLOCKS: usize = 4096;

    /// Reads `(lba, blocks, max blocks per CMD18)`: CMD17 single blocks, CMD18 of several
    /// sizes, one read split into several commands (64-block cap: 250 blocks = 64+64+64+58),
    /// and the 2 MiB read serviced with the watchdog.
    const READS: &[(u64, usize, u32)] = &[
        (0, 1, 65_535),
        (5, 1, 65_535),
        (1, 8, 65_535),
        (3, 37, 65_535),
        (100, 250, 64),
    ];

    /// Address of the mode word (DRAM start + 255 MiB, inside QEMU's `-m 1G`).
    pub const MODE_ADDR: u64 = BOARD.memory.dram.start + 0x0FF0_0000;
    /// Mode word value selecting the fault test.
    const MODE_FAULT: u32 = 0xFA17_0001;

    /// Called by the entry code (`spl_shim::arch`) on the boot core with a stack and a zeroed
    /// BSS.
    // SAFETY: `shim_main` is defined once in this binary and only the entry assembly calls
    // it, with the stack set up and BSS cleared, as the C ABI expects.
    #[unsafe(no_mangle)]
    extern "C" fn shim_main() -> ! {
        let mut con = Uart::console();
        con.init(&BOARD.console);
        let _ = writeln!(
            con,
            "hw-selftest: board {} ({})",
            BOARD.name, BOARD.description
        );
        // SAFETY: MODE_ADDR lies in the board's DRAM (first 256 MiB), RAM that needs no set-up
        // in QEMU; an aligned volatile read of a u32 there has no side effects.
        let mode = unsafe { core::ptr::read_volatile(MODE_ADDR as *const u32) };
        if mode == MODE_FAULT {
            fault_test(&mut con);
        }
        match run(&mut con) {
            Ok(()) => {
                let _ = writeln!(con, "hw-selftest: PASS");
                con.flush();
                semihosting::exit(0)
            }
            Err(e) => {
                let _ = writeln!(con, "hw-selftest: FAIL: {e}");
                con.flush();
                semihosting::exit(1)
            }
        }
    }

    /// Arms the watchdog (1 s) and reads one byte past the end of DRAM: a synchronous external
    /// abort in QEMU (qemu-imx8mp.md §2) that the vectors must report before the watchdog
    /// resets the SoC.
    fn fault_test(con: &mut Uart) -> ! {
        let mut wdog = Watchdog::board();
        let timeout = wdog.enable(1000);
        let addr = BOARD.memory.dram.end();
        let _ = writeln!(con, "fault-test: watchdog {timeout} ms");
        let _ = writeln!(con, "fault-test: reading {addr:#x}");
        con.flush();
        // SAFETY: deliberately invalid: the address is past the end of DRAM and the read is
        // expected to abort into the EL3 vectors, which never return here.
        let v = unsafe { core::ptr::read_volatile(addr as *const u8) };
        let _ = writeln!(
            con,
            "hw-selftest: FAIL: no abort reading {addr:#x} (read {v:#x})"
        );
        con.flush();
        semihosting::exit(1)
    }

    /// Why the self-test failed.
    enum Failure {
        /// A driver call failed.
        Media(&'static str, MediaError),
        /// A check on a result failed.
        Check(&'static str),
    }

    impl core::fmt::Display for Failure {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self {
                Failure::Media(what, e) => write!(f, "{what}: {e}"),
                Failure::Check(what) => f.write_str(what),
            }
        }
    }

    fn run(con: &mut Uart) -> Result<(), Failure> {
        let mut timer = GenericTimer::new();
        let _ = writeln!(con, "timer: CNTFRQ {} Hz", timer.frequency_hz());
        let t0 = timer.ticks();
        timer.delay_ms(10);
        let waited = timer.micros_since(t0);
        let _ = writeln!(con, "timer: delay_ms(10) took {waited} us");
        if waited < 10_000 {
            return Err(Failure::Check("delay_ms(10) returned early"));
        }

        let mut wdog = Watchdog::board();
        let timeout = wdog.enable(WATCHDOG_TIMEOUT_MS);
        let _ = writeln!(
            con,
            "watchdog: armed, timeout {timeout} ms, enabled {}",
            wdog.is_enabled()
        );

        // SAFETY: the only handle on the boot uSDHC in this program.
        let mut sd = unsafe { Usdhc::board() };
        let t0 = timer.ticks();
        let card = sd
            .init()
            .map_err(|e| Failure::Media("card initialisation", e))?;
        let _ = writeln!(
            con,
            "card: {} blocks={} rca={:#06x} ocr={:#010x} init_us={}",
            card.kind.name(),
            card.blocks,
            card.rca,
            card.ocr,
            timer.micros_since(t0)
        );
        if sd.block_count() != card.blocks {
            return Err(Failure::Check(
                "block_count() differs from the CSD capacity",
            ));
        }
        wdog.service();

        // SAFETY: DRAM (BOARD.memory.dram) is RAM that nothing else uses while the self-test
        // runs (no images are loaded); 2 MiB from its start lie inside it on both boards.
        let buf: &mut [u8] = unsafe {
            core::slice::from_raw_parts_mut(
                BOARD.memory.dram.start as *mut u8,
                BIG_READ_BLOCKS * size_of::<Sector>(),
            )
        };

        for &(lba, blocks, cap) in READS {
            sd.set_max_blocks_per_command(cap);
            read_and_report(
                con,
                &mut sd,
                &timer,
                lba,
                &mut buf[..blocks * size_of::<Sector>()],
                None,
            )?;
            wdog.service();
        }
        sd.set_max_blocks_per_command(spl_shim::hw::usdhc::MAX_BLOCKS_PER_COMMAND);
        read_and_report(con, &mut sd, &timer, 0, buf, Some(&mut wdog))?;
        wdog.service();
        // The last two blocks of the card.
        let last = card.blocks.saturating_sub(2);
        read_and_report(
            con,
            &mut sd,
            &timer,
            last,
            &mut buf[..2 * size_of::<Sector>()],
            None,
        )?;

        out_of_range(&mut sd, card.blocks, buf)?;
        let _ = writeln!(con, "out-of-range: ok");
        sd.check_transfer_state()
            .map_err(|e| Failure::Media("CMD13 after the reads", e))?;
        let _ = writeln!(con, "card state after reads: TRAN");
        wdog.service();

        let cases = copy_check(buf)?;
        let _ = writeln!(con, "copy: ok ({cases} cases)");
        Ok(())
    }

    /// `hw::copy::copy_image` at every source and destination offset modulo 16 and lengths
    /// around its 64-byte blocks: the destination equals the source and the bytes on either
    /// side stay untouched. Returns the number of cases.
    fn copy_check(buf: &mut [u8]) -> Result<usize, Failure> {
        const LENS: [usize; 10] = [0, 1, 15, 63, 64, 65, 127, 128, 200, 1000];
        const GUARD: usize = 32;
        const SENTINEL: u8 = 0xEE;
        let (src, dst) = buf.split_at_mut(4096);
        for (i, b) in src.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        let mut cases = 0;
        for so in 0..16 {
            for d in 0..16 {
                for len in LENS {
                    let region = &mut dst[..GUARD + d + len + GUARD];
                    region.fill(SENTINEL);
                    let at = GUARD + d;
                    // SAFETY: `src[so..so + len]` and `region[at..at + len]` lie inside two
                    // disjoint slices of the self-test's DRAM buffer.
                    unsafe {
                        spl_shim::hw::copy::copy_image(
                            region.as_mut_ptr().add(at),
                            src.as_ptr().add(so),
                            len,
                        );
                    }
                    if region[at..at + len] != src[so..so + len] {
                        return Err(Failure::Check(
                            "copy_image: the copy differs from the source",
                        ));
                    }
                    if region[..at]
                        .iter()
                        .chain(&region[at + len..])
                        .any(|&b| b != SENTINEL)
                    {
                        return Err(Failure::Check("copy_image wrote outside its destination"));
                    }
                    cases += 1;
                }
            }
        }
        Ok(cases)
    }

    /// Reads `buf.len()` bytes at `lba`, prints their SHA-256 and the read time.
    fn read_and_report(
        con: &mut Uart,
        sd: &mut Usdhc,
        timer: &GenericTimer,
        lba: u64,
        buf: &mut [u8],
        watchdog: Option<&mut Watchdog>,
    ) -> Result<(), Failure> {
        buf.fill(0xEE);
        let t0 = timer.ticks();
        match watchdog {
            Some(w) => sd.read_blocks_serviced(lba, buf, w),
            None => sd.read_blocks(lba, buf),
        }
        .map_err(|e| Failure::Media("read", e))?;
        let us = timer.micros_since(t0);
        let digest = Sha256::digest(&*buf);
        let _ = write!(
            con,
            "read: lba={lba} blocks={} sha256=",
            buf.len() / size_of::<Sector>()
        );
        for b in digest.iter() {
            let _ = write!(con, "{b:02x}");
        }
        let _ = writeln!(con, " us={us}");
        Ok(())
    }

    /// Reads past the end and malformed lengths must be refused with `OutOfRange`.
    fn out_of_range(sd: &mut Usdhc, blocks: u64, buf: &mut [u8]) -> Result<(), Failure> {
        let cases: [(u64, usize); 4] = [
            (blocks - 1, 2 * size_of::<Sector>()),
            (blocks, size_of::<Sector>()),
            (0, 100),
            (u64::MAX, size_of::<Sector>()),
        ];
        for (lba, len) in cases {
            match sd.read_blocks(lba, &mut buf[..len]) {
                Err(MediaError::OutOfRange { lba: l, len: n }) if l == lba && n == len => {}
                Err(e) => return Err(Failure::Media("out-of-range read gave another error", e)),
                Ok(()) => return Err(Failure::Check("out-of-range read succeeded")),
            }
        }
        // An empty buffer is refused too.
        match sd.read_blocks(0, &mut []) {
            Err(MediaError::OutOfRange { .. }) => Ok(()),
            _ => Err(Failure::Check("empty read not refused")),
        }
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let mut con = Uart::console();
        let _ = writeln!(con, "hw-selftest: FAIL: panic: {info}");
        con.flush();
        semihosting::exit(101)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "hw-selftest is firmware: build it with `cargo build --profile firmware -p test-firmware \
         --target aarch64-unknown-none --bin hw-selftest` and run it in QEMU (see its docs)"
    );
    std::process::exit(2);
}
