//! Dev-only builders of the boot images the workspace's tests use, so that no test assembles
//! an IVT, an SPL, a FIT or a flash.bin by hand: [`ivt`] and [`boot_data`] (the ROM-defined
//! words), [`spl`] (the SPL as `imx8mimage` lays it out, signed or not), [`fit`] (FITs with
//! embedded data), [`flash_bin`] and [`pki`] (deterministic P-256 test PKIs, cached). TEST KEYS
//! ONLY: nothing here belongs in a product.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use imx_hab::ivt::IVT_SIZE;
use imx_hab::sign::{Pki, SignOptions, TestPkiOptions};

pub use imx_hab::sign::{boot_data, ivt, spl_csf_offset, spl_image};

/// The SPL entry of an i.MX 8M Mini (`CONFIG_SPL_TEXT_BASE`, imx8m-facts.md §2.1).
pub const IMX8MM_SPL_ENTRY: u32 = 0x007E_1000;

/// The SPL area of an i.MX 8M Mini flash.bin as `imx8mimage` lays it out for SD (IVT_OFFSET_SD
/// 0x400 before the IVT), up to the FIT at 0x57C00: IVT at 0 (entry 0x7E1000, self = entry -
/// 0x40), boot data {self - 0x400, `csf_at` + 0x2000 + 0x400, 0} after it, a filler up to a
/// zeroed CSF slot at `csf_at`. Append a FIT to make a flash.bin; sign with
/// `imx_hab::sign::sign_spl`.
pub fn imx8mm_spl_area(csf_at: u32) -> Vec<u8> {
    let base = IMX8MM_SPL_ENTRY - 0x40;
    let mut fb = vec![0u8; 0x57C00];
    fb[..IVT_SIZE].copy_from_slice(&ivt(IMX8MM_SPL_ENTRY, base + 0x20, base, base + csf_at));
    fb[0x20..0x2C].copy_from_slice(&boot_data(base - 0x400, csf_at + 0x2000 + 0x400, 0));
    for (i, b) in fb[0x40..csf_at as usize].iter_mut().enumerate() {
        *b = (i * 13 + 5) as u8;
    }
    fb
}

/// An SPL signed with `pki` whose code is `code`, linked at `self_addr + 0x40`.
pub fn signed_spl(self_addr: u32, code: &[u8], pki: &Pki, options: &SignOptions) -> Vec<u8> {
    let image = spl_image(self_addr, code).expect("the SPL fits below 4 GiB");
    imx_hab::sign::sign_spl(&image, pki, options).expect("signing the SPL")
}

/// A flash.bin: `spl`, zeros up to `fit_offset`, then `fit`.
pub fn flash_bin(spl: &[u8], fit_offset: u64, fit: &[u8]) -> Vec<u8> {
    let mut v = spl.to_vec();
    assert!(v.len() as u64 <= fit_offset, "the SPL runs into the FIT");
    v.resize(fit_offset as usize, 0);
    v.extend_from_slice(fit);
    v
}

/// Deterministic filler.
pub fn filler(len: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// The P-256 test PKI derived from `seed` (`Pki::generate_p256`), generated once per process.
pub fn pki(seed: &'static str) -> &'static Pki {
    static PKIS: OnceLock<Mutex<HashMap<&'static str, &'static Pki>>> = OnceLock::new();
    let map = PKIS.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(seed).or_insert_with(|| {
        let p = Pki::generate_p256(seed.as_bytes(), &TestPkiOptions::default())
            .expect("generating a test PKI");
        Box::leak(Box::new(p))
    })
}

/// One FIT image node.
#[derive(Clone)]
pub struct Img {
    /// Node name under `/images`.
    pub name: &'static str,
    /// Embedded data.
    pub data: Vec<u8>,
    /// `load` property.
    pub load: Option<u32>,
    /// `entry` property.
    pub entry: Option<u32>,
    /// `compression` property.
    pub compression: &'static str,
}

impl Img {
    /// `len` bytes of filler to be loaded at `load`, uncompressed.
    pub fn new(name: &'static str, len: usize, load: u32) -> Self {
        Img {
            name,
            data: filler(len, len as u64 ^ u64::from(load)),
            load: Some(load),
            entry: None,
            compression: "none",
        }
    }

    /// With an `entry` property.
    pub fn entry(mut self, entry: u32) -> Self {
        self.entry = Some(entry);
        self
    }
}

fn prop<T: dtoolkit::ToPropertyValue>(name: &str, v: T) -> DeviceTreeProperty {
    DeviceTreeProperty::new(name, v).unwrap()
}

/// A FIT with embedded data: `firmware` + `loadables` in the default configuration.
pub fn fit(images: &[Img], firmware: Option<&str>, loadables: &[&str]) -> Vec<u8> {
    fit_with_epoch(images, firmware, loadables, None)
}

/// [`fit`] whose default configuration carries `rollback-index = <epoch>` when given.
pub fn fit_with_epoch(
    images: &[Img],
    firmware: Option<&str>,
    loadables: &[&str],
    epoch: Option<u32>,
) -> Vec<u8> {
    let mut images_node = DeviceTreeNode::builder("images").unwrap();
    for i in images {
        let mut n = DeviceTreeNode::builder(i.name)
            .unwrap()
            .property(prop("data", i.data.clone()))
            .property(prop("type", "firmware"))
            .property(prop("arch", "arm64"))
            .property(prop("compression", i.compression));
        if let Some(l) = i.load {
            n = n.property(prop("load", l));
        }
        if let Some(e) = i.entry {
            n = n.property(prop("entry", e));
        }
        images_node = images_node.child(n.build());
    }
    let mut conf = DeviceTreeNode::builder("conf-1").unwrap();
    if let Some(e) = epoch {
        conf = conf.property(prop("rollback-index", e));
    }
    if let Some(f) = firmware {
        conf = conf.property(prop("firmware", f));
    }
    if !loadables.is_empty() {
        let list: Vec<u8> = loadables
            .iter()
            .flat_map(|s| s.bytes().chain([0]))
            .collect();
        conf = conf.property(DeviceTreeProperty::new("loadables", list).unwrap());
    }
    let mut tree = DeviceTree::new();
    tree.root
        .add_property(prop("description", "boot-flow test FIT"));
    tree.root.add_property(prop("#address-cells", 1u32));
    tree.root.add_child(images_node.build());
    tree.root.add_child(
        DeviceTreeNode::builder("configurations")
            .unwrap()
            .property(prop("default", "conf-1"))
            .child(conf.build())
            .build(),
    );
    tree.to_dtb()
}

/// The standard test FIT: a payload (firmware, entry) and a data loadable without entry.
pub fn standard_fit(version: u8) -> Vec<u8> {
    standard_fit_epoch(version, None)
}

/// [`standard_fit`] with a `rollback-index` (security epoch) when given.
pub fn standard_fit_epoch(version: u8, epoch: Option<u32>) -> Vec<u8> {
    let mut payload = Img::new("payload", 24 * 1024, 0x4020_0000).entry(0x4020_0000);
    payload.data[0] = version;
    fit_with_epoch(
        &[payload, Img::new("blob", 4096, 0x4040_0000)],
        Some("payload"),
        &["blob"],
        epoch,
    )
}

/// Signing options with a fixed signing time, so that images are reproducible.
pub fn options() -> SignOptions {
    SignOptions {
        signing_time: Some(1_780_000_000),
        ..SignOptions::default()
    }
}

/// `fit` signed for `load` with `pki` ([`options`]).
pub fn signed(fit: &[u8], load: u32, pki: &Pki) -> Vec<u8> {
    imx_hab::sign::sign_fit(fit, load, pki, &options()).expect("signing the FIT")
}
