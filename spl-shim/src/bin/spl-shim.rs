//! The shim firmware for `aarch64-unknown-none` (design.md §5).
//!
//! Entry (`spl_shim::arch`, linked in from the library): park secondary cores, FP/SIMD on,
//! exception vectors, stack, BSS. Then [`firmware::shim_main`]: console, watchdog, SD card, the
//! boot flow of [`boot_core::boot`] over them, the cell, and the handoff. On a host target this
//! binary only explains how to build it.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use boards::{BootCfg, FuseSource, HabBackend, Region};
    use boot_core::boot::{self, Bootable, Memory};
    use boot_core::cell::{BootRecord, CELL_SIZE, RomInfo, ShimVersion, VersionStamp, reason_name};
    use boot_core::examine::{Rules, Security};
    use boot_core::log::Text;
    use boot_core::platform::{CellStore, Clock, WatchdogService};
    use boot_core::shim_log;
    use spl_shim::arch;
    use spl_shim::hw::BOARD;
    use spl_shim::hw::medium::{self, Medium, OpenError, Opened};
    use spl_shim::hw::timer::GenericTimer;
    use spl_shim::hw::uart::Uart;
    use spl_shim::hw::usdhc::CardKind;
    use spl_shim::hw::watchdog::Watchdog;

    /// Watchdog timeout while the shim works and after it hands off: long enough for a 2 MiB PIO
    /// read under QEMU (about 1 s, qemu-imx8mp.md §6) many times over, short enough that a hung
    /// boot resets the board. WDE is write-once: the next stage inherits it and must service it
    /// (U-Boot's and Linux's imx2_wdt drivers do).
    const WATCHDOG_TIMEOUT_MS: u32 = 60_000;

    unsafe extern "C" {
        static _start: u8;
        static __image_end: u8;
        static __bss_start: u8;
        static __stack_top: u8;
    }

    /// The version stamp: [`VersionStamp::MARKER`] then the version word the shim
    /// reports (console, cell). The crate version unless the image builder stamped another
    /// before signing (`cargo xtask image --shim-version`), so an image's SPL says which build
    /// it is and the signature covers that.
    #[used]
    static VERSION_STAMP: VersionStamp = VersionStamp::CURRENT;

    /// The version this image reports: the stamp, read volatile (the builder may have patched
    /// it in the image after compilation).
    fn version() -> ShimVersion {
        // SAFETY: a read of this program's own static, aligned; volatile so that the compiler
        // does not fold in the compile-time value.
        ShimVersion::from_u32(unsafe { core::ptr::read_volatile(&VERSION_STAMP.version) })
    }

    /// The memory the running shim occupies: its image (code, rodata, data) and its BSS and
    /// stack, from the linker script's symbols (linker/sections.ld).
    fn shim_regions() -> [Region; 2] {
        let addr = |s: &u8| s as *const u8 as u64;
        // SAFETY: only the addresses of linker-defined symbols are taken; nothing is read.
        let (start, image_end, bss, stack_top) = unsafe {
            (
                addr(&_start),
                addr(&__image_end),
                addr(&__bss_start),
                addr(&__stack_top),
            )
        };
        [
            Region::new(start, image_end.saturating_sub(start)),
            Region::new(bss, stack_top.saturating_sub(bss)),
        ]
    }

    /// The boot cell in OCRAM (design.md §6; `BOARD.cell_addr`).
    struct OcramCell;

    impl CellStore for OcramCell {
        fn store(&mut self, cell: &[u8; CELL_SIZE]) {
            let base = BOARD.cell_addr as *mut u32;
            for (i, word) in cell.chunks_exact(4).enumerate() {
                let w = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                // SAFETY: the board's cell address is 64 bytes of OCRAM reserved for the cell,
                // 4-byte aligned, outside the shim image, BSS and stack (boards crate tests,
                // linker scripts). Volatile: Linux reads it through /dev/mem later.
                unsafe { base.add(i).write_volatile(w) };
            }
        }
    }

    /// The 64-byte simulated fuse block (`FuseSource::SimulatedBlock`, qemu-imx8mp contract).
    fn simulated_block(addr: u64) -> [u8; 64] {
        let mut block = [0u8; 64];
        for (i, b) in block.iter_mut().enumerate() {
            // SAFETY: the board places the block in OCRAM (0x900000, planted by QEMU's loader),
            // readable and outside anything the shim writes.
            *b = unsafe { ((addr as usize + i) as *const u8).read_volatile() };
        }
        block
    }

    /// The FIT window as memory (design.md §5: the signed blob is read to its load address).
    fn fit_window() -> &'static mut [u8] {
        let w = BOARD.memory.fit_window;
        // SAFETY: the board's FIT window is DRAM (boards crate test: inside `memory.dram`),
        // not used by the shim's image, BSS or stack, and nothing else runs; this is the only
        // reference made to it.
        unsafe { core::slice::from_raw_parts_mut(w.start as *mut u8, w.size as usize) }
    }

    /// Called by the entry code on the boot core with a stack and a zeroed BSS.
    // SAFETY: `shim_main` is defined once per binary and only the entry assembly calls it,
    // with the stack set up and BSS cleared, as the C ABI expects.
    #[unsafe(no_mangle)]
    extern "C" fn shim_main() -> ! {
        let clock = GenericTimer::new();
        let entry_ticks = clock.ticks();
        #[cfg(defmt_log)]
        spl_shim::hw::log::set_start(entry_ticks);
        let mut console = Uart::console();
        console.init(&BOARD.console);
        let mut wdog = Watchdog::board();
        let timeout = wdog.enable(WATCHDOG_TIMEOUT_MS);
        // First, before anything overwrites OCRAM or DRAM: what the ROM did.
        let rom = spl_shim::hw::rom::take(BOARD);
        let fuses = read_fuses();
        report_start(&mut console, timeout, &rom, fuses.0);

        let boot_cfg = boot_cfg();
        let shim = shim_regions();
        let outcome = match medium::open(BOARD, boot_cfg) {
            Ok((mut medium, opened)) => {
                report_medium(&mut console, &medium, &opened);
                run_flow(
                    &mut medium,
                    &mut wdog,
                    &clock,
                    &mut console,
                    &shim,
                    rom,
                    fuses,
                )
            }
            Err(e) => {
                report_open_error(&mut console, &e, boot_cfg);
                None
            }
        };
        let Some((mut record, bootable, timings)) = outcome else {
            // No card: record "stopped before deciding" (reason 0) so Linux sees why.
            let record = BootRecord {
                reason: None,
                primary: boot_core::cell::CopyReport::NotExamined,
                secondary: boot_core::cell::CopyReport::NotExamined,
                sit: boot_core::cell::SitReport {
                    status: boot_core::cell::SitStatus::NotRead,
                    first_sector: 0,
                },
                rom,
                shim_version: version(),
                booted: None,
                rollback_minimum: None,
            };
            OcramCell.store(&record.encode());
            shim_log!(error, console, "nothing bootable: no boot medium; halting");
            console.flush();
            arch::halt()
        };
        record.shim_version = version();
        OcramCell.store(&record.encode());
        match bootable {
            Some(b) => handoff(&b, &mut console, &mut wdog, &clock, entry_ticks, &timings),
            None => {
                let reason = record.reason.map_or("unknown", reason_name);
                shim_log!(
                    error,
                    console,
                    "nothing bootable ({=str}); cell written, halting (the watchdog resets the board)",
                    reason
                );
                console.flush();
                arch::halt()
            }
        }
    }

    type FlowResult = Option<(BootRecord, Option<Bootable>, boot::timing::Timings)>;

    /// What the fuses say: the rules of the judgement (security, rollback minimum) and, from a
    /// simulated fuse block, the fuse words the software HAB checks against.
    fn read_fuses() -> (Rules, Option<imx_hab::hab::Fuses>) {
        match BOARD.fuses {
            FuseSource::SimulatedBlock { addr } => {
                let fuses = imx_hab::hab::Fuses::from_simulated_block(&simulated_block(addr));
                (Rules::of(&fuses), Some(fuses))
            }
            FuseSource::Ocotp { base } => {
                let sec_config = spl_shim::hw::ocotp::sec_config(base);
                let security = if sec_config & imx_hab::hab::Fuses::SEC_CONFIG_CLOSED != 0 {
                    Security::Closed
                } else {
                    Security::Open
                };
                let rollback = spl_shim::hw::ocotp::rollback(base);
                (Rules { security, rollback }, None)
            }
        }
    }

    /// Runs the boot flow with the board's HAB backend; returns the encoded cell, the handoff
    /// and the timings.
    fn run_flow(
        disk: &mut Medium,
        wdog: &mut Watchdog,
        clock: &GenericTimer,
        console: &mut Uart,
        shim: &[Region],
        rom: RomInfo,
        (rules, fuses): (Rules, Option<imx_hab::hab::Fuses>),
    ) -> FlowResult {
        let mem = Memory {
            window: fit_window(),
            window_base: BOARD.memory.fit_window.start,
            shim,
        };
        let outcome = match (BOARD.hab, fuses) {
            (HabBackend::Software, Some(fuses)) => {
                let mut hab = imx_hab::hab::software::SoftwareHab { fuses };
                run_with(&mut hab, rules, disk, wdog, clock, console, mem, rom)
            }
            (HabBackend::Rom { rvt_addr }, _) => {
                // SAFETY: on this board the RVT at `rvt_addr` is the HAB ROM's
                // (imx8m-facts.md §4.1), readable, and nothing else calls the HAB API.
                let mut hab = unsafe {
                    imx_hab::hab::rom::RomHab::new(rvt_addr as usize, imx_hab::hab::rom::CID_UBOOT)
                };
                run_with(&mut hab, rules, disk, wdog, clock, console, mem, rom)
            }
            (HabBackend::Software, None) => {
                shim_log!(
                    error,
                    console,
                    "board error: software HAB needs a simulated fuse block"
                );
                return None;
            }
        };
        Some((outcome.record, outcome.bootable, outcome.timings))
    }

    /// The boot flow with one HAB backend.
    #[allow(clippy::too_many_arguments)]
    fn run_with<A: imx_hab::hab::Authenticator>(
        hab: &mut A,
        rules: Rules,
        disk: &mut Medium,
        wdog: &mut Watchdog,
        clock: &GenericTimer,
        console: &mut Uart,
        mem: Memory<'_>,
        rom: RomInfo,
    ) -> boot::Outcome {
        // The defmt build logs through the global logger; the flow's text console is unused.
        #[cfg(defmt_log)]
        let console = {
            let _ = console;
            &mut NoText
        };
        medium::run(BOARD, disk, wdog, hab, clock, console, rules, mem, rom)
    }

    /// BOOT_CFG: the simulated fuse block's word (boards `BootCfg`); a board reading real
    /// fuses boots from its SD card (its BOOT_CFG is not read yet).
    fn boot_cfg() -> BootCfg {
        match BOARD.fuses {
            FuseSource::SimulatedBlock { addr } => {
                BootCfg::from_simulated_block(&simulated_block(addr))
            }
            FuseSource::Ocotp { .. } => BootCfg::SD,
        }
    }

    /// Why no medium was opened.
    fn report_open_error(console: &mut Uart, e: &OpenError, cfg: BootCfg) {
        let instance = match cfg.device() {
            Ok(boards::BootDevice::Emmc(_)) => BOARD.emmc.map_or(0, |u| u.instance),
            _ => BOARD.boot_usdhc.instance,
        };
        match e {
            OpenError::Media(m) => shim_log!(error, console, "uSDHC{}: {}", instance, Text(m)),
            OpenError::UnsupportedDevice(v) => shim_log!(
                error,
                console,
                "boot medium: BOOT_CFG boot device {:#x} is not supported",
                *v
            ),
            OpenError::UndefinedBootCfg(w, b) => shim_log!(
                error,
                console,
                "boot medium: BOOT_CFG {=u32:#010x} sets bits {=u32:#010x} the simulation does not define",
                *w,
                *b
            ),
            OpenError::NoEmmc => shim_log!(
                error,
                console,
                "boot medium: BOOT_CFG selects eMMC but the board has none"
            ),
            OpenError::ReservedBootEnable(v) => shim_log!(
                error,
                console,
                "boot medium: EXT_CSD[179] BOOT_PARTITION_ENABLE {} is reserved",
                *v
            ),
        }
    }

    /// One line on the medium opened.
    fn report_medium(console: &mut Uart, medium: &Medium, opened: &Opened) {
        match (medium, opened) {
            (_, Opened::Sd { blocks, sdhc }) => shim_log!(
                info,
                console,
                "uSDHC{=u8}: {=istr} card, {=u64} blocks",
                BOARD.boot_usdhc.instance,
                if *sdhc {
                    CardKind::Sdhc
                } else {
                    CardKind::Sdsc
                }
                .log_name(),
                *blocks
            ),
            (m, Opened::Emmc(i)) => {
                let instance = BOARD.emmc.map_or(0, |e| e.instance);
                let (area, layout) = match m {
                    Medium::EmmcBoot {
                        enabled, layout, ..
                    } => (enabled.name(), layout.name()),
                    _ => ("the user area", "AN12900"),
                };
                shim_log!(
                    info,
                    console,
                    "uSDHC{}: eMMC, {} user blocks, boot partitions {} blocks, EXT_CSD[179] {:#x}: booting {} (layout {})",
                    instance,
                    i.user_blocks,
                    i.boot_blocks,
                    i.partition_config.0,
                    area,
                    layout
                );
            }
        }
    }

    /// The first message, once the console, the watchdog, the ROM's report and the fuses are
    /// read: the banner, the watchdog, what the ROM said (the copy it started: the pairing rule
    /// starts there) and the part's rules. One frame in the defmt build.
    fn report_start(console: &mut Uart, watchdog_ms: u32, rom: &RomInfo, rules: Rules) {
        use boot_core::name;
        let started = match rom.started() {
            Some(slot) => slot.log_name(),
            None => name!("unknown (primary first)"),
        };
        let log = match rom.log {
            boot_core::cell::RomLog::NotRead => name!("not read"),
            boot_core::cell::RomLog::PrimaryBoot => name!("0x50"),
            boot_core::cell::RomLog::SecondaryBoot => name!("0x51"),
            boot_core::cell::RomLog::NoBootEvent => name!("without 0x50/0x51"),
        };
        let hab = match rom.hab {
            Some(0xF0) => name!("pass"),
            Some(0x33) => name!("fail"),
            Some(_) => name!("warning"),
            None => name!("unknown"),
        };
        let persist = match rom.persist_secondary {
            Some(true) => name!("set (cleared)"),
            Some(false) => name!("clear"),
            None => name!("unknown"),
        };
        let v = version();
        shim_log!(
            info,
            console,
            "imx-redundant-boot {=u16}.{=u8}.{=u8} on {=istr}\n\
             watchdog armed, {=u32} ms\n\
             ROM started the {=istr} SPL (log {=istr}, BT_STAGE {=u32:#x}, HAB {=istr}, persist \
             {=istr})\n\
             {=istr} part, rollback minimum {=u32}",
            v.major,
            v.minor,
            v.patch,
            spl_shim::hw::board_log_name(),
            watchdog_ms,
            started,
            log,
            rom.boot_stage,
            hab,
            persist,
            rules.security.log_name(),
            rules.rollback.minimum()
        );
    }

    /// The flow's text console in the defmt build: takes nothing, so that no `core::fmt`
    /// formatting is linked for it (its `write_fmt` does not format).
    #[cfg(defmt_log)]
    struct NoText;

    #[cfg(defmt_log)]
    impl core::fmt::Write for NoText {
        fn write_str(&mut self, _: &str) -> core::fmt::Result {
            Ok(())
        }

        fn write_fmt(&mut self, _: core::fmt::Arguments<'_>) -> core::fmt::Result {
            Ok(())
        }
    }

    /// Copies the configuration's images to their load addresses and jumps to the entry at EL3
    /// with x0 = 0 (design.md §5 step 4).
    fn handoff(
        b: &Bootable,
        console: &mut Uart,
        wdog: &mut Watchdog,
        clock: &GenericTimer,
        entry_ticks: u64,
        timings: &boot::timing::Timings,
    ) -> ! {
        let blob = BOARD.memory.fit_window.start + b.examined.fit.window_offset as u64;
        let copies_started = clock.ticks();
        for c in &b.examined.fit.plan.copies {
            // SAFETY: the plan checked every destination: inside one of the board's load
            // ranges (RAM), disjoint from the FIT blob, from the shim's image/BSS/stack and
            // from every other destination; the source lies inside the authenticated FIT in
            // the window. Nothing else runs.
            unsafe {
                spl_shim::hw::copy::copy_image(
                    c.dest as *mut u8,
                    (blob + c.src_offset) as *const u8,
                    c.len as usize,
                );
            }
        }
        let copy_ticks = clock.ticks().saturating_sub(copies_started);
        wdog.service();
        report_handoff(console, clock, entry_ticks, timings, copy_ticks, b, blob);
        console.flush();
        let entry = b.examined.fit.plan.entry.address;
        // SAFETY: `entry` lies inside an image just copied (checked by the plan). Caches and
        // the MMU are off (never enabled by the shim), so the copies are visible to instruction
        // fetch once the barriers complete; the I-cache is invalidated in case a previous stage
        // left it on. The jump never returns.
        unsafe {
            core::arch::asm!(
                "dsb sy",
                "ic iallu",
                "dsb sy",
                "isb",
                "mov x0, xzr",
                "mov x1, xzr",
                "mov x2, xzr",
                "mov x3, xzr",
                "br x9",
                in("x9") entry,
                options(noreturn)
            );
        }
    }

    /// The last message before the jump: the images copied, the boot-time figures (issue 4)
    /// from entry to handoff, split into media reads, SHA-256 over signed content, signature
    /// checks (the rest of authentication) and everything else, of which the image copies
    /// (`cargo xtask bench` parses this line); then the handoff. One frame in the defmt build.
    fn report_handoff(
        console: &mut Uart,
        clock: &GenericTimer,
        entry_ticks: u64,
        t: &boot::timing::Timings,
        copy_ticks: u64,
        b: &Bootable,
        blob: u64,
    ) {
        let total = clock.ticks().saturating_sub(entry_ticks);
        // A boot takes seconds at most: 32 bits hold 71 minutes of microseconds, 4 GiB.
        let n = |x: u64| u32::try_from(x).unwrap_or(u32::MAX);
        let us = |ticks| n(clock.micros(ticks));
        let loads = boot::handoff::LoadLines {
            copies: &b.examined.fit.plan.copies,
            blob,
        };
        shim_log!(
            info,
            console,
            "{}time entry-to-handoff {=u32} us: media read {=u32} us ({=u32} bytes), hashing \
             {=u32} us ({=u32} bytes), signatures {=u32} us, other {=u32} us (image copies \
             {=u32} us)\n\
             slot {=u8} handoff to {=u64:#x} ({=str}) at EL3",
            loads,
            us(total),
            us(t.read_ticks),
            n(t.read_bytes),
            us(t.hash_ticks),
            n(t.hash_bytes),
            us(t.signature_ticks()),
            us(total.saturating_sub(t.read_ticks + t.auth_ticks)),
            us(copy_ticks),
            b.slot as u8,
            b.examined.fit.plan.entry.address,
            b.examined.fit.plan.entry.image.as_str()
        );
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let mut console = Uart::console();
        shim_log!(error, console, "panic: {}", Text(info));
        console.flush();
        arch::halt()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "spl-shim is firmware: build it with `cargo build --profile firmware -p spl-shim \
         --target aarch64-unknown-none` (or `cargo xtask build-spl --board qemu-imx8mp`)"
    );
    std::process::exit(2);
}
