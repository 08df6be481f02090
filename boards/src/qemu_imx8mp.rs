//! QEMU's `imx8mp-evk` machine (QEMU >= 9.2), the CI board.
//!
//! Facts measured on QEMU 10.0 and recorded in `docs/qemu-imx8mp.md`; the board runs the
//! AN12900 media layout (design.md §3) because QEMU has no i.MX 8M Mini.

use crate::{
    AN12900_LAYOUT, Board, FuseSource, HabBackend, HabCapabilities, Medium, MemoryMap, PersistBit,
    Region, RomInterface, SignatureAlgorithm, Soc, Uart, Usdhc,
};

/// OCRAM: 0x900000-0x98FFFF, 576 KiB, both ends checked (qemu-imx8mp.md §2, `info mtree`).
pub const OCRAM: Region = Region::new(0x0090_0000, 576 * 1024);

/// DRAM at 0x40000000; 1 GiB because the simulation contract starts QEMU with `-m 1G`
/// (issue "spl-shim firmware", QEMU contract). Accesses above it abort (qemu-imx8mp.md §2).
pub const DRAM: Region = Region::new(0x4000_0000, 1 << 30);

/// SPL's FIT load buffer CONFIG_SPL_LOAD_FIT_ADDRESS = 0x44000000 (U-Boot `boot/Kconfig`,
/// imx8m-facts.md §2.3); 16 MiB reserved for the signed blob (a slot holds at most 2 MiB).
pub const FIT_WINDOW: Region = Region::new(0x4400_0000, 16 << 20);

/// Where FIT images may be copied: BL31 at 0x970000-0x98FFFF (TF-A `imx8mp/platform_def.h`
/// BL31_BASE/SIZE, imx8m-facts.md §7), DRAM below the FIT window (U-Boot proper at 0x40200000)
/// and DRAM above it.
pub const LOAD_RANGES: &[Region] = &[
    Region::new(0x0097_0000, 128 * 1024),
    Region::new(0x4000_0000, 0x0400_0000),
    Region::new(0x4500_0000, 0x3B00_0000),
];

/// The simulation's ROM page. QEMU maps nothing at the ROM's 0x0-0x3FFFF (reads 0, writes
/// dropped; qemu-imx8mp.md §2), so the ROM model (`test-firmware`'s `rom-model`) keeps what the
/// i.MX 8M ROM keeps at 0x980 (ROM API table) and 0x9E0 (event-log pointer) at the same offsets
/// in this OCRAM page, with the log itself at +0xA00 and the simulated SRC_GPR10 at +0xF00. The
/// page is OCRAM outside every loaded image, so it survives a watchdog reset (§9).
pub const ROM_PAGE: Region = Region::new(0x0090_2000, 0x1000);

/// Where the ROM model runs: the top 2 MiB of the 1 GiB DRAM (image, stack, then the SPL read
/// buffer below it at [`ROM_MODEL_SCRATCH`]). QEMU reloads it at every reset (§1), so what Linux
/// writes there does not matter.
pub const ROM_MODEL: Region = Region::new(0x7FF0_0000, 0x10_0000);

/// The ROM model's SPL read buffer (the SPL lies before the FIT offset, 0x57C00 bytes at most).
pub const ROM_MODEL_SCRATCH: Region = Region::new(0x7FE0_0000, 0x10_0000);

/// The board value.
pub const BOARD: Board = Board {
    name: "qemu-imx8mp",
    description: "QEMU imx8mp-evk machine, software HAB4 (P-256), simulated fuse block",
    soc: Soc::Imx8mp,
    memory: MemoryMap {
        ocram: OCRAM,
        dram: DRAM,
        fit_window: FIT_WINDOW,
        load_ranges: LOAD_RANGES,
    },
    // UART2 0x30890000 is the EVK console (Linux DT stdout-path = &uart2; imx8m-facts.md §1),
    // 24 MHz OSC root (imx8m-facts.md §9); `-serial null -serial stdio` routes it to stdio.
    console: Uart {
        base: 0x3089_0000,
        ref_clock_hz: 24_000_000,
        baud: 115_200,
    },
    // `-drive if=sd,bus=1` attaches the card to USDHC2 at 0x30B50000 (qemu-imx8mp.md §4).
    boot_usdhc: Usdhc {
        instance: 2,
        base: 0x30B5_0000,
        medium: Medium::SdCard,
    },
    // `-device emmc,...,bus=sd-bus` attaches the eMMC to USDHC3 at 0x30B60000, the first
    // `sd-bus` in QEMU's list (qemu-imx8mp.md §4.1; U-Boot `imx-regs.h` for the address).
    emmc: Some(Usdhc {
        instance: 3,
        base: 0x30B6_0000,
        medium: Medium::Emmc,
    }),
    media: AN12900_LAYOUT,
    hab: HabBackend::Software,
    // The 8M Plus ROM is HAB 4.5 with ECDSA P-256 and RSA (CST UG Table 1; imx8m-facts.md
    // §4.6), but this board authenticates with the firmware's `no_std` software verifier,
    // which has P-256 only (RSA needs imx-hab's `std`): the board states what it can do.
    hab_caps: HabCapabilities {
        version: 0x45,
        algorithms: &[SignatureAlgorithm::EcdsaP256],
    },
    // Cell contract of the simulation: OCRAM 0x0090_1000, outside the loaded images; OCRAM
    // keeps its contents across a watchdog reset in QEMU (qemu-imx8mp.md §9).
    cell_addr: 0x0090_1000,
    // 64-byte simulated fuse block planted by `-device loader,...,addr=0x900000` (QEMU contract).
    fuses: FuseSource::SimulatedBlock { addr: 0x0090_0000 },
    // WDOG1 0x30280000, implemented by QEMU's `imx2.wdt` (qemu-imx8mp.md §2).
    watchdog_base: 0x3028_0000,
    // The ROM model's page (ROM_PAGE): 0x980 / 0x9E0 at the same offsets; the simulated
    // PERSIST_SECONDARY_BOOT at +0xF00, bit 30 as SRC_GPR10's (imx8m-facts.md §3.3).
    rom: RomInterface {
        log_pointer: ROM_PAGE.start + 0x9E0,
        api_table: Some(ROM_PAGE.start + 0x980),
        persist: Some(PersistBit {
            addr: ROM_PAGE.start + 0xF00,
            mask: 1 << 30,
        }),
    },
};
