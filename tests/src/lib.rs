//! Shared helpers for the workspace tests: the cst-signed fixture sets and their `layout.env`.

use std::collections::HashMap;
use std::path::PathBuf;

/// The two fixture sets signed by NXP's `cst` 3.3.1 (see `fixtures/hab4/README.md`).
pub const FIXTURE_SETS: [&str; 2] = ["ecc-p256", "rsa2048"];

/// Directory of one fixture set.
pub fn fixture_dir(set: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hab4")
        .join(set)
}

/// Reads a file of a fixture set.
pub fn read_fixture(set: &str, name: &str) -> Vec<u8> {
    let p = fixture_dir(set).join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// The `KEY=VALUE` lines of a set's `layout.env`.
pub struct Layout(HashMap<String, String>);

impl Layout {
    /// Loads `layout.env` of `set`.
    pub fn load(set: &str) -> Self {
        let text = String::from_utf8(read_fixture(set, "layout.env")).expect("layout.env is text");
        Layout(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
        )
    }

    /// A raw value.
    pub fn get(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("layout.env has no {key}"))
    }

    /// A hexadecimal (`0x…`) or decimal number.
    pub fn num(&self, key: &str) -> u64 {
        parse_num(self.get(key))
    }

    /// An `offset:length` pair.
    pub fn range(&self, key: &str) -> (u64, u64) {
        let (a, b) = self
            .get(key)
            .split_once(':')
            .unwrap_or_else(|| panic!("{key} is not offset:length"));
        (parse_num(a), parse_num(b))
    }
}

/// A hexadecimal (`0x…`/`0X…`) or decimal number, surrounding blanks ignored.
pub fn parse_num(s: &str) -> u64 {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|_| panic!("{s:?} is not a number"))
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The SPL area of an i.MX 8M Mini flash.bin, 0x57C00 bytes: IVT at 0 (entry 0x7E1000, self =
/// entry - 0x40, boot data right after the IVT), boot data {self - 0x400, csf_at + 0x2000, 0},
/// filler up to a zeroed CSF slot at `csf_at`. Append a FIT to make a flash.bin.
pub fn imx8mm_spl_area(csf_at: u32) -> Vec<u8> {
    let entry = 0x007E_1000u32;
    let base = entry - 0x40;
    let mut fb = vec![0u8; 0x57C00];
    fb[..4].copy_from_slice(&[0xD1, 0x00, 0x20, 0x41]);
    for (i, w) in [entry, 0, 0, base + 0x20, base, base + csf_at, 0]
        .iter()
        .enumerate()
    {
        fb[4 + 4 * i..8 + 4 * i].copy_from_slice(&w.to_le_bytes());
    }
    fb[0x20..0x24].copy_from_slice(&(base - 0x400).to_le_bytes());
    fb[0x24..0x28].copy_from_slice(&(csf_at + 0x2000).to_le_bytes());
    for (i, b) in fb[0x40..csf_at as usize].iter_mut().enumerate() {
        *b = (i * 13 + 5) as u8;
    }
    fb
}
