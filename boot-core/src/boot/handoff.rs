//! Handoff planning (design.md §5 step 4): which images of the authenticated FIT's default
//! configuration go where, and where execution continues.
//!
//! Pure: works on the authenticated bytes and the board's memory map; the firmware executes the
//! plan (copies, cache maintenance, the jump). Every destination is checked against the board's
//! load ranges, the FIT window the blob sits in, the shim's own memory and every other
//! destination, so a signed-but-wrong FIT can never make the shim overwrite itself or its source.

use core::fmt;

use boards::{MemoryMap, Region};
use imx_hab::ParseError;
use imx_hab::fit::{Fit, FitImage};

/// Most images a configuration may load (firmware + loadables + fdt). U-Boot's i.MX 8M FITs
/// load three (U-Boot, BL31, the U-Boot DT) and at most five with a TEE and its DT.
pub const MAX_IMAGES: usize = 8;

/// One image to copy out of the FIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageCopy {
    /// Image node name.
    pub name: Name,
    /// Offset of the payload in the FIT blob.
    pub src_offset: u64,
    /// Payload length in bytes.
    pub len: u64,
    /// Physical destination (`load`).
    pub dest: u64,
}

impl ImageCopy {
    /// The destination range.
    pub const fn dest_region(&self) -> Region {
        Region::new(self.dest, self.len)
    }
}

/// The copies of a plan as the shim's log lines, `load <image> <src>+<len> -> <dest>` each
/// with the source address in the window (the blob at `blob`), for a `{}` at the start of a
/// `shim_log!` message: [`fmt::Display`] in the text build (each line ends with the next
/// line's `shim: ` prefix), `defmt::Format` in the defmt build (`log/frames.rs`).
pub struct LoadLines<'a> {
    /// The copies, in plan order.
    pub copies: &'a [ImageCopy],
    /// Physical address of the FIT blob in the window.
    pub blob: u64,
}

impl fmt::Display for LoadLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.copies {
            write!(
                f,
                "load {} {:#x}+{:#x} -> {:#x}\nshim: ",
                c.name.as_str(),
                self.blob + c.src_offset,
                c.len,
                c.dest
            )?;
        }
        Ok(())
    }
}

/// Where execution continues after the copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Image whose entry this is.
    pub image: Name,
    /// Address jumped to at EL3 with x0 = 0.
    pub address: u64,
    /// Why this image (bl31 convention or the firmware image).
    pub rule: EntryRule,
}

/// Which rule chose the entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryRule {
    /// The first loadable with an `entry` property (U-Boot SPL's ATF convention: BL31).
    LoadableEntry,
    /// The firmware image's `entry`.
    FirmwareEntry,
    /// The firmware image's `load` (no `entry` property).
    FirmwareLoad,
}

/// What the firmware does after the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Copies in configuration order: firmware, loadables, fdt.
    pub copies: heapless::Vec<ImageCopy, MAX_IMAGES>,
    /// The jump.
    pub entry: Entry,
    /// The default configuration's `rollback-index` (the security epoch; `None` = 0).
    pub rollback_index: Option<u32>,
}

/// An image node name as an error keeps it (owned, so a verdict outlives the FIT's bytes; a
/// longer name is cut at a character boundary).
pub type Name = heapless::String<32>;

/// `s` as a [`Name`].
pub fn name(s: &str) -> Name {
    let mut n = Name::new();
    for c in s.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

/// Why an authenticated FIT cannot be handed off to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffError {
    /// The FIT does not parse (within its authenticated bytes).
    Fit(ParseError),
    /// The default configuration has neither a firmware image nor a loadable with an entry.
    NoEntry,
    /// More than [`MAX_IMAGES`] images.
    TooManyImages,
    /// A configuration names an image that is not under `/images`.
    MissingImage(Name),
    /// An image needs a feature the shim does not have.
    Unsupported {
        /// Image name.
        image: Name,
        /// What (`compression`, `load`).
        what: &'static str,
    },
    /// An image's destination is outside every load range of the board.
    OutsideLoadRanges {
        /// Image name.
        image: Name,
        /// Destination.
        dest: Region,
    },
    /// An image's destination overlaps something it must not.
    Overlap {
        /// Image name.
        image: Name,
        /// Destination.
        dest: Region,
        /// What it overlaps (`the FIT being loaded`, `the shim`, or another image's name).
        with: Name,
    },
    /// The entry address is not inside the image it belongs to.
    EntryOutsideImage {
        /// Image name.
        image: Name,
        /// Entry address.
        entry: u64,
    },
}

impl fmt::Display for HandoffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandoffError::Fit(e) => write!(f, "FIT: {e}"),
            HandoffError::NoEntry => f.write_str(
                "the default configuration has no firmware image and no loadable with an entry",
            ),
            HandoffError::TooManyImages => {
                write!(f, "the configuration loads more than {MAX_IMAGES} images")
            }
            HandoffError::MissingImage(n) => write!(f, "image `{n}` is not under /images"),
            HandoffError::Unsupported { image, what } => {
                write!(f, "image `{image}`: unsupported {what}")
            }
            HandoffError::OutsideLoadRanges { image, dest } => write!(
                f,
                "image `{image}` at {:#x}..{:#x} is outside the board's load ranges",
                dest.start,
                dest.end()
            ),
            HandoffError::Overlap { image, dest, with } => write!(
                f,
                "image `{image}` at {:#x}..{:#x} overlaps {with}",
                dest.start,
                dest.end()
            ),
            HandoffError::EntryOutsideImage { image, entry } => {
                write!(f, "entry {entry:#x} is outside image `{image}`")
            }
        }
    }
}

/// Plans the handoff for an authenticated signed FIT.
///
/// `fit_bytes` must be the authenticated part of the blob up to its IVT (`[0, ivt_offset)`), so
/// every payload copied is covered by the signature; `blob` is where the blob lies
/// (load address and signed length) and `shim` the memory the running shim occupies (image,
/// BSS, stack).
pub fn plan<'a>(
    fit_bytes: &'a [u8],
    blob: Region,
    shim: &[Region],
    memory: &MemoryMap,
) -> Result<Plan, HandoffError> {
    let fit = Fit::parse(fit_bytes).map_err(HandoffError::Fit)?;
    let config = fit.default_config().map_err(HandoffError::Fit)?;
    let find = |n: &'a str| {
        fit.image_by_name(n)
            .ok_or_else(|| HandoffError::MissingImage(name(n)))
    };

    let mut images: heapless::Vec<FitImage<'a>, MAX_IMAGES> = heapless::Vec::new();
    let mut push = |img: FitImage<'a>| images.push(img).map_err(|_| HandoffError::TooManyImages);
    let firmware = config.firmware.map(find).transpose()?;
    if let Some(fw) = firmware {
        push(fw)?;
    }
    let mut loadables = 0;
    for name in config.loadables() {
        push(find(name)?)?;
        loadables += 1;
    }
    if let Some(fdt) = config.fdt.map(find).transpose()?
        && fdt.load.is_some()
    {
        // A DT without `load` is U-Boot's to place after itself; the shim leaves it in the FIT.
        push(fdt)?;
    }

    let mut copies: heapless::Vec<ImageCopy, MAX_IMAGES> = heapless::Vec::new();
    for img in &images {
        if !matches!(img.compression, None | Some("none")) {
            return Err(HandoffError::Unsupported {
                image: name(img.name),
                what: "compression",
            });
        }
        let dest = img.load.ok_or_else(|| HandoffError::Unsupported {
            image: name(img.name),
            what: "image without a load address",
        })?;
        let copy = ImageCopy {
            name: name(img.name),
            src_offset: img.data.offset,
            len: img.data.len,
            dest,
        };
        check_destination(&copy, blob, shim, memory, &copies)?;
        // Cannot fail: `images` and `copies` have the same capacity.
        let _ = copies.push(copy);
    }

    let first_loadable = usize::from(firmware.is_some());
    let entry = choose_entry(
        &images[first_loadable..first_loadable + loadables],
        firmware.as_ref(),
    )?;
    let owner = copies
        .iter()
        .find(|c| c.name == entry.image)
        .ok_or(HandoffError::NoEntry)?;
    if !owner.dest_region().contains_range(entry.address, 4) {
        return Err(HandoffError::EntryOutsideImage {
            image: entry.image.clone(),
            entry: entry.address,
        });
    }
    Ok(Plan {
        copies,
        entry,
        rollback_index: config.rollback_index,
    })
}

fn check_destination(
    copy: &ImageCopy,
    blob: Region,
    shim: &[Region],
    memory: &MemoryMap,
    earlier: &[ImageCopy],
) -> Result<(), HandoffError> {
    let dest = copy.dest_region();
    if copy.len == 0
        || !memory
            .load_ranges
            .iter()
            .any(|r| r.contains_range(copy.dest, copy.len))
    {
        return Err(HandoffError::OutsideLoadRanges {
            image: copy.name.clone(),
            dest,
        });
    }
    let overlap = |with: &str| HandoffError::Overlap {
        image: copy.name.clone(),
        dest,
        with: name(with),
    };
    if dest.overlaps(&blob) {
        return Err(overlap("the FIT being loaded"));
    }
    if shim.iter().any(|s| dest.overlaps(s)) {
        return Err(overlap("the shim"));
    }
    match earlier.iter().find(|e| e.dest_region().overlaps(&dest)) {
        Some(e) => Err(overlap(&e.name)),
        None => Ok(()),
    }
}

fn choose_entry<'a>(
    loadables: &[FitImage<'a>],
    firmware: Option<&FitImage<'a>>,
) -> Result<Entry, HandoffError> {
    if let Some(l) = loadables.iter().find(|i| i.entry.is_some()) {
        return Ok(Entry {
            image: name(l.name),
            address: l.entry.unwrap_or_default(),
            rule: EntryRule::LoadableEntry,
        });
    }
    let fw = firmware.ok_or(HandoffError::NoEntry)?;
    match (fw.entry, fw.load) {
        (Some(e), _) => Ok(Entry {
            image: name(fw.name),
            address: e,
            rule: EntryRule::FirmwareEntry,
        }),
        (None, Some(l)) => Ok(Entry {
            image: name(fw.name),
            address: l,
            rule: EntryRule::FirmwareLoad,
        }),
        (None, None) => Err(HandoffError::NoEntry),
    }
}
