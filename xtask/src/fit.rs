//! FIT images with embedded data (dtoolkit's writer), signed for HAB at the board's FIT window
//! (docs/hab4-format.md §2).

use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeNodeBuilder, DeviceTreeProperty};
use imx_hab::sign::{Pki, SignOptions};

use crate::{Error, Result, bail};

/// Where the shim loads and authenticates the signed FIT on both boards:
/// `CONFIG_SPL_LOAD_FIT_ADDRESS` = the start of `boards::qemu_imx8mp::FIT_WINDOW`.
pub const FIT_LOAD: u32 = boards::qemu_imx8mp::FIT_WINDOW.start as u32;

/// One node under `/images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitImage {
    /// Node name (referenced by the configuration).
    pub name: String,
    /// `type`: `firmware`, `kernel`, `flat_dt`, `standalone`, …
    pub image_type: String,
    /// `os`: `u-boot`, `arm-trusted-firmware`, `linux`, …; empty: no `os` property (a
    /// `flat_dt`).
    pub os: String,
    /// `arch`: `arm64`.
    pub arch: String,
    /// `load` address (one 32-bit cell: the tree has `#address-cells = 1`).
    pub load: u32,
    /// `entry` address, if the image has one.
    pub entry: Option<u32>,
    /// The payload, embedded as `data`.
    pub data: Vec<u8>,
}

impl FitImage {
    /// A `firmware` image for `arm64` with `os = u-boot`, loaded and entered at `load`.
    pub fn firmware(name: &str, load: u32, data: Vec<u8>) -> Self {
        FitImage {
            name: name.into(),
            image_type: "firmware".into(),
            os: "u-boot".into(),
            arch: "arm64".into(),
            load,
            entry: Some(load),
            data,
        }
    }

    /// A data image (`type = firmware`, `os = u-boot`, no entry) copied to `load`.
    pub fn data(name: &str, load: u32, data: Vec<u8>) -> Self {
        FitImage {
            entry: None,
            ..FitImage::firmware(name, load, data)
        }
    }
}

/// The default configuration (`conf-1`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FitConfig {
    /// `firmware` image name.
    pub firmware: String,
    /// `loadables` image names, in order.
    pub loadables: Vec<String>,
    /// `rollback-index`: the security epoch (design.md §5.3); absent when `None` (epoch 0).
    pub rollback_index: Option<u32>,
    /// `fdt` image name (U-Boot's device tree in NXP's layout), if any.
    pub fdt: Option<String>,
}

fn prop<T: dtoolkit::ToPropertyValue>(name: &str, v: T) -> Result<DeviceTreeProperty> {
    DeviceTreeProperty::new(name, v).map_err(|e| Error::msg(format!("FIT property {name}: {e}")))
}

fn node(name: &str) -> Result<DeviceTreeNodeBuilder> {
    DeviceTreeNode::builder(name).map_err(|e| Error::msg(format!("FIT node {name}: {e}")))
}

/// Builds a FIT with embedded data: `/description`, `#address-cells = <1>`, `/images/<name>`
/// for every image (`description`, `data`, `type`, `arch`, `os`, `compression = "none"`,
/// `load`, optional `entry`), and `/configurations` with `default = "conf-1"` holding
/// `firmware`, `loadables` and, when given, `fdt` and `rollback-index`. Image names must be unique and the configuration must name
/// existing images.
pub fn build_fit(description: &str, images: &[FitImage], config: &FitConfig) -> Result<Vec<u8>> {
    for (i, img) in images.iter().enumerate() {
        if images[..i].iter().any(|o| o.name == img.name) {
            bail!("FIT image name `{}` is used twice", img.name);
        }
    }
    for name in std::iter::once(&config.firmware)
        .chain(&config.loadables)
        .chain(&config.fdt)
    {
        if !images.iter().any(|i| &i.name == name) {
            bail!("the FIT configuration names `{name}`, which is not an image");
        }
    }
    let mut images_node = node("images")?;
    for img in images {
        let mut n = node(&img.name)?
            .property(prop("description", img.name.as_str())?)
            .property(prop("data", img.data.as_slice())?)
            .property(prop("type", img.image_type.as_str())?)
            .property(prop("arch", img.arch.as_str())?);
        if !img.os.is_empty() {
            n = n.property(prop("os", img.os.as_str())?);
        }
        n = n
            .property(prop("compression", "none")?)
            .property(prop("load", img.load)?);
        if let Some(entry) = img.entry {
            n = n.property(prop("entry", entry)?);
        }
        images_node = images_node.child(n.build());
    }
    let mut conf = node("conf-1")?
        .property(prop("description", "default")?)
        .property(prop("firmware", config.firmware.as_str())?);
    if !config.loadables.is_empty() {
        let names: Vec<&str> = config.loadables.iter().map(String::as_str).collect();
        conf = conf.property(prop("loadables", names)?);
    }
    if let Some(fdt) = &config.fdt {
        conf = conf.property(prop("fdt", fdt.as_str())?);
    }
    if let Some(epoch) = config.rollback_index {
        conf = conf.property(prop("rollback-index", epoch)?);
    }
    let mut tree = DeviceTree::new();
    tree.root.add_property(prop("description", description)?);
    tree.root.add_property(prop("#address-cells", 1u32)?);
    tree.root.add_child(images_node.build());
    tree.root.add_child(
        node("configurations")?
            .property(prop("default", "conf-1")?)
            .child(conf.build())
            .build(),
    );
    let dtb = tree.to_dtb();
    imx_hab::fit::Fit::parse(&dtb)?;
    Ok(dtb)
}

/// Signs `fit` for loading at `load`: FIT ‖ pad to `ALIGN(totalsize, 0x1000)` ‖ IVT ‖ CSF
/// (`imx_hab::sign::sign_fit`).
pub fn sign_fit(fit: &[u8], load: u32, pki: &Pki, options: &SignOptions) -> Result<Vec<u8>> {
    Ok(imx_hab::sign::sign_fit(fit, load, pki, options)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_has_the_images_and_configuration() {
        let images = [
            FitImage::firmware("payload", 0x4020_0000, vec![1, 2, 3, 4]),
            FitImage::data("blob", 0x4040_0000, vec![9; 100]),
        ];
        let config = FitConfig {
            firmware: "payload".into(),
            loadables: vec!["blob".into()],
            rollback_index: Some(7),
            fdt: None,
        };
        let dtb = build_fit("test", &images, &config).unwrap();
        let fit = imx_hab::fit::Fit::parse(&dtb).unwrap();
        let conf = fit.default_config().unwrap();
        assert_eq!(conf.firmware, Some("payload"));
        assert_eq!(conf.rollback_index, Some(7));
        assert_eq!(conf.loadables().collect::<Vec<_>>(), ["blob"]);
        let p = fit.image_by_name("payload").unwrap();
        assert_eq!((p.load, p.entry), (Some(0x4020_0000), Some(0x4020_0000)));
        assert_eq!(fit.data(&p), &[1, 2, 3, 4]);
        let b = fit.image_by_name("blob").unwrap();
        assert_eq!((b.load, b.entry), (Some(0x4040_0000), None));
        assert_eq!(fit.data(&b).len(), 100);
    }

    #[test]
    fn configuration_must_name_images() {
        let images = [FitImage::firmware("a", 0x4020_0000, vec![0; 4])];
        let config = FitConfig {
            firmware: "b".into(),
            loadables: vec![],
            rollback_index: None,
            fdt: None,
        };
        assert!(build_fit("x", &images, &config).is_err());
    }
}
