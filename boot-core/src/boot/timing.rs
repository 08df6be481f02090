//! Where the boot's time goes (issue 4 figures): media reads, SHA-256 over signed content, and the
//! rest of authentication (signature checks, parsing), counted in ticks of the board's clock.

use imx_hab::hab::software::HashMeter;

use crate::platform::Clock;

/// Ticks and bytes spent per activity during one boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Ticks spent in [`crate::platform::BlockRead::read_blocks`].
    pub read_ticks: u64,
    /// Bytes read from the medium.
    pub read_bytes: u64,
    /// Ticks spent authenticating (hashing included).
    pub auth_ticks: u64,
    /// Ticks of authentication spent hashing signed content (where the backend reports it).
    pub hash_ticks: u64,
    /// Bytes of signed content hashed.
    pub hash_bytes: u64,
}

impl Timings {
    /// Ticks of authentication not spent hashing: signature checks, certificate and CSF parsing.
    pub const fn signature_ticks(&self) -> u64 {
        self.auth_ticks.saturating_sub(self.hash_ticks)
    }
}

/// A [`HashMeter`] that adds hashing time to a [`Timings`].
pub(crate) struct ClockMeter<'a, C: Clock> {
    pub(crate) clock: &'a C,
    pub(crate) timings: &'a mut Timings,
    pub(crate) started: u64,
}

impl<C: Clock> HashMeter for ClockMeter<'_, C> {
    fn hash_start(&mut self) {
        self.started = self.clock.ticks();
    }

    fn hash_end(&mut self, bytes: u64) {
        self.timings.hash_ticks += self.clock.ticks().saturating_sub(self.started);
        self.timings.hash_bytes += bytes;
    }
}
