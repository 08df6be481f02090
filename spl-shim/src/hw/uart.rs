//! i.MX UART (console), polled transmit and non-blocking receive.
//!
//! Register map and init sequence: `docs/imx8m-facts.md` §9 (U-Boot `serial_mxc.c`, i.MX 8M RM
//! register names). QEMU's `imx.serial` needs only UCR1 = UARTEN and UCR2 = 0x4027
//! (`docs/qemu-imx8mp.md` §3); the extra steps for silicon (FIFO control, baud-rate
//! registers) are harmless there. Every wait is bounded by the generic timer: a stuck UART
//! loses characters instead of hanging the boot.

use core::fmt;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use super::timer::GenericTimer;

register_bitfields! {u32,
    /// UCR1, UART Control Register 1 (+0x80).
    UCR1 [
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// UCR2, UART Control Register 2 (+0x84).
    UCR2 [
        /// Software reset, active low: reads 0 while the reset is in progress.
        SRST OFFSET(0) NUMBITS(1) [],
        /// Receiver enable.
        RXEN OFFSET(1) NUMBITS(1) [],
        /// Transmitter enable.
        TXEN OFFSET(2) NUMBITS(1) [],
        /// Word size: 1 = 8 data bits.
        WS OFFSET(5) NUMBITS(1) [],
        /// Ignore RTS.
        IRTS OFFSET(14) NUMBITS(1) []
    ],
    /// UFCR, UART FIFO Control Register (+0x90).
    UFCR [
        /// Receiver trigger level.
        RXTL OFFSET(0) NUMBITS(6) [],
        /// Reference-frequency divider; 0b100 = divide by 2.
        RFDIV OFFSET(7) NUMBITS(3) [],
        /// Transmitter trigger level.
        TXTL OFFSET(10) NUMBITS(6) []
    ],
    /// USR2, UART Status Register 2 (+0x98).
    USR2 [
        /// Receive data ready: at least one character in the receive FIFO.
        RDR OFFSET(0) NUMBITS(1) [],
        /// Transmitter complete: shift register and FIFO empty.
        TXDC OFFSET(3) NUMBITS(1) []
    ],
    /// UTS, UART Test Register (+0xB4).
    UTS [
        /// Transmit FIFO full.
        TXFULL OFFSET(4) NUMBITS(1) []
    ]
}

register_structs! {
    /// i.MX UART register block (imx8m-facts.md §9; 0x1000 bytes per instance in QEMU,
    /// qemu-imx8mp.md §2).
    Registers {
        /// URXD, receive data: bits 7:0 the character (reading pops it).
        (0x00 => urxd: ReadOnly<u32>),
        (0x04 => _reserved0),
        /// UTXD, transmit data: a write queues one byte.
        (0x40 => utxd: WriteOnly<u32>),
        (0x44 => _reserved1),
        (0x80 => ucr1: ReadWrite<u32, UCR1::Register>),
        (0x84 => ucr2: ReadWrite<u32, UCR2::Register>),
        /// UCR3: bit 2 RXDMUXSEL ("should always be set"), bit 7 ADNIMP.
        (0x88 => ucr3: ReadWrite<u32>),
        /// UCR4.
        (0x8C => ucr4: ReadWrite<u32>),
        (0x90 => ufcr: ReadWrite<u32, UFCR::Register>),
        /// USR1.
        (0x94 => _usr1: ReadWrite<u32>),
        (0x98 => usr2: ReadWrite<u32, USR2::Register>),
        /// UESC, escape character.
        (0x9C => uesc: ReadWrite<u32>),
        /// UTIM, escape timer.
        (0xA0 => utim: ReadWrite<u32>),
        /// UBIR, baud-rate increment (numerator − 1).
        (0xA4 => ubir: ReadWrite<u32>),
        /// UBMR, baud-rate modulator (denominator − 1).
        (0xA8 => ubmr: ReadWrite<u32>),
        /// UBRC.
        (0xAC => _ubrc: ReadOnly<u32>),
        /// ONEMS.
        (0xB0 => _onems: ReadWrite<u32>),
        (0xB4 => uts: ReadWrite<u32, UTS::Register>),
        (0xB8 => @END),
    }
}

/// Longest wait for room in the transmit FIFO: 32 characters at 9600 baud take 33 ms, so 50 ms
/// only runs out on a UART that is not transmitting at all.
const TX_TIMEOUT_US: u64 = 50_000;

/// Longest wait for the software reset (UCR2.SRST) and for a flush (USR2.TXDC).
const RESET_TIMEOUT_US: u64 = 10_000;

/// An i.MX UART used as a console. Implements [`core::fmt::Write`]; `\n` is sent as `\r\n`.
#[derive(Debug)]
pub struct Uart {
    regs: *const Registers,
    /// Set after a transmit timeout: later writes drop their bytes at once instead of waiting
    /// again for each one.
    stalled: bool,
}

impl Uart {
    /// A handle on the UART register block at `base`, without touching the hardware (the
    /// UART keeps whatever set-up an earlier stage left).
    ///
    /// # Safety
    ///
    /// `base` must be the physical address of an i.MX UART register block (0xB8 bytes of
    /// device memory), mapped flat (MMU off or identity-mapped as device memory). Several
    /// handles on one UART are allowed: each access is a single volatile register access, so
    /// concurrent handles can only interleave characters.
    pub const unsafe fn from_base(base: u64) -> Self {
        Uart {
            regs: base as *const Registers,
            stalled: false,
        }
    }

    /// A handle on the board's console UART ([`super::BOARD`]`.console`), as is. This is what
    /// the exception handler and payloads use: it needs no set-up if the UART already runs.
    pub fn console() -> Self {
        // SAFETY: the board description gives the console UART's register base
        // (boards::Board::console, cited there), identity-mapped device memory at EL3.
        unsafe { Self::from_base(super::BOARD.console.base) }
    }

    fn regs(&self) -> &Registers {
        // SAFETY: `from_base`'s contract: `regs` points at a live UART register block, which
        // is only accessed through the volatile cells of `Registers`.
        unsafe { &*self.regs }
    }

    /// Resets and programs the UART for 8N1 at `cfg.baud` from `cfg.ref_clock_hz`
    /// (imx8m-facts.md §9, U-Boot's order): flush, UCR1 = 0, UCR2 = 0 and wait for SRST,
    /// UCR3/UCR4/UESC/UTIM/UTS defaults, UFCR (RFDIV ÷2, TX/RX trigger 2/1), UBIR = 0xF and
    /// UBMR = ref / (2 × baud) − 1 … rounded, then UCR2 = 0x4027 and UCR1 = UARTEN (the two
    /// writes `docs/qemu-imx8mp.md` §3 lists). A zero baud rate or clock leaves the baud
    /// registers untouched.
    pub fn init(&mut self, cfg: &boards::Uart) {
        self.flush();
        let r = self.regs();
        r.ucr1.set(0);
        r.ucr2.set(0);
        let mut deadline = GenericTimer::new().deadline_us(RESET_TIMEOUT_US);
        while !r.ucr2.is_set(UCR2::SRST) && !deadline.expired() {}
        // UCR3: DSR/DCD/RI outputs inactive + ADNIMP + RXDMUXSEL (0x784, imx8m-facts.md §9).
        r.ucr3.set(0x784);
        // UCR4: CTSTL = 32 (bits 15:10), the reset value U-Boot writes back.
        r.ucr4.set(0x8000);
        r.uesc.set(0x2B);
        r.utim.set(0);
        r.uts.set(0);
        if cfg.baud != 0 && cfg.ref_clock_hz != 0 {
            // Reference = module clock / 2 (RFDIV = 0b100); baud = ref / (16 × (UBMR + 1) /
            // (UBIR + 1)). With UBIR + 1 = 16: UBMR + 1 = ref / baud = clk / (2 × baud).
            r.ufcr
                .write(UFCR::RFDIV.val(0b100) + UFCR::TXTL.val(2) + UFCR::RXTL.val(1));
            let modulator = (u64::from(cfg.ref_clock_hz) / (2 * u64::from(cfg.baud))).max(1);
            r.ubir.set(0xF);
            r.ubmr
                .set(u32::try_from(modulator - 1).unwrap_or(0xFFFF).min(0xFFFF));
        }
        r.ucr2.write(
            UCR2::SRST::SET + UCR2::RXEN::SET + UCR2::TXEN::SET + UCR2::WS::SET + UCR2::IRTS::SET,
        );
        r.ucr1.write(UCR1::UARTEN::SET);
        self.stalled = false;
    }

    /// Queues one byte, waiting (bounded) while the transmit FIFO is full. Returns `false` if
    /// the byte was dropped because the UART did not drain in time.
    pub fn write_byte(&mut self, byte: u8) -> bool {
        if self.stalled {
            return false;
        }
        let r = self.regs();
        if r.uts.is_set(UTS::TXFULL) {
            let mut deadline = GenericTimer::new().deadline_us(TX_TIMEOUT_US);
            while r.uts.is_set(UTS::TXFULL) {
                if deadline.expired() {
                    self.stalled = true;
                    return false;
                }
            }
        }
        r.utxd.set(u32::from(byte));
        true
    }

    /// The next received character, if one is waiting (USR2.RDR); never waits.
    pub fn try_read_byte(&mut self) -> Option<u8> {
        let r = self.regs();
        if r.usr2.is_set(USR2::RDR) {
            Some(r.urxd.get() as u8)
        } else {
            None
        }
    }

    /// Waits (bounded) until everything queued has left the transmitter (USR2.TXDC), e.g.
    /// before a reset. Does nothing on a UART that is not enabled.
    pub fn flush(&mut self) {
        let r = self.regs();
        if !r.ucr1.is_set(UCR1::UARTEN) {
            return;
        }
        let mut deadline = GenericTimer::new().deadline_us(RESET_TIMEOUT_US);
        while !r.usr2.is_set(USR2::TXDC) && !deadline.expired() {}
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' && !self.write_byte(b'\r') {
                return Err(fmt::Error);
            }
            if !self.write_byte(b) {
                return Err(fmt::Error);
            }
        }
        Ok(())
    }
}
