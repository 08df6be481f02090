//! Helpers shared by the `ubootctl` CLI tests: the HAB4 fixture sets, their `layout.env`, and
//! running the binary.
#![allow(dead_code, unused_imports)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// What differs between the two fixture sets.
pub struct Set {
    /// Directory name under `tests/fixtures/hab4`.
    pub name: &'static str,
    /// Subject of the CSF key certificate.
    pub csfk_subject: &'static str,
    /// Subject of the image key certificate.
    pub imgk_subject: &'static str,
    /// How `inspect` names the key algorithm.
    pub key: &'static str,
}

/// Both fixture sets.
pub const SETS: [Set; 2] = [
    Set {
        name: "ecc-p256",
        csfk_subject: "CN=CSF1_1_sha256_prime256v1_v3_usr",
        imgk_subject: "CN=IMG1_1_sha256_prime256v1_v3_usr",
        key: "ECDSA P-256",
    },
    Set {
        name: "rsa2048",
        csfk_subject: "CN=CSF3_1_sha256_2048_65537_v3_usr",
        imgk_subject: "CN=IMG3_1_sha256_2048_65537_v3_usr",
        key: "RSA-2048",
    },
];

/// Directory of one fixture set.
pub use workspace_tests::fixture_dir as set_dir;
/// Reads a file of a fixture set.
pub use workspace_tests::read_fixture;

/// Reads `path`, naming it on failure.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Path of a set's `signed.bin`.
pub fn signed_bin(set: &str) -> PathBuf {
    set_dir(set).join("signed.bin")
}

pub use workspace_tests::{Layout, parse_num};

/// The eight `SRK_HASH[i] = 0x…` words of a set's `srk_fuse_words.txt`.
pub fn srk_fuse_words(set: &str) -> Vec<u64> {
    let text = String::from_utf8(read_fixture(set, "srk_fuse_words.txt")).expect("text");
    let words: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("SRK_HASH["))
        .map(|l| parse_num(l.split_once('=').expect("SRK_HASH[i] = value").1))
        .collect();
    assert_eq!(words.len(), 8, "{set}: srk_fuse_words.txt has 8 words");
    words
}

pub use workspace_tests::hex;

/// A `ubootctl` command.
pub fn ubootctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ubootctl"))
}

/// Runs `ubootctl` with `args`.
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    ubootctl().args(args).output().expect("ubootctl runs")
}

/// Stdout and stderr as text, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `ubootctl inspect --json IMAGE [extra…]`, which must exit 0 and print exactly one JSON
/// document.
pub fn inspect_json(image: &Path, extra: &[&str]) -> Value {
    let o = ubootctl()
        .arg("inspect")
        .arg("--json")
        .args(extra)
        .arg(image)
        .output()
        .expect("ubootctl runs");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}: {}",
        image.display(),
        describe(&o)
    );
    // `from_slice` rejects anything but whitespace after the document.
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: stdout is not one JSON document: {e}\n{}",
            image.display(),
            describe(&o)
        )
    })
}

/// The value at JSON pointer `ptr`, which must exist.
pub fn at<'a>(v: &'a Value, ptr: &str) -> &'a Value {
    v.pointer(ptr)
        .unwrap_or_else(|| panic!("JSON has no {ptr}: {v:#}"))
}

/// The unsigned number at `ptr`.
pub fn num(v: &Value, ptr: &str) -> u64 {
    at(v, ptr)
        .as_u64()
        .unwrap_or_else(|| panic!("JSON {ptr} is not an unsigned number: {}", at(v, ptr)))
}

/// The string at `ptr`.
pub fn text<'a>(v: &'a Value, ptr: &str) -> &'a str {
    at(v, ptr)
        .as_str()
        .unwrap_or_else(|| panic!("JSON {ptr} is not a string: {}", at(v, ptr)))
}

/// The array at `ptr`.
pub fn array<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    at(v, ptr)
        .as_array()
        .unwrap_or_else(|| panic!("JSON {ptr} is not an array: {}", at(v, ptr)))
}
