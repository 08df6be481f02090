//! Physical memory regions and the windows images may be loaded into.

/// A half-open physical address range `[start, start + size)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// A region from its start and size.
    pub const fn new(start: u64, size: u64) -> Self {
        Region { start, size }
    }

    /// One past the last address (saturating).
    pub const fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }

    /// Whether `[start, start + len)` lies wholly inside this region (false on overflow).
    pub const fn contains_range(&self, start: u64, len: u64) -> bool {
        match start.checked_add(len) {
            Some(end) => start >= self.start && end <= self.end(),
            None => false,
        }
    }

    /// Whether the two regions share at least one byte.
    pub const fn overlaps(&self, other: &Region) -> bool {
        self.size != 0 && other.size != 0 && self.start < other.end() && other.start < self.end()
    }
}

/// The parts of a board's memory map the boot flow cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryMap {
    /// On-chip RAM.
    pub ocram: Region,
    /// DRAM as populated on this board (or configured with `-m` in QEMU).
    pub dram: Region,
    /// Where a signed FIT is read and authenticated; its IVT `self` must lie here.
    pub fit_window: Region,
    /// Ranges a FIT image may be copied to (each image must lie wholly inside one).
    pub load_ranges: &'static [Region],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_at_the_edges() {
        let r = Region::new(0x1000, 0x1000);
        assert!(r.contains_range(0x1000, 0x1000));
        assert!(!r.contains_range(0x1000, 0x1001));
        assert!(!r.contains_range(0xFFF, 1));
        assert!(!r.contains_range(u64::MAX, 2));
        assert!(r.overlaps(&Region::new(0x1FFF, 1)));
        assert!(!r.overlaps(&Region::new(0x2000, 1)));
        assert!(!r.overlaps(&Region::new(0x1000, 0)));
    }
}
