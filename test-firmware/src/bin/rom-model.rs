//! A model of the i.MX 8M boot ROM for the simulation (issue 15; design.md §5.1): QEMU's
//! `imx8mp-evk` has no boot ROM (docs/qemu-imx8mp.md §11), so the harness starts this program
//! at every reset (`-device loader,file=rom-model,cpu-num=0`) instead of the shim. It judges
//! the card as the ROM does and starts the SPL bytes it holds:
//!
//! 1. Reads the simulated PERSIST_SECONDARY_BOOT word (`BOARD.rom.persist`, in OCRAM, which
//!    keeps its contents across a watchdog reset and is zero on a cold start).
//! 2. Runs `boot_core::rom::choose` (the SPL half of the one judgement, with the software HAB
//!    and the simulated fuses): clear, the primary SPL; set, the SIT and the secondary SPL.
//! 3. Primary failed on a cold start: sets the bit and resets through the watchdog, as the
//!    8M Mini ROM does (psb.rst, imx8m-facts.md §3.3).
//! 4. Starts an SPL: copies it to `IVT.self` in OCRAM, writes the event log (pointer at the
//!    ROM page's 0x9E0) and the ROM API table (0x980, `query_boot_infor` answering `BT_STAGE`
//!    and `BT_DEV`), and jumps to `IVT.entry` at EL3 with caches off.
//! 5. No SPL can be started: prints `rom: serial download: …` (the ROM's USB fallback, which
//!    QEMU cannot offer) and stops; the harness reports it.
//!
//! Linked at `boards::qemu_imx8mp::ROM_MODEL` (`linker/rom-model.ld`). On a host target this
//! binary only explains how to build it.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use core::fmt::Write;

    use boards::BootCfg;
    use boards::qemu_imx8mp::{BOARD, ROM_MODEL_SCRATCH, ROM_PAGE};
    use boot_core::boot::Hardware;
    use boot_core::emmc;
    use boot_core::examine::{Context, Rules, Security};
    use boot_core::platform::WatchdogService;
    use boot_core::policy::Slot;
    use boot_core::rom::{self, RomStart};
    use imx_hab::hab::Fuses;
    use imx_hab::hab::software::SoftwareHab;
    use spl_shim::arch;
    use spl_shim::hw::medium::{self, Medium, Opened};
    use spl_shim::hw::timer::GenericTimer;
    use spl_shim::hw::uart::Uart;
    use spl_shim::hw::watchdog::Watchdog;

    /// The log inside the ROM page (128 words).
    const LOG_ADDR: u64 = ROM_PAGE.start + 0xA00;
    /// The answers of `query_boot_infor`: `BT_STAGE` at +0, `BT_DEV` at +4.
    const ANSWERS_ADDR: u64 = ROM_PAGE.start + 0xE00;
    /// The ROM's own data in OCRAM: the simulated fuse block, the cell and the ROM page; an SPL
    /// placed over it is not started (*inference*, the RM's OCRAM map is not in our sources).
    const RESERVED: boards::Region = boards::Region::new(0x0090_0000, ROM_PAGE.end() - 0x0090_0000);
    /// `ROM_API_OKAY` (imx8m-facts.md §3.5).
    const ROM_API_OKAY: u32 = 0xF0;
    /// What the model answers to a query it does not know or a wrong `xor` (*inference*: the
    /// ROM's failure value is not in our sources; anything but 0xF0 is a failure to callers).
    const ROM_API_FAILED: u32 = 0x33;

    fn write32(addr: u64, v: u32) {
        // SAFETY: every address written is inside the ROM page or the simulated persist word
        // (boards test: inside OCRAM, clear of the cell, the fuses and every image), 4-byte
        // aligned; nothing else runs.
        unsafe { (addr as *mut u32).write_volatile(v) }
    }

    fn read32(addr: u64) -> u32 {
        // SAFETY: as `write32`: OCRAM words of the ROM page, aligned.
        unsafe { (addr as *const u32).read_volatile() }
    }

    /// The simulated fuse block (`FuseSource::SimulatedBlock`): the HAB fuses and BOOT_CFG.
    fn fuses() -> (Fuses, BootCfg) {
        let boards::FuseSource::SimulatedBlock { addr } = BOARD.fuses else {
            return (Fuses::open_with([0; 32]), BootCfg::SD);
        };
        let mut block = [0u8; 64];
        for (i, b) in block.iter_mut().enumerate() {
            // SAFETY: the 64-byte block QEMU's loader plants in OCRAM; read only.
            *b = unsafe { ((addr as usize + i) as *const u8).read_volatile() };
        }
        (
            Fuses::from_simulated_block(&block),
            BootCfg::from_simulated_block(&block),
        )
    }

    struct NoService;

    /// The flow's hardware over `disk` with the model's HAB, clock and console.
    fn hardware<'a, D>(
        disk: &'a mut D,
        hab: &'a mut SoftwareHab,
        clock: &'a GenericTimer,
        watchdog: &'a mut NoService,
        console: &'a mut Uart,
    ) -> Hardware<'a, D, SoftwareHab, GenericTimer, NoService> {
        Hardware {
            disk,
            hab,
            clock,
            watchdog,
            console,
        }
    }

    impl WatchdogService for NoService {
        fn service(&mut self) {}
    }

    /// `query_boot_infor(type, *info, xor)` of the ROM API (imx8m-facts.md §3.5).
    extern "C" fn query_boot_infor(info_type: u32, info: *mut u32, xor: u32) -> u32 {
        if xor != info_type ^ (info as u64 as u32) || info.is_null() {
            return ROM_API_FAILED;
        }
        let answer = match info_type {
            5 => read32(ANSWERS_ADDR),
            2 => read32(ANSWERS_ADDR + 4),
            _ => return ROM_API_FAILED,
        };
        // SAFETY: the caller passes a pointer to a u32 it owns (the ROM API contract).
        unsafe { info.write_volatile(answer) };
        ROM_API_OKAY
    }

    /// The persist word: address, bit.
    fn persist() -> (u64, u32) {
        BOARD
            .rom
            .persist
            .map_or((ROM_PAGE.start + 0xF00, 1 << 30), |p| (p.addr, p.mask))
    }

    #[unsafe(no_mangle)]
    extern "C" fn shim_main() -> ! {
        let mut con = Uart::console();
        con.init(&BOARD.console);
        let (persist_addr, mask) = persist();
        let persist = read32(persist_addr) & mask != 0;
        let _ = writeln!(
            con,
            "\r\nrom: i.MX 8M boot ROM model (simulation), PERSIST_SECONDARY_BOOT {}",
            if persist { "set" } else { "clear" }
        );
        // The log pointer is rewritten below; a stale one from before the reset must not stay.
        write32(BOARD.rom.log_pointer, 0);
        let (fuses, boot_cfg) = fuses();
        let rules = Rules::of(&fuses);
        let mut hab = SoftwareHab { fuses };
        let clock = GenericTimer::new();
        // SAFETY: the scratch region is DRAM reserved for the model (boards test: inside DRAM,
        // clear of the model's image); this is the only reference to it.
        let buf = unsafe {
            core::slice::from_raw_parts_mut(
                ROM_MODEL_SCRATCH.start as *mut u8,
                ROM_MODEL_SCRATCH.size as usize,
            )
        };
        let (mut medium, opened) = match medium::open(&BOARD, boot_cfg) {
            Ok(m) => m,
            Err(e) => {
                let _ = writeln!(con, "rom: boot device: {e}");
                serial_download(&mut con)
            }
        };
        let cross = boot_cfg.rom_cross_fallback();
        let mut from = "";
        let start = {
            let ctx = Context {
                board: &BOARD,
                security: rules.security,
                rollback: rules.rollback,
                slot_bytes: BOARD.media.slot_size(BOARD.media.standard_first_sector),
                shim: &[],
            };
            let mut console = Uart::console();
            let mut wd = NoService;
            match &mut medium {
                Medium::Sd(sd) => {
                    let mut hw = hardware(sd, &mut hab, &clock, &mut wd, &mut console);
                    rom::choose(&mut hw, &ctx, buf, persist)
                }
                Medium::EmmcUser(emmc) => {
                    let _ = writeln!(con, "rom: eMMC, boot partitions not enabled: user area");
                    let mut user = emmc.user();
                    let mut hw = hardware(&mut user, &mut hab, &clock, &mut wd, &mut console);
                    rom::choose(&mut hw, &ctx, buf, persist)
                }
                Medium::EmmcBoot { emmc, enabled, .. } => {
                    let config = match opened {
                        Opened::Emmc(i) => i.partition_config.0,
                        Opened::Sd { .. } => 0,
                    };
                    let _ = writeln!(
                        con,
                        "rom: eMMC EXT_CSD[179] {config:#04x}: {} enabled, cross-partition \
                         fallback {}",
                        enabled.name(),
                        if cross { "on" } else { "off" }
                    );
                    let mut hw = hardware(emmc, &mut hab, &clock, &mut wd, &mut console);
                    let r = emmc::choose(&mut hw, &BOARD, rules, *enabled, cross, buf, persist);
                    from = r.partition.name();
                    r.start
                }
            }
        };
        match start {
            RomStart::Boot {
                slot,
                copy_offset,
                layout,
                hab,
                ..
            } => {
                let name = slot_name(slot);
                if !rom::placement_ok(&BOARD, &layout, RESERVED) {
                    let _ = writeln!(
                        con,
                        "rom: {name} SPL: {:#x} bytes at {:#x} do not fit the ROM's OCRAM",
                        layout.len, layout.self_addr
                    );
                    serial_download(&mut con);
                }
                write_log(
                    rules.security == Security::Closed,
                    slot,
                    hab,
                    layout.entry,
                    &medium,
                );
                let sep = if from.is_empty() { "" } else { " " };
                let _ = writeln!(
                    con,
                    "rom: starting the {name} SPL from {from}{sep}{copy_offset:#x}: {:#x} bytes \
                     at {:#x}, entry {:#x}, HAB {hab:#04x}",
                    layout.len, layout.self_addr, layout.entry
                );
                con.flush();
                // SAFETY: the SPL was read into `buf` (at least `len` bytes); the destination
                // lies in OCRAM clear of the ROM's data and of this program (checked above,
                // which is in DRAM), so the ranges are disjoint.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        buf.as_ptr(),
                        layout.self_addr as *mut u8,
                        layout.len as usize,
                    );
                }
                jump(layout.entry)
            }
            RomStart::WarmResetToSecondary { primary } => {
                let _ = writeln!(con, "rom: primary SPL not started: {primary}");
                let _ = writeln!(con, "rom: PERSIST_SECONDARY_BOOT set; warm reset");
                con.flush();
                write32(persist_addr, read32(persist_addr) | mask);
                Watchdog::board().reset_now()
            }
            RomStart::SerialDownload {
                primary,
                sit,
                secondary,
            } => {
                if let Some(p) = primary {
                    let _ = writeln!(con, "rom: primary SPL not started: {p}");
                }
                let _ = writeln!(con, "rom: SIT: {}", sit.name());
                if let Some(s) = secondary {
                    let _ = writeln!(con, "rom: secondary SPL not started: {s}");
                }
                serial_download(&mut con)
            }
        }
    }

    fn slot_name(slot: Slot) -> &'static str {
        match slot {
            Slot::Primary => "primary",
            Slot::Secondary => "secondary",
        }
    }

    /// The event log, its pointer, the ROM API table and the query answers.
    fn write_log(closed: bool, slot: Slot, hab: u8, entry: u64, medium: &Medium) {
        let words = rom::log_of_start(closed, slot, hab, entry as u32);
        for i in 0..rom::LOG_WORDS {
            write32(LOG_ADDR + 4 * i as u64, words.get(i).copied().unwrap_or(0));
        }
        write32(BOARD.rom.log_pointer, LOG_ADDR as u32);
        write32(ANSWERS_ADDR, rom::boot_stage(slot));
        // BT_DEV: type (1 SD, 2 MMC) in bits 31..16, instance (0-based: USDHC2 = 1) in 15..8
        // (imx8m-facts.md §3.5).
        let (kind, instance) = match medium {
            Medium::Sd(_) => (1, BOARD.boot_usdhc.instance),
            _ => (2, BOARD.emmc.map_or(1, |e| e.instance)),
        };
        write32(
            ANSWERS_ADDR + 4,
            (kind << 16) | (u32::from(instance.saturating_sub(1)) << 8),
        );
        if let Some(table) = BOARD.rom.api_table {
            // Version and tag: 0 (their values are not in our sources); download_image: none.
            let f = query_boot_infor as *const () as u64;
            for (off, v) in [
                (0, 0),
                (4, 0),
                (8, 0),
                (0xC, 0),
                (0x10, f as u32),
                (0x14, (f >> 32) as u32),
            ] {
                write32(table + off, v);
            }
        }
    }

    /// Serial download: what the ROM does when no SPL can be started. Prints the harness's
    /// marker and stops for good (no watchdog is armed).
    fn serial_download(con: &mut Uart) -> ! {
        let words = [u32::from(rom::event::SERIAL_DOWNLOAD) << 24, 0];
        for (i, w) in words.iter().enumerate() {
            write32(LOG_ADDR + 4 * i as u64, *w);
        }
        write32(BOARD.rom.log_pointer, LOG_ADDR as u32);
        let _ = writeln!(
            con,
            "rom: serial download: no SPL can be started (the ROM waits for USB; halted)"
        );
        con.flush();
        arch::halt()
    }

    /// Starts the SPL at EL3, x0 = 0, as the ROM does.
    fn jump(entry: u64) -> ! {
        // SAFETY: `entry` lies inside the SPL just copied (`placement_ok`: entry >= IVT.self,
        // `spl_layout`: entry inside the image). Caches and the MMU are off; the barriers make
        // the copy visible to instruction fetch. Never returns.
        unsafe {
            core::arch::asm!(
                "dsb sy",
                "ic iallu",
                "dsb sy",
                "isb",
                "mov x0, xzr",
                "br x9",
                in("x9") entry,
                options(noreturn)
            );
        }
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let mut console = Uart::console();
        let _ = writeln!(console, "\r\nrom: panic: {info}");
        arch::halt()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "rom-model is firmware: build it with `cargo build --profile firmware -p test-firmware \
         --bin rom-model --target aarch64-unknown-none` (the harness does: xtask::sim::SimKit)"
    );
    std::process::exit(2);
}
