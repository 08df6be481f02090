//! The defmt global logger: frames on the board's console UART, timestamps in milliseconds since
//! the shim's entry from the generic timer (docs/crates.md §5, issue 16). Only in the defmt
//! build (`cfg(defmt_log)`); the text build prints lines through `boot_core::shim_log!`
//! instead.
//!
//! Milliseconds since entry, not microseconds since the counter started: a frame's timestamp
//! then takes zero to two bytes on the wire (a boot lasts well under a minute), also after a
//! warm reset of a board whose counter has run for days; the boot's own figures (the handoff
//! message) are microseconds.
//! defmt's encoder sends a lone frame delimiter before the first frame of each boot (its state
//! is in BSS), so a decoder that read an earlier stage's text resynchronises there.
//!
//! The shim runs on one core with interrupts masked, so a frame is only ever interrupted by a
//! synchronous exception or a panic inside the logger itself. A frame started while another is
//! open is dropped (its bytes would corrupt the open one).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::timer::GenericTimer;
use super::uart::Uart;

defmt::timestamp!(
    "{=u64:ms}",
    GenericTimer::new().micros_since(START.load(Ordering::Relaxed)) / 1000
);

/// The counter at the shim's entry ([`set_start`]); 0 (the counter's start) until then.
static START: AtomicU64 = AtomicU64::new(0);

/// Sets the timestamps' origin: the counter value at the shim's entry.
pub fn set_start(ticks: u64) {
    START.store(ticks, Ordering::Relaxed);
}

/// Set while a frame is open.
static TAKEN: AtomicBool = AtomicBool::new(false);
/// Set when the frame being logged is a nested one that is dropped.
static NESTED: AtomicBool = AtomicBool::new(false);
/// Set after the UART stopped draining: later bytes are dropped without waiting again.
static STALLED: AtomicBool = AtomicBool::new(false);

/// The frame encoder (rzCOBS), touched only by the owner of [`TAKEN`].
struct EncoderCell(UnsafeCell<defmt::Encoder>);

// SAFETY: the encoder is only reached between a successful `acquire` (TAKEN false -> true)
// and the matching `release`, on the single core the shim runs on.
unsafe impl Sync for EncoderCell {}

static ENCODER: EncoderCell = EncoderCell(UnsafeCell::new(defmt::Encoder::new()));

/// Writes encoded bytes to the console UART as they are (no newline translation).
fn uart_write(bytes: &[u8]) {
    if STALLED.load(Ordering::Relaxed) {
        return;
    }
    let mut uart = Uart::console();
    for &b in bytes {
        if !uart.write_byte(b) {
            STALLED.store(true, Ordering::Relaxed);
            return;
        }
    }
}

#[defmt::global_logger]
struct UartLogger;

// SAFETY (for the `unsafe fn`s below): defmt calls them in acquire/write*/release order from
// its macros; the TAKEN flag makes the owner of a frame the only user of ENCODER.
unsafe impl defmt::Logger for UartLogger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            NESTED.store(true, Ordering::Relaxed);
            return;
        }
        // SAFETY: TAKEN was false and is now ours.
        unsafe { (*ENCODER.0.get()).start_frame(uart_write) }
    }

    unsafe fn flush() {}

    unsafe fn release() {
        if NESTED.swap(false, Ordering::Relaxed) {
            return;
        }
        // SAFETY: the frame opened by `acquire` is ours until TAKEN is cleared.
        unsafe { (*ENCODER.0.get()).end_frame(uart_write) };
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        if NESTED.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: as in `release`.
        unsafe { (*ENCODER.0.get()).write(bytes, uart_write) }
    }
}
