//! The defmt global logger: frames on the board's console UART, timestamps in microseconds from
//! the generic timer (docs/crates.md §5, issue 16). Only in the defmt build (`cfg(defmt_log)`);
//! the text build prints lines through `boot_core::shim_log!` instead.
//!
//! The shim runs on one core with interrupts masked, so a frame is only ever interrupted by a
//! synchronous exception or a panic inside the logger itself. A frame started while another is
//! open is dropped (its bytes would corrupt the open one).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use super::timer::GenericTimer;
use super::uart::Uart;

defmt::timestamp!("{=u64:us}", GenericTimer::new().micros_since(0));

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

/// Sends a lone frame delimiter: a decoder reading the UART after an earlier stage's text (a
/// reset from Linux) starts decoding frames at the next byte. The shim calls it once the
/// console is set up, before its first frame.
pub fn resync() {
    uart_write(&[0]);
}
