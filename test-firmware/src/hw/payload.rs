//! What the simulation's payloads (the test payload and the Linux stand-in) share: the version
//! field `cargo xtask image` patches after linking, the slot the shim left in the cell, and the
//! exception level they were entered at.

use spl_shim::hw::BOARD;

/// Bytes of a payload's version field: the marker then the NUL-padded version text.
pub const VERSION_FIELD_LEN: usize = 48;

/// The marker that starts the field; xtask's `patch_payload_version` finds it in the flat
/// binary and overwrites the bytes after it.
pub const VERSION_MARKER: &[u8; 20] = b"IRB-PAYLOAD-VERSION:";

/// The field's initial contents (the version reads `unversioned` until patched). Each payload
/// keeps its own `#[used]` static with this value, in section `.rodata.payload_version`.
pub const UNPATCHED_VERSION_FIELD: [u8; VERSION_FIELD_LEN] =
    *b"IRB-PAYLOAD-VERSION:unversioned\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// The version text of a payload's field, read volatile (the bytes were patched after linking,
/// so the compiler must not fold the initial value).
pub fn version_text(field: &'static [u8; VERSION_FIELD_LEN]) -> &'static str {
    let text = &field[VERSION_MARKER.len()..];
    // SAFETY: each pointer is to an element of the static array.
    let len = text
        .iter()
        .position(|b| unsafe { core::ptr::read_volatile(b) } == 0)
        .unwrap_or(text.len());
    core::str::from_utf8(&text[..len]).unwrap_or("(not UTF-8)")
}

/// Word 0 of the boot cell: the slot the shim booted (design.md §6).
pub fn cell_slot() -> u32 {
    // SAFETY: the board's cell address is 4-byte aligned OCRAM the shim wrote before the
    // handoff (design.md §6, boards crate).
    unsafe { (BOARD.cell_addr as *const u32).read_volatile() }
}

/// The exception level the payload runs at (the shim hands off at EL3).
pub fn current_el() -> u64 {
    use aarch64_cpu::registers::{CurrentEL, Readable};
    CurrentEL.read(CurrentEL::EL)
}
