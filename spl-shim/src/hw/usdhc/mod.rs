//! uSDHC SD-card driver: PIO, polling, read-only. The eMMC on top of the same controller
//! code is [`emmc`].
//!
//! Register map: `docs/imx8m-facts.md` §10 (i.MX 8M RM register names as in U-Boot
//! `fsl_esdhc_imx.c`). Everything QEMU's model needs is done exactly as
//! `docs/qemu-imx8mp.md` §4–§5 measured it:
//!
//! - SYS_CTRL always has its low nibble 0xF (bits 0 and 2 are the SDHCI clock enables in
//!   QEMU; "reserved, reset 1" on silicon), reset with RSTA and polled until clear;
//! - INT_STATUS_EN = 0xFFFFFFFF (QEMU latches only enabled status bits), INT_SIGNAL_EN = 0;
//! - MIX_CTRL is written before every command with the complete value, never read back (it
//!   reads 0 in QEMU);
//! - the CMD_XFR_TYP write (low 16 bits 0) sends the command;
//! - only registers below 0x100 are used (QEMU's window);
//! - data is moved by PIO: PRES_STATE.BREN once per block, then 128 words of DATA_BUFF.
//!
//! For silicon it also sends the 80 initialisation clocks (INITA), sets the read watermark to a
//! whole block, waits for DAT0 after busy (R1b) responses and checks with CMD13 that the card
//! reached TRAN. Every wait has a deadline on the generic timer and every error bit (INT_STATUS
//! bit 15 and up) becomes a [`MediaError`]: nothing waits forever.

pub mod emmc;

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use super::timer::{Deadline, GenericTimer};
use boards::Sector;
use boot_core::platform::{BlockRead, MediaError, WatchdogService};

register_structs! {
    /// uSDHC register block, the part below 0x100 (imx8m-facts.md §10; QEMU maps only
    /// 0x100 bytes, qemu-imx8mp.md §2, §5).
    Registers {
        /// DS_ADDR, SDMA address (unused: PIO).
        (0x00 => _ds_addr: ReadWrite<u32>),
        /// BLK_ATT: [31:16] block count, [12:0] block size.
        (0x04 => blk_att: ReadWrite<u32>),
        /// CMD_ARG.
        (0x08 => cmd_arg: ReadWrite<u32>),
        /// CMD_XFR_TYP: writing it sends the command (qemu-imx8mp.md §5).
        (0x0C => cmd_xfr_typ: WriteOnly<u32>),
        /// CMD_RSP0..3: response bits [39:8] (48-bit) or [127:8] (136-bit, CRC stripped).
        (0x10 => cmd_rsp: [ReadOnly<u32>; 4]),
        /// DATA_BUFF_ACC_PORT: the 32-bit PIO FIFO.
        (0x20 => data_buff: ReadOnly<u32>),
        /// PRES_STATE: 0 CIHB, 1 CDIHB, 2 DLA, 3 SDSTB, 11 BREN, 16 CINS, 24 DAT0 level.
        (0x24 => pres_state: ReadOnly<u32>),
        /// PROT_CTRL: [2:1] DTW, [5:4] EMODE, [9:8] DMASEL.
        (0x28 => prot_ctrl: ReadWrite<u32>),
        /// SYS_CTRL: [19:16] DTOCV, [15:8] SDCLKFS, [7:4] DVS, 24 RSTA, 25 RSTC, 26 RSTD,
        /// 27 INITA.
        (0x2C => sys_ctrl: ReadWrite<u32>),
        /// INT_STATUS, write 1 to clear: 0 CC, 1 TC, 5 BRR; errors from bit 15 up.
        (0x30 => int_status: ReadWrite<u32>),
        /// INT_STATUS_EN: which status bits latch.
        (0x34 => int_status_en: ReadWrite<u32>),
        /// INT_SIGNAL_EN: which status bits raise the interrupt line.
        (0x38 => int_signal_en: ReadWrite<u32>),
        /// AUTOCMD12_ERR_STATUS.
        (0x3C => _autocmd12_err_status: ReadOnly<u32>),
        /// HOST_CTRL_CAP.
        (0x40 => _host_ctrl_cap: ReadOnly<u32>),
        /// WTMK_LVL: [7:0] read watermark (words), [23:16] write watermark. Ignored by QEMU.
        (0x44 => wtmk_lvl: ReadWrite<u32>),
        /// MIX_CTRL: transfer mode; reads 0 in QEMU, so only ever written whole.
        (0x48 => mix_ctrl: WriteOnly<u32>),
        (0x4C => _reserved),
        (0x100 => @END),
    }
}

// PRES_STATE bits (imx8m-facts.md §10).
/// Command inhibit (CMD line busy).
const PRES_CIHB: u32 = 1 << 0;
/// Command inhibit (DAT lines busy).
const PRES_CDIHB: u32 = 1 << 1;
/// Buffer read enable: a block is ready in the FIFO.
const PRES_BREN: u32 = 1 << 11;
/// DAT0 line level (low = card busy).
const PRES_DAT0: u32 = 1 << 24;

// SYS_CTRL (imx8m-facts.md §10; low nibble 0xF required by QEMU, qemu-imx8mp.md §5).
/// Bits 0–3: SDHCI clock enables in QEMU, "reserved, reset 1" on silicon.
const SYS_CTRL_LOW_NIBBLE: u32 = 0xF;
/// Data timeout counter value 0xE (SDCLK × 2^27), as measured.
const SYS_CTRL_DTOCV: u32 = 0xE << 16;
/// Software reset for all.
const SYS_CTRL_RSTA: u32 = 1 << 24;
/// Software reset for the CMD line.
const SYS_CTRL_RSTC: u32 = 1 << 25;
/// Software reset for the DAT line.
const SYS_CTRL_RSTD: u32 = 1 << 26;
/// Initialisation active: sends 80 SD clocks.
const SYS_CTRL_INITA: u32 = 1 << 27;
/// Identification clock: SDCLKFS 0x80 (÷256) with DVS 1 (÷2), ≤ 400 kHz from a uSDHC root
/// clock up to 200 MHz. QEMU ignores the divider (it measured 0x000E800F, qemu-imx8mp.md §5).
const SYS_CTRL_IDENT: u32 = SYS_CTRL_DTOCV | (0x80 << 8) | (1 << 4) | SYS_CTRL_LOW_NIBBLE;
/// Transfer clock: SDCLKFS 0x04 (÷8) with DVS 1 (÷2): 25 MHz (SD default speed) from a
/// 400 MHz root, 12.5 MHz from 200 MHz. The root-clock rate the ROM leaves is *UNVERIFIED*;
/// the divider is chosen so that neither exceeds default speed. QEMU ignores it.
const SYS_CTRL_TRANSFER: u32 = SYS_CTRL_DTOCV | (0x04 << 8) | (1 << 4) | SYS_CTRL_LOW_NIBBLE;

// INT_STATUS bits (imx8m-facts.md §10).
/// Command complete.
const INT_CC: u32 = 1 << 0;
/// Transfer complete.
const INT_TC: u32 = 1 << 1;
/// Buffer read ready.
const INT_BRR: u32 = 1 << 5;
/// Every error bit: bit 15 (SDHCI error summary in QEMU) and up.
const INT_ERRORS: u32 = 0xFFFF_8000;
/// Command timeout error.
const INT_CTOE: u32 = 1 << 16;

// PROT_CTRL (qemu-imx8mp.md §5): EMODE little-endian, DTW 1-bit / 4-bit.
/// 1-bit bus, little-endian.
const PROT_CTRL_1BIT: u32 = 0x20;
/// 4-bit bus, little-endian.
const PROT_CTRL_4BIT: u32 = 0x22;

// MIX_CTRL values (qemu-imx8mp.md §5).
/// No data.
const MIX_NONE: u32 = 0x00;
/// Single-block read: DTDSEL.
const MIX_READ_SINGLE: u32 = 0x10;
/// Multi-block read: DTDSEL | MSBSEL | BCEN | AC12EN (auto CMD12).
const MIX_READ_MULTI: u32 = 0x36;
/// Multi-block read stopped by an explicit CMD12: DTDSEL | MSBSEL | BCEN (no AC12EN, no
/// AC23EN: QEMU's SDHCI has no Auto-CMD23, qemu-emmc.md).
const MIX_READ_MULTI_EXPLICIT_STOP: u32 = 0x32;

// CMD_XFR_TYP fields (qemu-imx8mp.md §5).
/// Command CRC check.
const XFR_CCCEN: u32 = 1 << 19;
/// Command index check.
const XFR_CICEN: u32 = 1 << 20;
/// Data present.
const XFR_DPSEL: u32 = 1 << 21;

/// Words in one 512-byte block.
const WORDS_PER_BLOCK: usize = size_of::<Sector>() / 4;

/// Largest block count one CMD18 may move (BLK_ATT block count is 16 bits).
pub const MAX_BLOCKS_PER_COMMAND: u32 = 65_535;

// Timeouts. SD spec limits: ACMD41 initialisation ≤ 1 s, read access ≤ 100 ms, busy after
// R1b ≤ 250 ms (write/erase excluded); the values below add margin.
/// Controller reset and line inhibit waits.
const RESET_TIMEOUT_US: u64 = 100_000;
/// Command complete.
const COMMAND_TIMEOUT_US: u64 = 100_000;
/// ACMD41 loop until the card reports power-up done.
const ACMD41_TIMEOUT_US: u64 = 1_000_000;
/// Pause between two ACMD41 attempts.
const ACMD41_RETRY_US: u32 = 1_000;
/// One block of a read (BREN) and the final TC.
const DATA_TIMEOUT_US: u64 = 250_000;
/// DAT0 busy after an R1b response.
const BUSY_TIMEOUT_US: u64 = 500_000;
/// Blocks between two watchdog services in [`Usdhc::read_blocks_serviced`] (128 KiB).
const SERVICE_INTERVAL_BLOCKS: u32 = 256;

/// Command index used in errors for waits that belong to no command.
const NO_COMMAND: u8 = 0xFF;

/// Response shapes and their CMD_XFR_TYP flags (RSPTYP, CCCEN, CICEN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Response {
    /// No response (CMD0).
    None,
    /// R1, R6, R7: 48 bits, CRC and index checked.
    R1,
    /// R1b: 48 bits with busy on DAT0.
    R1b,
    /// R2: 136 bits (CID, CSD), CRC checked.
    R2,
    /// R3: 48 bits, no CRC or index (OCR).
    R3,
}

impl Response {
    const fn flags(self) -> u32 {
        match self {
            Response::None => 0,
            Response::R1 => (2 << 16) | XFR_CCCEN | XFR_CICEN,
            Response::R1b => (3 << 16) | XFR_CCCEN | XFR_CICEN,
            Response::R2 => (1 << 16) | XFR_CCCEN,
            Response::R3 => 2 << 16,
        }
    }
}

/// How the card is addressed (OCR bit 30, CCS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardKind {
    /// Standard capacity (≤ 2 GB, CCS = 0): byte addresses in CMD17/18.
    Sdsc,
    /// High or extended capacity (CCS = 1): block addresses.
    Sdhc,
}

boot_core::names! {
    /// "SDSC" or "SDHC" (SDHC includes SDXC: both use block addressing).
    CardKind {
        Sdsc => "SDSC",
        Sdhc => "SDHC",
    }
}

/// What card initialisation learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardInfo {
    /// Addressing mode.
    pub kind: CardKind,
    /// Relative card address from CMD3.
    pub rca: u16,
    /// OCR from the last ACMD41 response.
    pub ocr: u32,
    /// Whether the card answered CMD8 (physical layer 2.0 or later).
    pub v2: bool,
    /// CID (bits 127:0; bits 7:0, the CRC, read as 0).
    pub cid: u128,
    /// CSD (bits 127:0; bits 7:0, the CRC, read as 0).
    pub csd: u128,
    /// Capacity in 512-byte blocks, from the CSD.
    pub blocks: u64,
}

/// Capacity in 512-byte blocks from a CSD (bits 127:0), for CSD structure 1.0 (SDSC),
/// 2.0 (SDHC/SDXC) and 3.0 (SDUC) (SD Physical Layer Simplified Spec §5.3). `None` for a
/// reserved structure version or nonsensical fields.
pub fn capacity_blocks(csd: u128) -> Option<u64> {
    let bits = |hi: u32, lo: u32| -> u64 { ((csd >> lo) & ((1u128 << (hi - lo + 1)) - 1)) as u64 };
    match bits(127, 126) {
        0 => {
            // Capacity = (C_SIZE + 1) × 2^(C_SIZE_MULT + 2) × 2^READ_BL_LEN bytes.
            let c_size = bits(73, 62);
            let c_size_mult = bits(49, 47);
            let read_bl_len = bits(83, 80);
            if !(9..=11).contains(&read_bl_len) {
                return None;
            }
            let bytes = (c_size + 1) << (c_size_mult + 2 + read_bl_len);
            Some(bytes / size_of::<Sector>() as u64)
        }
        // Capacity = (C_SIZE + 1) × 512 KiB; C_SIZE is 22 bits (2.0) or 28 bits (3.0).
        1 => Some((bits(69, 48) + 1) * 1024),
        2 => Some((bits(75, 48) + 1) * 1024),
        _ => None,
    }
}

/// A uSDHC controller with (after [`init`](Usdhc::init)) an SD card in transfer state.
#[derive(Debug)]
pub struct Usdhc {
    regs: *const Registers,
    timer: GenericTimer,
    card: Option<CardInfo>,
    max_blocks_per_command: u32,
    /// The clock part of SYS_CTRL last written (SYS_CTRL is never read-modify-written: QEMU
    /// returns its SDHCI view of it).
    clock: u32,
}

impl Usdhc {
    /// A handle on the uSDHC register block at `base`, without touching it. Call
    /// [`init`](Self::init) before reading.
    ///
    /// # Safety
    ///
    /// `base` must be the physical address of a uSDHC register block (0x100 bytes of device
    /// memory), mapped flat, and no other code may drive that controller while this handle
    /// is in use.
    pub const unsafe fn from_base(base: u64) -> Self {
        Usdhc {
            regs: base as *const Registers,
            timer: GenericTimer::new(),
            card: None,
            max_blocks_per_command: MAX_BLOCKS_PER_COMMAND,
            clock: SYS_CTRL_IDENT,
        }
    }

    /// The board's boot uSDHC ([`super::BOARD`]`.boot_usdhc`; USDHC2 on both boards).
    ///
    /// # Safety
    ///
    /// Only one handle on the boot controller may be live at a time (see
    /// [`from_base`](Self::from_base)).
    pub unsafe fn board() -> Self {
        // SAFETY: the board description gives the boot uSDHC's base (boards::Board::
        // boot_usdhc, qemu-imx8mp.md §4 / imx8m-facts.md §7); exclusivity is the caller's.
        unsafe { Self::from_base(super::BOARD.boot_usdhc.base) }
    }

    fn regs(&self) -> &'static Registers {
        // SAFETY: `from_base`'s contract: a live uSDHC register block, accessed only through
        // the volatile cells of `Registers`.
        unsafe { &*self.regs }
    }

    /// The card found by the last successful [`init`](Self::init).
    pub fn card(&self) -> Option<&CardInfo> {
        self.card.as_ref()
    }

    /// Caps the blocks one CMD18 moves (1..=65535; default 65535). Longer reads are split
    /// into several commands; lowering the cap only serves tests of that split.
    pub fn set_max_blocks_per_command(&mut self, blocks: u32) {
        self.max_blocks_per_command = blocks.clamp(1, MAX_BLOCKS_PER_COMMAND);
    }

    /// Resets the controller and initialises the card up to transfer state, 4-bit bus:
    /// CMD0, CMD8, CMD55 + ACMD41 (until ready, ≤ 1 s), CMD2, CMD3, CMD9 (capacity), CMD7,
    /// CMD16, CMD55 + ACMD6, CMD13 (`docs/qemu-imx8mp.md` §5.1).
    ///
    /// A card that answers neither CMD8 nor CMD55 gives [`MediaError::NoCard`].
    pub fn init(&mut self) -> Result<CardInfo, MediaError> {
        self.card = None;
        self.reset_controller()?;

        self.command(0, 0, Response::None)?;
        // CMD8: voltage 2.7-3.6 V (0x1), check pattern 0xAA. No answer: a version 1.x card.
        let v2 = match self.command(8, 0x1AA, Response::R1) {
            Ok(r) if r[0] & 0xFFF == 0x1AA => true,
            Ok(r) => {
                return Err(MediaError::Card {
                    command: 8,
                    response: r[0],
                    what: "CMD8 echo differs from 0x1AA",
                });
            }
            Err(MediaError::Command { int_status, .. }) if int_status & INT_CTOE != 0 => false,
            Err(e) => return Err(e),
        };

        // ACMD41: HCS when the card is v2; 3.2-3.4 V window.
        let arg = if v2 { 0x40FF_8000 } else { 0x00FF_8000 };
        let mut deadline = self.timer.deadline_us(ACMD41_TIMEOUT_US);
        let ocr = loop {
            match self.command(55, 0, Response::R1) {
                Ok(_) => {}
                Err(MediaError::Command { int_status, .. })
                    if int_status & INT_CTOE != 0 && !v2 =>
                {
                    return Err(MediaError::NoCard);
                }
                Err(e) => return Err(e),
            }
            let ocr = self.command(41, arg, Response::R3)?[0];
            if ocr & (1 << 31) != 0 {
                break ocr;
            }
            if deadline.expired() {
                return Err(MediaError::Timeout {
                    command: 41,
                    waiting_for: "card power-up (OCR bit 31)",
                    int_status: self.regs().int_status.get(),
                });
            }
            embedded_hal::delay::DelayNs::delay_us(&mut self.timer, ACMD41_RETRY_US);
        };
        let kind = if ocr & (1 << 30) != 0 {
            CardKind::Sdhc
        } else {
            CardKind::Sdsc
        };

        let cid = long_response(&self.command(2, 0, Response::R2)?);
        let rca = (self.command(3, 0, Response::R1)?[0] >> 16) as u16;
        let rca_arg = u32::from(rca) << 16;
        let csd_rsp = self.command(9, rca_arg, Response::R2)?;
        let csd = long_response(&csd_rsp);
        let blocks = capacity_blocks(csd).ok_or(MediaError::Card {
            command: 9,
            response: csd_rsp[3],
            what: "unknown CSD structure",
        })?;

        // Stand-by state: leave the identification clock for the transfer clock.
        self.set_clock(SYS_CTRL_TRANSFER);

        self.command(7, rca_arg, Response::R1b)?;
        self.wait_dat0(7)?;
        self.command(16, size_of::<Sector>() as u32, Response::R1)?;
        self.command(55, rca_arg, Response::R1)?;
        self.command(6, 2, Response::R1)?;
        self.regs().prot_ctrl.set(PROT_CTRL_4BIT);
        self.transfer_state(rca)?;

        let info = CardInfo {
            kind,
            rca,
            ocr,
            v2,
            cid,
            csd,
            blocks,
        };
        self.card = Some(info);
        Ok(info)
    }

    /// CMD13: the card must be in TRAN (current state 4) and ready for data.
    /// Before [`init`](Self::init): [`MediaError::NoCard`].
    pub fn check_transfer_state(&mut self) -> Result<(), MediaError> {
        let rca = self.card.ok_or(MediaError::NoCard)?.rca;
        self.transfer_state(rca)
    }

    fn transfer_state(&mut self, rca: u16) -> Result<(), MediaError> {
        let status = self.command(13, u32::from(rca) << 16, Response::R1)?[0];
        let state = (status >> 9) & 0xF;
        if state != 4 || status & (1 << 8) == 0 {
            return Err(MediaError::Card {
                command: 13,
                response: status,
                what: "card not in TRAN state / not ready for data",
            });
        }
        Ok(())
    }

    /// Like [`BlockRead::read_blocks`], servicing `watchdog` before the read and every 128 KiB
    /// of it (a 2 MiB PIO read takes about a second in QEMU, qemu-imx8mp.md §6).
    pub fn read_blocks_serviced(
        &mut self,
        lba: u64,
        buf: &mut [u8],
        watchdog: &mut dyn WatchdogService,
    ) -> Result<(), MediaError> {
        self.read(lba, buf, Some(watchdog))
    }

    fn read(
        &mut self,
        lba: u64,
        buf: &mut [u8],
        mut watchdog: Option<&mut dyn WatchdogService>,
    ) -> Result<(), MediaError> {
        let card = self.card.ok_or(MediaError::NoCard)?;
        let out_of_range = MediaError::OutOfRange {
            lba,
            len: buf.len(),
        };
        let count = buf.len() / size_of::<Sector>();
        if buf.is_empty() || !buf.len().is_multiple_of(size_of::<Sector>()) {
            return Err(out_of_range);
        }
        match lba.checked_add(count as u64) {
            Some(end) if end <= card.blocks => {}
            _ => return Err(out_of_range),
        }
        let per_command = if watchdog.is_some() {
            self.max_blocks_per_command.min(SERVICE_INTERVAL_BLOCKS)
        } else {
            self.max_blocks_per_command
        } as usize;
        let mut next = lba;
        for chunk in buf.chunks_mut(per_command * size_of::<Sector>()) {
            if let Some(w) = watchdog.as_deref_mut() {
                w.service();
            }
            let n = chunk.len() / size_of::<Sector>();
            let arg = match card.kind {
                CardKind::Sdsc => next.checked_mul(size_of::<Sector>() as u64),
                CardKind::Sdhc => Some(next),
            }
            .and_then(|a| u32::try_from(a).ok())
            .ok_or(out_of_range)?;
            if let Err(e) = self.read_command(arg, n as u32, chunk, false) {
                self.recover(n > 1);
                return Err(e);
            }
            next += n as u64;
        }
        Ok(())
    }

    /// One CMD17 (n = 1) or CMD18 of `n` blocks at card address `arg`; a CMD18 is stopped by
    /// the controller's auto CMD12, or with `explicit_stop` by a CMD12 sent here after the
    /// transfer completes (the eMMC path: every multi-block read ends with its own CMD12).
    fn read_command(
        &mut self,
        arg: u32,
        n: u32,
        buf: &mut [u8],
        explicit_stop: bool,
    ) -> Result<(), MediaError> {
        let (cmd, mix) = match (n, explicit_stop) {
            (1, _) => (17, MIX_READ_SINGLE),
            (_, false) => (18, MIX_READ_MULTI),
            (_, true) => (18, MIX_READ_MULTI_EXPLICIT_STOP),
        };
        self.send(cmd, arg, Response::R1, mix, Some(n))?;
        self.read_data(cmd, buf)?;
        if n > 1 && explicit_stop {
            self.send(12, 0, Response::R1b, MIX_NONE, None)?;
            self.wait_dat0(12)?;
        }
        Ok(())
    }

    /// Moves the blocks of the data phase of `cmd` into `buf` by PIO and waits for TC.
    fn read_data(&mut self, cmd: u8, buf: &mut [u8]) -> Result<(), MediaError> {
        let mut words = [0u32; WORDS_PER_BLOCK];
        for block in buf.chunks_exact_mut(size_of::<Sector>()) {
            self.wait_block_ready(cmd)?;
            let r = self.regs();
            r.int_status.set(INT_BRR);
            for w in words.iter_mut() {
                *w = r.data_buff.get();
            }
            for (dst, w) in block.chunks_exact_mut(4).zip(words.iter()) {
                dst.copy_from_slice(&w.to_le_bytes());
            }
        }
        self.wait_status(cmd, INT_TC, DATA_TIMEOUT_US, "transfer complete (TC)")?;
        Ok(())
    }

    /// Waits for PRES_STATE.BREN (a whole block in the FIFO, read watermark = 128 words),
    /// failing on any error bit or after [`DATA_TIMEOUT_US`].
    fn wait_block_ready(&self, cmd: u8) -> Result<(), MediaError> {
        let r = self.regs();
        if r.pres_state.get() & PRES_BREN != 0 {
            return Ok(());
        }
        let mut deadline = self.timer.deadline_us(DATA_TIMEOUT_US);
        loop {
            if r.pres_state.get() & PRES_BREN != 0 {
                return Ok(());
            }
            let status = r.int_status.get();
            if status & INT_ERRORS != 0 {
                return Err(MediaError::Command {
                    command: cmd,
                    int_status: status,
                });
            }
            if deadline.expired() {
                return Err(MediaError::Timeout {
                    command: cmd,
                    waiting_for: "buffer read enable (BREN)",
                    int_status: status,
                });
            }
        }
    }

    /// After a failed read: reset the CMD and DAT lines and, for a multi-block read, stop the
    /// card's transmission with CMD12 (its result is ignored: the card may already be idle).
    fn recover(&mut self, multi: bool) {
        self.reset_lines();
        if multi {
            let _ = self.send(12, 0, Response::R1b, MIX_NONE, None);
            let _ = self.wait_dat0(12);
            self.reset_lines();
        }
    }

    /// RSTC | RSTD, polled until both clear (bounded; a stuck bit is left to the next
    /// command's inhibit wait to report).
    fn reset_lines(&self) {
        let r = self.regs();
        let clock = self.clock;
        r.sys_ctrl.set(clock | SYS_CTRL_RSTC | SYS_CTRL_RSTD);
        let mut deadline = self.timer.deadline_us(RESET_TIMEOUT_US);
        while r.sys_ctrl.get() & (SYS_CTRL_RSTC | SYS_CTRL_RSTD) != 0 && !deadline.expired() {}
        r.int_status.set(0xFFFF_FFFF);
    }

    /// Full reset (RSTA), identification clock, 80 init clocks, interrupt set-up, 1-bit bus.
    fn reset_controller(&mut self) -> Result<(), MediaError> {
        let r = self.regs();
        r.sys_ctrl.set(SYS_CTRL_LOW_NIBBLE | SYS_CTRL_RSTA);
        let mut deadline = self.timer.deadline_us(RESET_TIMEOUT_US);
        while r.sys_ctrl.get() & SYS_CTRL_RSTA != 0 {
            if deadline.expired() {
                return Err(MediaError::Timeout {
                    command: NO_COMMAND,
                    waiting_for: "controller reset (SYS_CTRL.RSTA)",
                    int_status: r.int_status.get(),
                });
            }
        }
        self.set_clock(SYS_CTRL_IDENT);
        r.sys_ctrl.set(SYS_CTRL_IDENT | SYS_CTRL_INITA);
        let mut deadline = self.timer.deadline_us(RESET_TIMEOUT_US);
        while r.sys_ctrl.get() & SYS_CTRL_INITA != 0 && !deadline.expired() {}
        r.int_status_en.set(0xFFFF_FFFF);
        r.int_signal_en.set(0);
        r.int_status.set(0xFFFF_FFFF);
        r.prot_ctrl.set(PROT_CTRL_1BIT);
        // Read watermark = one block (128 words), write watermark likewise; QEMU ignores it.
        r.wtmk_lvl
            .set((WORDS_PER_BLOCK as u32) << 16 | WORDS_PER_BLOCK as u32);
        Ok(())
    }

    /// Programs SYS_CTRL with a clock value (low nibble 0xF included).
    fn set_clock(&mut self, value: u32) {
        self.clock = value;
        self.regs().sys_ctrl.set(value);
        // Clock stable (PRES_STATE.SDSTB, bit 3) on silicon; QEMU never sets it, so the wait
        // is short and its expiry is not an error.
        let mut deadline = self.timer.deadline_us(1_000);
        while self.regs().pres_state.get() & (1 << 3) == 0 && !deadline.expired() {}
    }

    /// Sends a command without data and returns RSP0..3.
    fn command(&mut self, cmd: u8, arg: u32, rsp: Response) -> Result<[u32; 4], MediaError> {
        let r = self.send(cmd, arg, rsp, MIX_NONE, None);
        if r.is_err() {
            // SDHCI needs a CMD-line reset after a command error before the next command.
            self.reset_lines();
        }
        r
    }

    /// The command protocol of `docs/qemu-imx8mp.md` §5.1: wait for CIHB (and CDIHB for data
    /// or busy), clear INT_STATUS, BLK_ATT, CMD_ARG, MIX_CTRL, CMD_XFR_TYP; poll CC and the
    /// error bits. Returns RSP0..3.
    fn send(
        &self,
        cmd: u8,
        arg: u32,
        rsp: Response,
        mix: u32,
        blocks: Option<u32>,
    ) -> Result<[u32; 4], MediaError> {
        let r = self.regs();
        let inhibit = if blocks.is_some() || rsp == Response::R1b {
            PRES_CIHB | PRES_CDIHB
        } else {
            PRES_CIHB
        };
        let mut deadline = self.timer.deadline_us(RESET_TIMEOUT_US);
        while r.pres_state.get() & inhibit != 0 {
            if deadline.expired() {
                return Err(MediaError::Timeout {
                    command: cmd,
                    waiting_for: "command/data lines free (CIHB/CDIHB)",
                    int_status: r.int_status.get(),
                });
            }
        }
        r.int_status.set(0xFFFF_FFFF);
        let mut xfr = u32::from(cmd & 0x3F) << 24 | rsp.flags();
        if let Some(n) = blocks {
            r.blk_att.set(n << 16 | size_of::<Sector>() as u32);
            xfr |= XFR_DPSEL;
        }
        r.cmd_arg.set(arg);
        r.mix_ctrl.set(mix);
        r.cmd_xfr_typ.set(xfr);
        self.wait_status(cmd, INT_CC, COMMAND_TIMEOUT_US, "command complete (CC)")?;
        r.int_status.set(INT_CC);
        Ok([
            r.cmd_rsp[0].get(),
            r.cmd_rsp[1].get(),
            r.cmd_rsp[2].get(),
            r.cmd_rsp[3].get(),
        ])
    }

    /// Polls INT_STATUS until `bit` is set; any error bit first gives
    /// [`MediaError::Command`], the deadline [`MediaError::Timeout`].
    fn wait_status(
        &self,
        cmd: u8,
        bit: u32,
        timeout_us: u64,
        waiting_for: &'static str,
    ) -> Result<(), MediaError> {
        let r = self.regs();
        let mut deadline: Option<Deadline> = None;
        loop {
            let status = r.int_status.get();
            if status & INT_ERRORS != 0 {
                return Err(MediaError::Command {
                    command: cmd,
                    int_status: status,
                });
            }
            if status & bit != 0 {
                return Ok(());
            }
            let d = deadline.get_or_insert_with(|| self.timer.deadline_us(timeout_us));
            if d.expired() {
                return Err(MediaError::Timeout {
                    command: cmd,
                    waiting_for,
                    int_status: status,
                });
            }
        }
    }

    /// Waits for DAT0 high: the card has left busy (after R1b responses), at most
    /// [`BUSY_TIMEOUT_US`].
    fn wait_dat0(&self, cmd: u8) -> Result<(), MediaError> {
        self.wait_dat0_for(cmd, BUSY_TIMEOUT_US)
    }

    /// Waits for DAT0 high for at most `timeout_us`.
    fn wait_dat0_for(&self, cmd: u8, timeout_us: u64) -> Result<(), MediaError> {
        let r = self.regs();
        let mut deadline = self.timer.deadline_us(timeout_us);
        while r.pres_state.get() & PRES_DAT0 == 0 {
            if deadline.expired() {
                return Err(MediaError::Timeout {
                    command: cmd,
                    waiting_for: "card busy (DAT0 low)",
                    int_status: r.int_status.get(),
                });
            }
        }
        Ok(())
    }
}

/// A 136-bit response (RSP3..RSP0 hold bits 127:8, CRC stripped) as the full 128-bit
/// register value with bits 7:0 zero.
fn long_response(rsp: &[u32; 4]) -> u128 {
    let v = u128::from(rsp[3]) << 96
        | u128::from(rsp[2]) << 64
        | u128::from(rsp[1]) << 32
        | u128::from(rsp[0]);
    v << 8
}

impl BlockRead for Usdhc {
    /// Capacity from the CSD; 0 before a successful [`Usdhc::init`].
    fn block_count(&self) -> u64 {
        self.card.map_or(0, |c| c.blocks)
    }

    /// CMD17 for one block, CMD18 with auto CMD12 for more, split into commands of at most
    /// 65535 blocks. Before [`Usdhc::init`]: [`MediaError::NoCard`].
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        self.read(lba, buf, None)
    }
}
