//! Board descriptions for the i.MX 8M redundant-boot shim: data only, `no_std`.
//!
//! One [`Board`] value per supported board (design.md §3): the SoC, its memory map, the console
//! UART, the boot uSDHC, the boot media layout (design.md §4), the HAB backend, where the boot
//! cell lives and where fuse values come from. Every constant cites its source; facts come from
//! `docs/imx8m-facts.md` (the project's copy of the silicon facts) and `docs/qemu-imx8mp.md`.
#![no_std]
#![forbid(unsafe_code)]

pub mod boot_cfg;
pub mod imx8mm_evk;
mod layout;
mod memory;
pub mod qemu_imx8mp;

pub use boot_cfg::{BootCfg, BootDevice, EmmcLayout};
pub use layout::{AN12900_LAYOUT, MediaLayout, SECTOR_SIZE, Sector, SlotRule};
pub use memory::{MemoryMap, Region};

/// The SoC family member a board carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Soc {
    /// i.MX 8M Mini: ROM image format "v1", Secondary Image Table redundancy.
    Imx8mm,
    /// i.MX 8M Plus: ROM image format "v2" (run with the 8MM media layout on QEMU, design.md §3).
    Imx8mp,
}

impl Soc {
    /// Marketing name, as printed in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Soc::Imx8mm => "i.MX 8M Mini",
            Soc::Imx8mp => "i.MX 8M Plus",
        }
    }
}

/// An i.MX UART used as the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uart {
    /// Register block base address.
    pub base: u64,
    /// Reference clock into the UART (after the root clock divider), in Hz.
    pub ref_clock_hz: u32,
    /// Line speed.
    pub baud: u32,
}

/// The uSDHC controller the boot medium hangs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usdhc {
    /// Controller number as in the reference manual (1-based: uSDHC2 = 2).
    pub instance: u8,
    /// Register block base address.
    pub base: u64,
    /// Kind of medium wired to it.
    pub medium: Medium,
}

/// Kind of boot medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// Removable SD card (SDSC or SDHC/SDXC).
    SdCard,
    /// Soldered eMMC, user area.
    Emmc,
}

/// How images are authenticated on this board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HabBackend {
    /// The ROM's HAB API, reached through the ROM Vector Table.
    Rom {
        /// Address of the HAB ROM Vector Table (header tag 0xDD).
        rvt_addr: u64,
    },
    /// The software HAB4 verifier of `imx-hab` (SHA-256 + ECDSA P-256).
    Software,
}

/// A signature algorithm a HAB ROM may verify with (the SRK's key type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// RSA PKCS#1 v1.5 (2048 to 4096 bits).
    Rsa,
    /// ECDSA over NIST P-256.
    EcdsaP256,
}

impl SignatureAlgorithm {
    /// Name as printed in reports.
    pub const fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Rsa => "RSA",
            SignatureAlgorithm::EcdsaP256 => "ECDSA P-256",
        }
    }
}

/// What the board's authenticator (its ROM, or the verifier standing in for it) can
/// authenticate: the HAB version and the signature algorithms (docs/imx8m-facts.md §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HabCapabilities {
    /// HAB version as in a CSF header's version byte (`0x43` = HAB 4.3, `0x45` = 4.5).
    pub version: u8,
    /// The SRK key types it verifies.
    pub algorithms: &'static [SignatureAlgorithm],
}

impl HabCapabilities {
    /// Whether `algorithm` can be authenticated.
    pub fn supports(&self, algorithm: SignatureAlgorithm) -> bool {
        self.algorithms.contains(&algorithm)
    }
}

/// Where the SRK hash, SEC_CONFIG and the revocation mask are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuseSource {
    /// A 64-byte block in memory, planted by the simulator: bytes 0..32 the SRK hash exactly as
    /// `srktool` writes it, 32..36 the SEC_CONFIG word (LE, bit 25 = closed), 36..40 the SRK
    /// revoke mask (LE), 40..48 the 64 anti-rollback fuse bits (LE; OCOTP GP1 on silicon),
    /// 48..52 the boot-device selection ([`BootCfg`]).
    SimulatedBlock {
        /// Physical address of the 64-byte block.
        addr: u64,
    },
    /// The OCOTP controller's shadow registers.
    Ocotp {
        /// OCOTP register block base.
        base: u64,
    },
}

/// PERSIST_SECONDARY_BOOT: a register bit the ROM keeps across a warm reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistBit {
    /// Register (or simulated word) address.
    pub addr: u64,
    /// The bit.
    pub mask: u32,
}

/// Where the boot ROM leaves what it did (docs/imx8m-facts.md §3.3, §3.5, §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RomInterface {
    /// Address of the u32 pointer to the ROM event log (0x9E0 on every i.MX 8M).
    pub log_pointer: u64,
    /// The ROM API table (0x980 on 8MN/8MP), if the SoC has one.
    pub api_table: Option<u64>,
    /// PERSIST_SECONDARY_BOOT (SRC_GPR10 bit 30 on 8MM/8MQ), if the SoC has it.
    pub persist: Option<PersistBit>,
}

/// Everything the shim and `ubootctl` need to know about one board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    /// Short name used on command lines (`--board`).
    pub name: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// The SoC.
    pub soc: Soc,
    /// Physical memory map and the windows images may be placed in.
    pub memory: MemoryMap,
    /// Console UART.
    pub console: Uart,
    /// Boot medium controller (the SD card; [`BootCfg`] all zero boots from it).
    pub boot_usdhc: Usdhc,
    /// The eMMC's controller, when the board has one ([`BootDevice::Emmc`] boots from it).
    pub emmc: Option<Usdhc>,
    /// Where the two copies and the Secondary Image Table live on the medium.
    pub media: MediaLayout,
    /// How authentication is done.
    pub hab: HabBackend,
    /// What that authentication can verify.
    pub hab_caps: HabCapabilities,
    /// Physical address of the boot cell (design.md §6): word 0 the slot, then the boot record.
    pub cell_addr: u64,
    /// Where fuse values come from.
    pub fuses: FuseSource,
    /// Address of the WDOG1 register block serviced by the shim.
    pub watchdog_base: u64,
    /// Where the boot ROM (or the simulation's ROM model) leaves its log and state.
    pub rom: RomInterface,
}

/// Bytes reserved for the boot cell at [`Board::cell_addr`] on every board; `boot-core`'s
/// record checks at compile time that it fits.
pub const CELL_AREA: u64 = 0x100;

/// Every board this build knows, in `--board` listing order.
pub const ALL: &[&Board] = &[&qemu_imx8mp::BOARD, &imx8mm_evk::BOARD];

/// Looks a board up by its [`Board::name`].
pub fn by_name(name: &str) -> Option<&'static Board> {
    ALL.iter().copied().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_is_found_by_its_name() {
        for b in ALL {
            assert_eq!(by_name(b.name), Some(*b));
        }
        assert_eq!(by_name("imx8mq-evk"), None);
    }

    #[test]
    fn cells_lie_in_ocram_outside_the_fit_window() {
        for b in ALL {
            assert!(
                b.memory.ocram.contains_range(b.cell_addr, CELL_AREA),
                "{}",
                b.name
            );
            assert!(
                !b.memory
                    .fit_window
                    .overlaps(&Region::new(b.cell_addr, CELL_AREA))
            );
            for r in b.memory.load_ranges {
                assert!(
                    !r.overlaps(&Region::new(b.cell_addr, CELL_AREA)),
                    "{}: cell in {r:?}",
                    b.name
                );
            }
        }
    }

    #[test]
    fn the_simulated_rom_page_is_clear_of_the_cell_fuses_and_images() {
        use qemu_imx8mp::{BOARD, ROM_MODEL, ROM_MODEL_SCRATCH, ROM_PAGE};
        assert!(
            BOARD
                .memory
                .ocram
                .contains_range(ROM_PAGE.start, ROM_PAGE.size)
        );
        assert!(!ROM_PAGE.overlaps(&Region::new(BOARD.cell_addr, CELL_AREA)));
        assert!(!ROM_PAGE.overlaps(&Region::new(0x0090_0000, 64)));
        // The shim's SPL starts at IVT.self 0x90FFC0 (linker/qemu-imx8mp.ld: 0x910000 - 0x40).
        assert!(ROM_PAGE.end() <= 0x0090_FFC0);
        for r in BOARD.memory.load_ranges {
            assert!(!r.overlaps(&ROM_PAGE));
        }
        assert!(!BOARD.memory.fit_window.overlaps(&ROM_MODEL));
        assert!(!ROM_MODEL.overlaps(&ROM_MODEL_SCRATCH));
        assert!(
            BOARD
                .memory
                .dram
                .contains_range(ROM_MODEL.start, ROM_MODEL.size)
        );
        assert!(
            BOARD
                .memory
                .dram
                .contains_range(ROM_MODEL_SCRATCH.start, ROM_MODEL_SCRATCH.size)
        );
        let rom = BOARD.rom;
        for a in [
            rom.log_pointer,
            rom.api_table.unwrap(),
            rom.persist.unwrap().addr,
        ] {
            assert!(ROM_PAGE.contains_range(a, 8), "{a:#x}");
        }
    }

    #[test]
    fn fit_window_and_load_ranges_lie_in_ram() {
        for b in ALL {
            let m = &b.memory;
            assert!(m.dram.contains_range(m.fit_window.start, m.fit_window.size));
            for r in m.load_ranges {
                assert!(
                    m.dram.contains_range(r.start, r.size)
                        || m.ocram.contains_range(r.start, r.size),
                    "{}: {r:?}",
                    b.name
                );
                assert!(
                    !r.overlaps(&m.fit_window),
                    "{}: {r:?} overlaps the FIT window",
                    b.name
                );
            }
        }
    }
}
