//! Hardware support only the test firmware needs (`target_os = "none"` only): [`semihosting`]
//! (QEMU exit codes), [`payload`] (what the test payload and the Linux stand-in share), and
//! for the Linux stand-in's EL3 duties [`gic`] (GICv3 set-up for a Non-secure OS) and [`psci`]
//! (a minimal PSCI 1.1). The product drivers are `spl_shim::hw`.
//!
//! `unsafe` is confined to the MMIO and system-instruction boundary; each block says why it is
//! sound.

pub mod gic;
pub mod payload;
pub mod psci;
pub mod semihosting;
