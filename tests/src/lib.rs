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

pub use test_images::imx8mm_spl_area;
