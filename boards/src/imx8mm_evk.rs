//! NXP i.MX 8M Mini EVK (silicon), the board of AN12900.
//!
//! Addresses from `docs/imx8m-facts.md` §1, §4, §6, §7 (U-Boot, TF-A and Linux sources cited
//! there).

use crate::{
    AN12900_LAYOUT, Board, FuseSource, HabBackend, HabCapabilities, Medium, MemoryMap, PersistBit,
    Region, RomInterface, SignatureAlgorithm, Soc, Uart, Usdhc,
};

/// OCRAM at 0x900000, 256 KiB (U-Boot `imx8m/soc.c` maps 0x900000 + 0x40000; the size is
/// UNVERIFIED against the reference manual, imx8m-facts.md §7).
pub const OCRAM: Region = Region::new(0x0090_0000, 256 * 1024);

/// DRAM at 0x40000000, 2 GiB on the EVK (`include/configs/imx8mm_evk.h`, imx8m-facts.md §7).
pub const DRAM: Region = Region::new(0x4000_0000, 2 << 30);

/// CONFIG_SPL_LOAD_FIT_ADDRESS 0x44000000 (U-Boot `boot/Kconfig`), 16 MiB reserved.
pub const FIT_WINDOW: Region = Region::new(0x4400_0000, 16 << 20);

/// BL31 0x920000-0x93FFFF (TF-A `imx8mm/platform_def.h` BL31_BASE/SIZE), DRAM below the FIT
/// window (U-Boot proper 0x40200000) and DRAM above it up to the end of the EVK's 2 GiB.
pub const LOAD_RANGES: &[Region] = &[
    Region::new(0x0092_0000, 128 * 1024),
    Region::new(0x4000_0000, 0x0400_0000),
    Region::new(0x4500_0000, 0x7B00_0000),
];

/// The board value.
pub const BOARD: Board = Board {
    name: "imx8mm-evk",
    description: "NXP i.MX 8M Mini EVK, ROM HAB API, SD card on uSDHC2",
    soc: Soc::Imx8mm,
    memory: MemoryMap {
        ocram: OCRAM,
        dram: DRAM,
        fit_window: FIT_WINDOW,
        load_ranges: LOAD_RANGES,
    },
    // UART2 0x30890000 (U-Boot `imx-regs.h`; Linux DT stdout-path = &uart2), 24 MHz root clock
    // (U-Boot `init_uart_clk()` in `clock_imx8mm.c`).
    console: Uart {
        base: 0x3089_0000,
        ref_clock_hz: 24_000_000,
        baud: 115_200,
    },
    // SD slot on uSDHC2 0x30B50000, 4-bit, card detect on GPIO (Linux `imx8mm-evk.dtsi`).
    boot_usdhc: Usdhc {
        instance: 2,
        base: 0x30B5_0000,
        medium: Medium::SdCard,
    },
    // The EVK's eMMC is on USDHC3, 0x30B60000 (Linux `imx8mm-evk.dts`; U-Boot `imx-regs.h`;
    // imx8m-facts.md §7). This board reads no BOOT_CFG yet: it boots from the SD card.
    emmc: Some(Usdhc {
        instance: 3,
        base: 0x30B6_0000,
        medium: Medium::Emmc,
    }),
    media: AN12900_LAYOUT,
    // HAB RVT at 0x900 on 8MM (U-Boot `asm/mach-imx/hab.h`; TF-A platform_def HAB_RVT_BASE).
    hab: HabBackend::Rom { rvt_addr: 0x900 },
    // HAB 4.3, RSA only: NXP CST User Guide Table 1 ("ECC: i.MX 8M Plus only, HAB 4.5 and
    // later"); docs/imx8m-facts.md §4.6.
    hab_caps: HabCapabilities {
        version: 0x43,
        algorithms: &[SignatureAlgorithm::Rsa],
    },
    // Free OCRAM between SPL's BSS (0x910000 + 0x2000) and the SPL stack top 0x920000, outside
    // the ROM scratch area 0x900000-0x90FFFF and BL31 (imx8m-facts.md §7). Chosen here
    // (*inference*); Linux maps OCRAM through /dev/mem (imx8m-facts.md §11).
    cell_addr: 0x0091_8000,
    // OCOTP 0x30350000: SEC_CONFIG 0x30350470, SRK_HASH 0x30350580.. (imx8m-facts.md §6).
    fuses: FuseSource::Ocotp { base: 0x3035_0000 },
    // WDOG1 0x30280000 (U-Boot `imx-regs.h`).
    watchdog_base: 0x3028_0000,
    // ROM event-log pointer at 0x9E0 (U-Boot `imx8m/soc.c`, barebox; imx8m-facts.md §3.6); no
    // ROM API on the 8M Mini (§3.5); PERSIST_SECONDARY_BOOT = SRC_GPR10 0x30390098 bit 30
    // (TF-A imx8mm platform_def.h, psb.rst; §3.3).
    rom: RomInterface {
        log_pointer: 0x9E0,
        api_table: None,
        persist: Some(PersistBit {
            addr: 0x3039_0098,
            mask: 1 << 30,
        }),
    },
};
