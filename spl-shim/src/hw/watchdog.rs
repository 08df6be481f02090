//! i.MX watchdog (WDOG1): arm it so a hang resets the SoC, service it, or reset at once.
//!
//! Registers are **16 bits wide** and accessed with 16-bit loads and stores: QEMU's `imx2.wdt`
//! splits a 32-bit write in two, the second half landing in WSR (`docs/qemu-imx8mp.md` §9).
//! Layout: `docs/imx8m-facts.md` §9.1 (Linux `imx2_wdt.c`, i.MX 8M RM names).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

use boot_core::platform::WatchdogService;

register_bitfields! {u16,
    /// WCR, Watchdog Control Register (+0x00). WDE and some other bits are write-once.
    WCR [
        /// Keep the counter suspended in low-power modes.
        WDZST OFFSET(0) NUMBITS(1) [],
        /// Watchdog enable (write-once: cannot be cleared until reset).
        WDE OFFSET(2) NUMBITS(1) [],
        /// Software reset signal: writing 0 asserts a system reset.
        SRS OFFSET(4) NUMBITS(1) [],
        /// WDOG_B assertion: writing 0 asserts the WDOG_B pin.
        WDA OFFSET(5) NUMBITS(1) [],
        /// Timeout: (WT + 1) × 0.5 s.
        WT OFFSET(8) NUMBITS(8) []
    ]
}

register_structs! {
    /// WDOG register block (imx8m-facts.md §9.1).
    Registers {
        (0x0 => wcr: ReadWrite<u16, WCR::Register>),
        /// WSR, service register: 0x5555 then 0xAAAA restarts the countdown.
        (0x2 => wsr: ReadWrite<u16>),
        /// WRSR, reset status (bit 0 software, bit 1 timeout); reads 0 in QEMU.
        (0x4 => wrsr: ReadWrite<u16>),
        /// WICR, interrupt control.
        (0x6 => _wicr: ReadWrite<u16>),
        /// WMCR, miscellaneous control: bit 0 PDE, the power-down counter.
        (0x8 => wmcr: ReadWrite<u16>),
        (0xA => @END),
    }
}

/// Shortest timeout [`Watchdog::enable`] programs: 1 s (WT = 1). WT = 0 with WDE = 1 resets
/// QEMU's model at once (`docs/qemu-imx8mp.md` §9), so it is never used for arming.
pub const MIN_TIMEOUT_MS: u32 = 1000;

/// Longest timeout: WT = 0xFF → 128 s (imx8m-facts.md §9.1).
pub const MAX_TIMEOUT_MS: u32 = 128_000;

/// Handle on one i.MX WDOG instance.
#[derive(Debug)]
pub struct Watchdog {
    regs: *const Registers,
}

impl Watchdog {
    /// A handle on the WDOG register block at `base`, without touching it.
    ///
    /// # Safety
    ///
    /// `base` must be the physical address of an i.MX WDOG block (10 bytes of device memory,
    /// 16-bit registers), mapped flat.
    pub const unsafe fn from_base(base: u64) -> Self {
        Watchdog {
            regs: base as *const Registers,
        }
    }

    /// The board's WDOG1 ([`super::BOARD`]`.watchdog_base`).
    pub fn board() -> Self {
        // SAFETY: the board description gives the WDOG1 base (boards::Board::watchdog_base,
        // 0x30280000, imx8m-facts.md §7), identity-mapped device memory at EL3.
        unsafe { Self::from_base(super::BOARD.watchdog_base) }
    }

    fn regs(&self) -> &Registers {
        // SAFETY: `from_base`'s contract; every access goes through the 16-bit volatile
        // cells of `Registers`.
        unsafe { &*self.regs }
    }

    /// The WT field for a timeout of `timeout_ms`, rounded up to the next 0.5 s step and
    /// clamped to [`MIN_TIMEOUT_MS`]..=[`MAX_TIMEOUT_MS`].
    pub const fn wt_for(timeout_ms: u32) -> u16 {
        let ms = if timeout_ms < MIN_TIMEOUT_MS {
            MIN_TIMEOUT_MS
        } else if timeout_ms > MAX_TIMEOUT_MS {
            MAX_TIMEOUT_MS
        } else {
            timeout_ms
        };
        (ms.div_ceil(500) - 1) as u16
    }

    /// Arms the watchdog: after about `timeout_ms` (0.5 s steps, 1 s to 128 s) without
    /// [`service`](WatchdogService::service) the SoC resets. Disables the power-down counter
    /// (WMCR.PDE) as Linux does, sets the timeout with WDE = 0, then sets WDE (WDE is
    /// write-once, so this cannot be undone until reset) and services once.
    /// Returns the programmed timeout in ms.
    pub fn enable(&mut self, timeout_ms: u32) -> u32 {
        let wt = Self::wt_for(timeout_ms);
        let r = self.regs();
        r.wmcr.set(0);
        let base = WCR::WT.val(wt) + WCR::WDA::SET + WCR::SRS::SET + WCR::WDZST::SET;
        r.wcr.write(base);
        r.wcr.write(base + WCR::WDE::SET);
        self.service();
        (u32::from(wt) + 1) * 500
    }

    /// Whether the watchdog is armed (WCR.WDE).
    pub fn is_enabled(&self) -> bool {
        self.regs().wcr.is_set(WCR::WDE)
    }

    /// WRSR: why the last reset happened (bit 0 software, bit 1 timeout). Always 0 in QEMU
    /// (`docs/qemu-imx8mp.md` §9).
    pub fn reset_status(&self) -> u16 {
        self.regs().wrsr.get()
    }

    /// Resets the SoC now: WCR = 0x0004 (WDE = 1, WT = 0, SRS = 0, WDA = 0), which resets
    /// QEMU's model immediately (*measured*, `docs/qemu-imx8mp.md` §9) and asserts the software
    /// reset and WDOG_B on silicon. Written twice (silicon may need the second write once WDE
    /// is already set), then the core waits for the reset.
    pub fn reset_now(&mut self) -> ! {
        let r = self.regs();
        r.wcr.write(WCR::WDE::SET);
        r.wcr.write(WCR::WDE::SET);
        loop {
            aarch64_cpu::asm::wfe();
        }
    }
}

impl WatchdogService for Watchdog {
    /// Writes 0x5555 then 0xAAAA to WSR.
    fn service(&mut self) {
        let r = self.regs();
        r.wsr.set(0x5555);
        r.wsr.set(0xAAAA);
    }
}
