//! AArch64: the reset entry (`entry.rs`) and the EL3 exception vector table (`vectors.rs`).

mod entry;
mod vectors;

pub use entry::halt;
