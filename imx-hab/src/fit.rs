//! U-Boot FIT images: sizing from the FDT header, the image list and the default
//! configuration (U-Boot `doc/usage/fit/source_file_format.rst`; imx8m-facts.md §2.3).
//!
//! The tree is parsed with `dtoolkit` (validated up front, no allocation). Payload positions
//! are reported as byte ranges of the FIT blob, for embedded `data` and for external data
//! (`data-offset` from the 4-byte aligned end of the tree, or absolute `data-position`).

use dtoolkit::fdt::{Fdt, FdtNode};
use dtoolkit::{FdtStringListIterator, Node, Property};

use crate::{ErrorKind, ParseError, Result, Structure};

/// FDT magic, big-endian at offset 0.
pub const FDT_MAGIC: u32 = 0xD00D_FEED;
/// Size of the FDT header.
pub const FDT_HEADER_SIZE: usize = 40;

/// Whether `bytes` starts with the FDT magic.
pub fn has_magic(bytes: &[u8]) -> bool {
    bytes.get(..4) == Some(&FDT_MAGIC.to_be_bytes()[..])
}

/// Reads `totalsize` from the FDT header at the start of `bytes` (magic checked; the value is
/// not checked against `bytes.len()`, so a header read alone sizes the blob).
pub fn totalsize(bytes: &[u8]) -> Result<u32> {
    let head = bytes.get(..8).ok_or(ParseError::truncated(
        Structure::Fit,
        "header",
        0,
        8,
        bytes.len() as u64,
    ))?;
    let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if magic != FDT_MAGIC {
        return Err(ParseError::mismatch(
            Structure::Fit,
            "magic",
            0,
            magic.into(),
            FDT_MAGIC.into(),
        ));
    }
    let total = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if (total as usize) < FDT_HEADER_SIZE {
        return Err(ParseError::new(
            Structure::Fit,
            "totalsize",
            4,
            ErrorKind::OutOfRange {
                found: total.into(),
                min: FDT_HEADER_SIZE as u64,
                max: u32::MAX.into(),
            },
        ));
    }
    Ok(total)
}

/// Where an image's payload lies in the FIT blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRange {
    /// Offset from the start of the FIT.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// Whether the payload is inside the tree (`data`) rather than after it.
    pub embedded: bool,
}

/// One node under `/images`.
#[derive(Debug, Clone, Copy)]
pub struct FitImage<'a> {
    /// Node name.
    pub name: &'a str,
    /// `description`.
    pub description: Option<&'a str>,
    /// `type` (firmware, kernel, flat_dt, …).
    pub image_type: Option<&'a str>,
    /// `arch`.
    pub arch: Option<&'a str>,
    /// `os`.
    pub os: Option<&'a str>,
    /// `compression`.
    pub compression: Option<&'a str>,
    /// `load` address.
    pub load: Option<u64>,
    /// `entry` address.
    pub entry: Option<u64>,
    /// Payload position.
    pub data: DataRange,
}

/// The default configuration.
#[derive(Debug, Clone, Copy)]
pub struct FitConfig<'a> {
    /// Node name.
    pub name: &'a str,
    /// `description`.
    pub description: Option<&'a str>,
    /// `firmware` image name.
    pub firmware: Option<&'a str>,
    /// `kernel` image name.
    pub kernel: Option<&'a str>,
    /// `fdt` image name (first of the list).
    pub fdt: Option<&'a str>,
    /// `rollback-index` (one 32-bit cell; the name Rockchip's U-Boot uses): the image's
    /// security epoch, covered by the FIT's signature. `None` when absent (epoch 0).
    pub rollback_index: Option<u32>,
    loadables: Option<&'a [u8]>,
}

impl<'a> FitConfig<'a> {
    /// The `loadables` image names in order.
    pub fn loadables(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.loadables
            .into_iter()
            .flat_map(|v| v.split(|&b| b == 0))
            .filter(|s| !s.is_empty())
            .filter_map(|s| core::str::from_utf8(s).ok())
    }
}

/// A validated FIT, borrowed from its blob.
#[derive(Debug, Clone, Copy)]
pub struct Fit<'a> {
    fdt: Fdt<'a>,
    blob: &'a [u8],
}

impl<'a> Fit<'a> {
    /// Parses the FIT at the start of `bytes`, which may continue past `totalsize` (padding,
    /// IVT, CSF, external data). Checks the tree, that `/images` exists, that every image's
    /// payload lies inside `bytes` and that the default configuration names existing images.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let total = totalsize(bytes)? as usize;
        let tree = bytes.get(..total).ok_or(ParseError::truncated(
            Structure::Fit,
            "totalsize",
            4,
            total as u64,
            bytes.len() as u64,
        ))?;
        let fdt = Fdt::new(tree).map_err(|_| {
            ParseError::invalid(
                Structure::Fit,
                "structure",
                0,
                "is not a valid flattened device tree",
            )
        })?;
        let fit = Fit { fdt, blob: bytes };
        let images = fit.images_node()?;
        for node in images.children() {
            fit.image(node)?;
        }
        fit.default_config()?;
        Ok(fit)
    }

    /// `totalsize` of the tree.
    pub fn totalsize(&self) -> usize {
        self.fdt.data().len()
    }

    /// The top-level `description`, if any.
    pub fn description(&self) -> Option<&'a str> {
        self.fdt
            .root()
            .property("description")
            .and_then(|p| p.value_as::<&str>().ok())
    }

    fn images_node(&self) -> Result<FdtNode<'a>> {
        self.fdt.find_node("/images").ok_or(ParseError::invalid(
            Structure::Fit,
            "/images",
            0,
            "is missing",
        ))
    }

    /// The images in tree order.
    pub fn images(&self) -> impl Iterator<Item = FitImage<'a>> + 'a {
        let this = *self;
        self.images_node()
            .ok()
            .into_iter()
            .flat_map(|n| n.children())
            .filter_map(move |n| this.image(n).ok())
    }

    /// The image named `name`.
    pub fn image_by_name(&self, name: &str) -> Option<FitImage<'a>> {
        self.images().find(|i| i.name == name)
    }

    fn image(&self, node: FdtNode<'a>) -> Result<FitImage<'a>> {
        let name = node.name();
        let bad = |field, why| ParseError::invalid(Structure::FitImage, field, 0, why);
        let data = if let Some(p) = node.property("data") {
            let v = p.value();
            // The property value borrows from the blob: its address difference is its offset.
            let offset = (v.as_ptr() as usize).wrapping_sub(self.blob.as_ptr() as usize) as u64;
            DataRange {
                offset,
                len: v.len() as u64,
                embedded: true,
            }
        } else {
            let size = cell(&node, "data-size")?
                .ok_or(bad("data", "is missing (neither data nor data-size)"))?;
            let offset = match (cell(&node, "data-position")?, cell(&node, "data-offset")?) {
                (Some(pos), _) => pos,
                (None, Some(off)) => ((self.totalsize() as u64 + 3) & !3)
                    .checked_add(off)
                    .ok_or(bad(
                        "data-offset",
                        "points past the end of the address space",
                    ))?,
                (None, None) => return Err(bad("data-offset", "is missing for external data")),
            };
            DataRange {
                offset,
                len: size,
                embedded: false,
            }
        };
        let end = data.offset.checked_add(data.len);
        if end.is_none_or(|e| e > self.blob.len() as u64) {
            return Err(ParseError::new(
                Structure::FitImage,
                "data",
                data.offset,
                ErrorKind::Truncated {
                    needed: data.len,
                    available: (self.blob.len() as u64).saturating_sub(data.offset),
                },
            ));
        }
        Ok(FitImage {
            name,
            description: string(&node, "description")?,
            image_type: string(&node, "type")?,
            arch: string(&node, "arch")?,
            os: string(&node, "os")?,
            compression: string(&node, "compression")?,
            load: cell(&node, "load")?,
            entry: cell(&node, "entry")?,
            data,
        })
    }

    /// The payload bytes of `image`.
    pub fn data(&self, image: &FitImage<'a>) -> &'a [u8] {
        let start = image.data.offset as usize;
        self.blob
            .get(start..start + image.data.len as usize)
            .unwrap_or(&[])
    }

    /// The configuration `/configurations/default` names.
    pub fn default_config(&self) -> Result<FitConfig<'a>> {
        let configs = self
            .fdt
            .find_node("/configurations")
            .ok_or(ParseError::invalid(
                Structure::FitConfig,
                "/configurations",
                0,
                "is missing",
            ))?;
        let name = string(&configs, "default")?.ok_or(ParseError::invalid(
            Structure::FitConfig,
            "default",
            0,
            "is missing",
        ))?;
        let node = configs.child(name).ok_or(ParseError::invalid(
            Structure::FitConfig,
            "default",
            0,
            "names a configuration that does not exist",
        ))?;
        let fdt_first = match node.property("fdt") {
            Some(p) => p
                .value_as::<FdtStringListIterator>()
                .ok()
                .and_then(|mut it| it.next()),
            None => None,
        };
        let loadables = node
            .property("loadables")
            .and_then(|p| p.value_as::<&'a [u8]>().ok());
        let cfg = FitConfig {
            name: node.name(),
            description: string(&node, "description")?,
            firmware: string(&node, "firmware")?,
            kernel: string(&node, "kernel")?,
            fdt: fdt_first,
            rollback_index: u32_cell(&node, "rollback-index")?,
            loadables,
        };
        if let Some(l) = loadables
            && (l.last() != Some(&0) || core::str::from_utf8(l).is_err())
        {
            return Err(ParseError::invalid(
                Structure::FitConfig,
                "loadables",
                0,
                "is not a list of strings",
            ));
        }
        for wanted in cfg
            .firmware
            .into_iter()
            .chain(cfg.kernel)
            .chain(cfg.fdt)
            .chain(cfg.loadables())
        {
            if self.image_by_name(wanted).is_none() {
                return Err(ParseError::invalid(
                    Structure::FitConfig,
                    "image reference",
                    0,
                    "names an image missing from /images",
                ));
            }
        }
        Ok(cfg)
    }
}

fn string<'a>(node: &FdtNode<'a>, name: &'static str) -> Result<Option<&'a str>> {
    match node.property(name) {
        None => Ok(None),
        Some(p) => p
            .value_as::<&str>()
            .map(Some)
            .map_err(|_| ParseError::invalid(Structure::FitImage, name, 0, "is not a string")),
    }
}

/// A property that must be exactly one 32-bit cell (a configuration's `rollback-index`).
fn u32_cell(node: &FdtNode<'_>, name: &'static str) -> Result<Option<u32>> {
    match node.property(name) {
        None => Ok(None),
        Some(p) => match <[u8; 4]>::try_from(p.value()) {
            Ok(b) => Ok(Some(u32::from_be_bytes(b))),
            Err(_) => Err(ParseError::invalid(
                Structure::FitConfig,
                name,
                0,
                "is not one 32-bit cell",
            )),
        },
    }
}

/// A one- or two-cell integer property.
fn cell(node: &FdtNode<'_>, name: &'static str) -> Result<Option<u64>> {
    match node.property(name) {
        None => Ok(None),
        Some(p) => match p.value().len() {
            4 => p.value_as::<u32>().map(|v| Some(v.into())),
            8 => p.value_as::<u64>().map(Some),
            _ => {
                return Err(ParseError::invalid(
                    Structure::FitImage,
                    name,
                    0,
                    "is not a 1- or 2-cell number",
                ));
            }
        }
        .map_err(|_| {
            ParseError::invalid(Structure::FitImage, name, 0, "is not a 1- or 2-cell number")
        }),
    }
}
