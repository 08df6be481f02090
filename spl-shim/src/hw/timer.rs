//! The ARM generic timer (CNTPCT_EL0 / CNTFRQ_EL0) as the shim's clock, delay and timeout
//! source.
//!
//! QEMU's `imx8mp-evk` reports CNTFRQ_EL0 = 8 000 000 at entry and CNTPCT tracks host time
//! (`docs/qemu-imx8mp.md` §1, §6). On silicon the boot ROM is expected to leave the frequency
//! programmed; when CNTFRQ_EL0 reads 0 the driver assumes [`FALLBACK_FREQUENCY_HZ`].

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTPCT_EL0, Readable};
use embedded_hal::delay::DelayNs;

use boot_core::platform::Clock;

/// Frequency assumed when CNTFRQ_EL0 reads 0: 8 MHz, the value QEMU reports
/// (`docs/qemu-imx8mp.md` §1) and the i.MX 8M system-counter rate U-Boot programs as
/// COUNTER_FREQUENCY (*UNVERIFIED* against the reference manual).
pub const FALLBACK_FREQUENCY_HZ: u64 = 8_000_000;

/// The ARM generic timer of the running core. Zero-sized: every method reads the system
/// registers afresh, so copies are free and all agree.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericTimer;

impl GenericTimer {
    /// The timer handle (no set-up needed: the physical counter runs from reset).
    pub const fn new() -> Self {
        GenericTimer
    }

    /// Current value of CNTPCT_EL0. An ISB first keeps the read from being hoisted above
    /// earlier instructions (Arm ARM, "Reading the physical counter").
    pub fn now(&self) -> u64 {
        barrier::isb(barrier::SY);
        CNTPCT_EL0.get()
    }

    /// Counter frequency in Hz (CNTFRQ_EL0, or [`FALLBACK_FREQUENCY_HZ`] when it reads 0).
    pub fn frequency(&self) -> u64 {
        match CNTFRQ_EL0.get() {
            0 => FALLBACK_FREQUENCY_HZ,
            f => f,
        }
    }

    /// Ticks in `us` microseconds, rounded up (saturating).
    pub fn ticks_from_micros(&self, us: u64) -> u64 {
        scale_up(us, self.frequency(), 1_000_000)
    }

    /// Microseconds elapsed since the tick count `start`.
    pub fn micros_since(&self, start: u64) -> u64 {
        self.micros(self.now().wrapping_sub(start))
    }

    /// A deadline `us` microseconds from now.
    pub fn deadline_us(&self, us: u64) -> Deadline {
        Deadline::new(*self, us)
    }

    /// Busy-waits for `ticks` counter ticks.
    fn spin_ticks(&self, ticks: u64) {
        let start = self.now();
        while self.now().wrapping_sub(start) < ticks {
            core::hint::spin_loop();
        }
    }
}

/// `ceil(value × freq / per)` in 64-bit arithmetic (whole units and remainder apart, saturating):
/// the firmware then needs no 128-bit division routine.
fn scale_up(value: u64, freq: u64, per: u64) -> u64 {
    let whole = (value / per).saturating_mul(freq);
    let part = ((value % per).saturating_mul(freq)).div_ceil(per);
    whole.saturating_add(part)
}

impl Clock for GenericTimer {
    fn ticks(&self) -> u64 {
        self.now()
    }

    fn frequency_hz(&self) -> u64 {
        self.frequency()
    }
}

impl DelayNs for GenericTimer {
    fn delay_ns(&mut self, ns: u32) {
        self.spin_ticks(scale_up(u64::from(ns), self.frequency(), 1_000_000_000));
    }

    fn delay_us(&mut self, us: u32) {
        self.spin_ticks(self.ticks_from_micros(u64::from(us)));
    }

    fn delay_ms(&mut self, ms: u32) {
        self.spin_ticks(self.ticks_from_micros(u64::from(ms) * 1000));
    }
}

/// Polls allowed per microsecond of timeout before [`Deadline::expired`] gives up even though
/// the counter says time remains. Each poll does at least one MMIO read (≈ 0.5 µs in QEMU,
/// `docs/qemu-imx8mp.md` §6; tens of ns on silicon), so this backstop only fires when the
/// counter does not advance at all (a stopped system counter on silicon): then no wait is
/// unbounded either.
const POLLS_PER_MICROSECOND: u64 = 100;

/// The end of a bounded wait, measured by the generic timer with a poll-count backstop.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    timer: GenericTimer,
    start: u64,
    ticks: u64,
    polls_left: u64,
}

impl Deadline {
    /// A deadline `us` microseconds after now.
    pub fn new(timer: GenericTimer, us: u64) -> Self {
        Deadline {
            timer,
            start: timer.now(),
            ticks: timer.ticks_from_micros(us),
            polls_left: us.saturating_mul(POLLS_PER_MICROSECOND).max(1000),
        }
    }

    /// Whether the deadline has passed. Call once per poll: each call also counts against the
    /// backstop.
    pub fn expired(&mut self) -> bool {
        self.polls_left = self.polls_left.saturating_sub(1);
        self.polls_left == 0 || self.timer.now().wrapping_sub(self.start) >= self.ticks
    }
}
