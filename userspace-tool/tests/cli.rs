//! `ubootctl inspect` as a user runs it: text and JSON reports of both HAB4 fixtures and of a
//! synthetic flash.bin, exit status 1 with a message naming structure, field and offset for
//! images that are not valid, and exit status 2 for usage and I/O errors.

mod common;

use std::path::{Path, PathBuf};

use common::{
    Layout, SETS, array, at, describe, hex, inspect_json, num, read, read_fixture, run, signed_bin,
    srk_fuse_words, text,
};
use serde_json::Value;
use tempfile::TempDir;

fn write(dir: &TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
    p
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

/// Runs `inspect` on `path` and checks that it refuses the image (exit 1, nothing on stdout,
/// one `ubootctl: PATH: not a valid image: …` line); returns the part after that prefix.
fn refused(path: &Path) -> String {
    let o = run([Path::new("inspect"), path]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}: {}",
        path.display(),
        describe(&o)
    );
    assert!(o.stdout.is_empty(), "{}: {}", path.display(), describe(&o));
    let err = String::from_utf8(o.stderr).expect("stderr is UTF-8");
    let prefix = format!("ubootctl: {}: not a valid image: ", path.display());
    let msg = err
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("stderr does not start with {prefix:?}: {err:?}"));
    assert_eq!(msg.lines().count(), 1, "one line: {err:?}");
    msg.trim_end().to_owned()
}

/// Asserts that `msg` contains every one of `parts`.
fn assert_mentions(msg: &str, parts: &[&str], context: &str) {
    for p in parts {
        assert!(msg.contains(p), "{context}: {p:?} not in {msg:?}");
    }
}

/// A usage or I/O error: exit 2, nothing on stdout, a message on stderr.
fn assert_usage_error(o: &std::process::Output, mentions: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", describe(o));
    assert!(o.stdout.is_empty(), "{}", describe(o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(mentions), "{mentions:?} not in {err:?}");
}

#[test]
fn inspect_prints_kind_images_configuration_certificates_keys_and_srk_hash() {
    for set in SETS {
        let l = Layout::load(set.name);
        let path = signed_bin(set.name);
        let o = run([Path::new("inspect"), &path]);
        assert_eq!(o.status.code(), Some(0), "{}: {}", set.name, describe(&o));
        assert!(o.stderr.is_empty(), "{}: {}", set.name, describe(&o));
        let out = stdout(&o);
        let fuse = hex(&read_fixture(set.name, "srk_fuse.bin"));
        let ivt = format!("IVT at {:#x}", l.num("IVT_OFFSET"));
        let csf = format!("CSF at {:#x}", l.num("CSF_OFFSET"));
        let load = format!("signed for load address {:#x}", l.num("LOAD_ADDR"));
        assert_mentions(
            &out,
            &[
                &format!(
                    "{}: signed FIT ({} bytes)",
                    path.display(),
                    l.num("SIGNED_BLOB_SIZE")
                ),
                "uboot ",
                "atf ",
                "fdt-1 ",
                "load 0x40200000",
                "load 0x970000",
                "default configuration conf-1: firmware uboot, loadables [atf], fdt fdt-1",
                &ivt,
                &csf,
                &load,
                set.csfk_subject,
                set.imgk_subject,
                set.key,
                &format!("SRK hash {fuse}"),
            ],
            set.name,
        );
    }
}

#[test]
fn inspect_json_is_one_document_that_matches_layout_env() {
    for set in SETS {
        let name = set.name;
        let l = Layout::load(name);
        let j = inspect_json(&signed_bin(name), &[]);
        assert_eq!(text(&j, "/kind"), "signed FIT", "{name}");
        assert_eq!(num(&j, "/size"), l.num("SIGNED_BLOB_SIZE"), "{name}");
        assert!(j.get("spl").is_none(), "{name}: a signed FIT has no SPL");
        let fit = at(&j, "/fit");
        assert_eq!(num(fit, "/offset"), 0, "{name}");
        assert_eq!(at(fit, "/signed"), &Value::Bool(true), "{name}");
        assert_eq!(num(fit, "/totalsize"), l.num("FIT_TOTALSIZE"), "{name}");
        assert_eq!(num(fit, "/load_address"), l.num("LOAD_ADDR"), "{name}");

        let images = array(fit, "/images");
        let names: Vec<&str> = images.iter().map(|i| text(i, "/name")).collect();
        assert_eq!(names, ["uboot", "atf", "fdt-1"], "{name}");
        for (img, key, load) in [
            (&images[0], "DATA_UBOOT", Some(0x4020_0000)),
            (&images[1], "DATA_ATF", Some(0x97_0000)),
            (&images[2], "DATA_FDT_1", None),
        ] {
            let what = format!("{name} {}", text(img, "/name"));
            assert_eq!(img["load"].as_u64(), load, "{what} load");
            assert_eq!(img["entry"].as_u64(), load, "{what} entry");
            assert_eq!(
                (num(img, "/data_offset"), num(img, "/data_size")),
                l.range(key),
                "{what} data vs layout.env {key}"
            );
            assert_eq!(img["embedded"], Value::Bool(true), "{what}");
        }
        assert_eq!(text(&images[0], "/os"), "u-boot", "{name}");
        assert_eq!(text(&images[1], "/os"), "arm-trusted-firmware", "{name}");
        assert_eq!(text(&images[2], "/type"), "flat_dt", "{name}");

        let cfg = at(fit, "/configuration");
        assert_eq!(text(cfg, "/name"), "conf-1", "{name}");
        assert_eq!(text(cfg, "/firmware"), "uboot", "{name}");
        assert_eq!(at(cfg, "/loadables"), &serde_json::json!(["atf"]), "{name}");
        assert_eq!(text(cfg, "/fdt"), "fdt-1", "{name}");

        assert_eq!(num(fit, "/ivt/offset"), l.num("IVT_OFFSET"), "{name}");
        assert_eq!(num(fit, "/ivt/header"), 0x4120_00D1, "{name}");
        assert_eq!(num(fit, "/ivt/entry"), l.num("LOAD_ADDR"), "{name}");
        assert_eq!(
            num(fit, "/ivt/self"),
            l.num("LOAD_ADDR") + l.num("IVT_OFFSET"),
            "{name}"
        );
        assert_eq!(
            num(fit, "/ivt/csf"),
            l.num("LOAD_ADDR") + l.num("CSF_OFFSET"),
            "{name}"
        );

        let csf = at(fit, "/csf");
        let csf_offset = num(csf, "/offset");
        assert_eq!(csf_offset, l.num("CSF_OFFSET"), "{name}");
        assert_eq!(num(csf, "/length"), l.num("CSF_CMDS_LEN"), "{name}");
        assert_eq!(num(csf, "/version"), l.num("CSF_VERSION"), "{name}");
        let blocks = array(csf, "/commands/4/blocks");
        let (start, len) = l.range("AUTH_BLOCK");
        assert_eq!(
            blocks
                .iter()
                .map(|b| (num(b, "/start"), num(b, "/length")))
                .collect::<Vec<_>>(),
            [(start, len)],
            "{name}"
        );
        let records = array(csf, "/records");
        let keys = [
            "SRK_TABLE_REC",
            "CSFK_CERT_REC",
            "CSF_SIG_REC",
            "IMG_CERT_REC",
            "IMG_SIG_REC",
        ];
        assert_eq!(records.len(), keys.len(), "{name}");
        for (r, key) in records.iter().zip(keys) {
            assert_eq!(
                (csf_offset + num(r, "/csf_offset"), num(r, "/length")),
                l.range(key),
                "{name} record {} vs layout.env {key}",
                text(r, "/role")
            );
        }
        let fuse = read_fixture(name, "srk_fuse.bin");
        assert_eq!(text(csf, "/srk_hash"), hex(&fuse), "{name}");
        let words: Vec<u64> = array(csf, "/srk_fuse_words")
            .iter()
            .map(|w| w.as_u64().expect("a number"))
            .collect();
        assert_eq!(words, srk_fuse_words(name), "{name}");
    }
}

#[test]
fn empty_file_is_refused_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let msg = refused(&write(&dir, "empty.bin", &[]));
    assert_mentions(&msg, &["at offset 0x0", "`header`", "truncated"], "empty");
}

#[test]
fn garbage_is_refused_as_neither_an_ivt_nor_a_fit() {
    let dir = tempfile::tempdir().unwrap();
    // Deterministic noise that starts with neither D1 00 20 4x nor D0 0D FE ED.
    let mut x: u32 = 0x1234_5678;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    assert!(bytes[0] != 0xD1 && bytes[0] != 0xD0);
    let msg = refused(&write(&dir, "garbage.bin", &bytes));
    assert_mentions(
        &msg,
        &["image at offset 0x0", "`header`", "neither an IVT header"],
        "garbage",
    );
}

/// The record of `json` whose role satisfies `role`: (file offset, length).
fn record(json: &Value, role: impl Fn(&str) -> bool) -> (u64, u64) {
    let csf = at(json, "/fit/csf");
    array(csf, "/records")
        .iter()
        .find(|r| role(text(r, "/role")))
        .map(|r| {
            (
                num(csf, "/offset") + num(r, "/csf_offset"),
                num(r, "/length"),
            )
        })
        .expect("the record exists")
}

#[test]
fn csf_truncated_anywhere_is_refused_naming_structure_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    for set in SETS {
        let l = Layout::load(set.name);
        let full = read(&signed_bin(set.name));
        let json = inspect_json(&signed_bin(set.name), &[]);
        let csf = l.num("CSF_OFFSET");
        let extent = num(&json, "/fit/csf/extent");
        let (srk, _) = record(&json, |r| r == "SRK table");
        let (cert, _) = record(&json, |r| r == "CSFK");
        let (sig, _) = record(&json, |r| r.starts_with("image signature"));
        assert!(
            srk < csf + 0x100,
            "{}: the SRK table spans CSF+0x100",
            set.name
        );
        // (cut at, structure, offset of the field that is cut short, field)
        let cases = [
            (csf, "CSF header", csf, "header"),
            (csf + 2, "CSF header", csf, "header"),
            (csf + 0x30, "CSF header", csf + 1, "length"),
            (csf + 0x100, "SRK table", srk + 1, "length"),
            (cert + 2, "certificate record", cert, "header"),
            (cert + 0x20, "certificate record", cert + 1, "length"),
            // The last byte of the last record (the image signature).
            (csf + extent - 1, "signature record", sig + 1, "length"),
        ];
        for (cut, structure, offset, field) in cases {
            let path = write(
                &dir,
                &format!("{}-cut-{cut:x}.bin", set.name),
                &full[..cut as usize],
            );
            let msg = refused(&path);
            let expected = format!("{structure} at offset {offset:#x}: field `{field}` truncated");
            assert!(
                msg.starts_with(&expected),
                "{} cut at {cut:#x}: expected {expected:?}, got {msg:?}",
                set.name
            );
        }
    }
}

/// SIGNED_BLOB_SIZE - 1 only removes the zero padding after the last record (both sets' last
/// record length is not a multiple of 4): every record is still complete, so the image decodes,
/// as it does in NXP's `csf_parser`.
#[test]
fn truncation_that_only_drops_the_last_record_padding_still_decodes() {
    let dir = tempfile::tempdir().unwrap();
    for set in SETS {
        let l = Layout::load(set.name);
        let full_json = inspect_json(&signed_bin(set.name), &[]);
        let full = read(&signed_bin(set.name));
        let size = l.num("SIGNED_BLOB_SIZE") as usize;
        let csf = l.num("CSF_OFFSET");
        assert!(
            csf + num(&full_json, "/fit/csf/extent") < size as u64,
            "{}: the last byte is padding",
            set.name
        );
        assert_eq!(full[size - 1], 0, "{}: padding is zero", set.name);
        let path = write(
            &dir,
            &format!("{}-minus-1.bin", set.name),
            &full[..size - 1],
        );
        let j = inspect_json(&path, &[]);
        assert_eq!(
            at(&j, "/fit/csf"),
            at(&full_json, "/fit/csf"),
            "{}",
            set.name
        );
    }
}

/// Writes `set`'s signed.bin with `edit` applied and returns the refusal message.
fn refused_edit(dir: &TempDir, set: &str, what: &str, edit: impl Fn(&mut Vec<u8>)) -> String {
    let mut b = read(&signed_bin(set));
    edit(&mut b);
    refused(&write(dir, &format!("{set}-{what}.bin"), &b))
}

#[test]
fn corrupt_ivt_tag_is_refused_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    for set in SETS {
        let ivt = Layout::load(set.name).num("IVT_OFFSET") as usize;
        assert_eq!(ivt, 0x56000);
        let msg = refused_edit(&dir, set.name, "ivt-tag", |b| b[ivt] = 0x00);
        assert!(
            msg.starts_with("IVT at offset 0x56000: field `tag` is 0x0, expected 0xd1"),
            "{}: {msg:?}",
            set.name
        );
    }
}

#[test]
fn unknown_csf_command_tag_is_refused_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    for set in SETS {
        let csf = Layout::load(set.name).num("CSF_OFFSET") as usize;
        let msg = refused_edit(&dir, set.name, "cmd-c1", |b| b[csf + 4] = 0xC1);
        assert_eq!(
            msg, "CSF command at offset 0x56024: field `tag` has unknown command tag 0xc1",
            "{}",
            set.name
        );
    }
}

#[test]
fn corrupt_srk_table_tag_is_refused_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    for set in SETS {
        let (srk, _) = Layout::load(set.name).range("SRK_TABLE_REC");
        let msg = refused_edit(&dir, set.name, "srk-tag", |b| b[srk as usize] = 0xD8);
        assert_eq!(
            msg,
            format!("SRK table at offset {srk:#x}: field `tag` is 0xd8, expected 0xd7"),
            "{}",
            set.name
        );
        // A key record inside the table, too.
        let msg = refused_edit(&dir, set.name, "srk-key-tag", |b| {
            b[srk as usize + 4] = 0xE2
        });
        assert_eq!(
            msg,
            format!(
                "SRK key record at offset {:#x}: field `tag` is 0xe2, expected 0xe1",
                srk + 4
            ),
            "{}",
            set.name
        );
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-image.bin");
    let o = run([Path::new("inspect"), &missing]);
    assert_usage_error(&o, &format!("cannot open {}", missing.display()));
}

#[test]
fn no_arguments_is_a_usage_error() {
    assert_usage_error(&run::<[&str; 0], _>([]), "Usage");
    assert_usage_error(&run(["inspect"]), "<IMAGE>");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let img = signed_bin("ecc-p256");
    let o = run([
        Path::new("inspect"),
        Path::new("--no-such-flag"),
        img.as_path(),
    ]);
    assert_usage_error(&o, "--no-such-flag");
}

#[test]
fn unknown_board_is_a_usage_error() {
    let img = signed_bin("ecc-p256");
    let o = run([
        Path::new("inspect"),
        Path::new("--board"),
        Path::new("no-such-board"),
        img.as_path(),
    ]);
    assert_usage_error(&o, "no-such-board");
    // The known boards are accepted.
    for board in ["imx8mm-evk", "qemu-imx8mp"] {
        inspect_json(&img, &["--board", board]);
    }
}

#[test]
fn help_exits_0_and_mentions_inspect() {
    let o = run(["--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert!(stdout(&o).contains("inspect"), "{}", describe(&o));
    let o = run(["inspect", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_mentions(&stdout(&o), &["--json", "--board"], "inspect --help");
}

/// Offset of the U-Boot FIT in a flash.bin (AN12900 / 8M Mini media layout).
const FIT_IN_FLASH: u64 = 0x57C00;
/// The SPL IVT's `self` on an i.MX 8M Mini.
const SPL_SELF: u32 = 0x7E_0FC0;
const SPL_ENTRY: u32 = 0x7E_1000;

/// A flash.bin: SPL IVT at 0 (csf = `spl_csf`), boot data right after it, some SPL payload,
/// zero padding, and `set`'s signed FIT at 0x57C00.
fn flash_bin(set: &str, spl_csf: u32) -> Vec<u8> {
    let fit = read(&signed_bin(set));
    let total = FIT_IN_FLASH as usize + fit.len();
    let mut b = vec![0u8; FIT_IN_FLASH as usize];
    b[..0x20].copy_from_slice(&test_images::ivt(
        SPL_ENTRY,
        SPL_SELF + 0x20,
        SPL_SELF,
        spl_csf,
    ));
    let size = u32::try_from(total).unwrap();
    b[0x20..0x2C].copy_from_slice(&test_images::boot_data(SPL_SELF - 0x400, size, 0));
    for (i, byte) in b[0x40..0x6040].iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(37) | 1;
    }
    b.extend_from_slice(&fit);
    assert_eq!(b.len(), total);
    b
}

#[test]
fn flash_bin_reports_spl_ivt_boot_data_and_the_fit_at_0x57c00() {
    let dir = tempfile::tempdir().unwrap();
    for set in SETS {
        let name = set.name;
        let l = Layout::load(name);
        let bytes = flash_bin(name, 0);
        let total = bytes.len() as u64;
        let path = write(&dir, &format!("{name}-flash.bin"), &bytes);

        let o = run([Path::new("inspect"), &path]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", describe(&o));
        let fuse = hex(&read_fixture(name, "srk_fuse.bin"));
        assert_mentions(
            &stdout(&o),
            &[
                &format!("{}: flash.bin ({total} bytes)", path.display()),
                "IVT at 0x0: header 0x412000D1",
                "entry 0x007e1000",
                "boot_data 0x7e0fe0",
                "self 0x007e0fc0",
                "csf 0x00000000",
                &format!("boot data at 0x20: start 0x007e0bc0 size {total:#x} plugin 0"),
                "no CSF: the SPL is not signed",
                "FIT at 0x57c00: totalsize 0x55ebf, signed",
                "signed for load address 0x44000000",
                &format!("IVT at {:#x}", FIT_IN_FLASH + l.num("IVT_OFFSET")),
                &format!("CSF at {:#x}", FIT_IN_FLASH + l.num("CSF_OFFSET")),
                "default configuration conf-1: firmware uboot, loadables [atf], fdt fdt-1",
                set.csfk_subject,
                set.imgk_subject,
                &format!("SRK hash {fuse}"),
            ],
            name,
        );

        let alone = inspect_json(&signed_bin(name), &[]);
        for board in [None, Some("imx8mm-evk"), Some("qemu-imx8mp")] {
            let extra: Vec<&str> = board.map(|b| vec!["--board", b]).unwrap_or_default();
            let j = inspect_json(&path, &extra);
            let what = format!("{name} flash.bin, board {board:?}");
            assert_eq!(text(&j, "/kind"), "flash.bin", "{what}");
            assert_eq!(num(&j, "/size"), total, "{what}");
            let spl = at(&j, "/spl");
            for (field, value) in [
                ("offset", 0),
                ("header", 0x4120_00D1),
                ("version", 0x41),
                ("entry", u64::from(SPL_ENTRY)),
                ("reserved1", 0),
                ("dcd", 0),
                ("boot_data", u64::from(SPL_SELF) + 0x20),
                ("self", u64::from(SPL_SELF)),
                ("csf", 0),
                ("reserved2", 0),
            ] {
                assert_eq!(
                    num(spl, &format!("/ivt/{field}")),
                    value,
                    "{what} spl.ivt.{field}"
                );
            }
            for (field, value) in [
                ("offset", 0x20),
                ("start", u64::from(SPL_SELF) - 0x400),
                ("size", total),
                ("plugin", 0),
            ] {
                assert_eq!(
                    num(spl, &format!("/boot_data/{field}")),
                    value,
                    "{what} spl.boot_data.{field}"
                );
            }
            assert!(spl.get("csf").is_none(), "{what}: no SPL CSF");
            assert!(
                spl.get("csf_slot_offset").is_none(),
                "{what}: no SPL CSF slot"
            );

            let fit = at(&j, "/fit");
            let fit_alone = at(&alone, "/fit");
            assert_eq!(num(fit, "/offset"), FIT_IN_FLASH, "{what}");
            assert_eq!(at(fit, "/signed"), &Value::Bool(true), "{what}");
            assert_eq!(num(fit, "/load_address"), l.num("LOAD_ADDR"), "{what}");
            assert_eq!(
                num(fit, "/ivt/offset"),
                FIT_IN_FLASH + l.num("IVT_OFFSET"),
                "{what}"
            );
            assert_eq!(
                num(fit, "/csf/offset"),
                FIT_IN_FLASH + l.num("CSF_OFFSET"),
                "{what}"
            );
            assert_eq!(num(fit, "/csf/offset"), 0x57C00 + 0x56020, "{what}");
            for (img, key) in
                array(fit, "/images")
                    .iter()
                    .zip(["DATA_UBOOT", "DATA_ATF", "DATA_FDT_1"])
            {
                let (off, len) = l.range(key);
                assert_eq!(
                    (num(img, "/data_offset"), num(img, "/data_size")),
                    (FIT_IN_FLASH + off, len),
                    "{what} {key}"
                );
            }
            // Everything else about the FIT is what it is on its own; CSF-relative offsets
            // do not move.
            for ptr in [
                "/totalsize",
                "/configuration",
                "/csf/commands",
                "/csf/records",
                "/csf/srk_hash",
                "/csf/srk_fuse_words",
                "/csf/extent",
                "/ivt/entry",
                "/ivt/self",
                "/ivt/csf",
            ] {
                assert_eq!(at(fit, ptr), at(fit_alone, ptr), "{what} fit{ptr}");
            }
        }
    }
}

#[test]
fn flash_bin_with_an_empty_spl_csf_slot_reports_the_spl_as_not_signed() {
    let dir = tempfile::tempdir().unwrap();
    for set in SETS {
        let slot = 0x3_0000u64;
        let bytes = flash_bin(set.name, SPL_SELF + slot as u32);
        assert!(
            bytes[slot as usize..slot as usize + 0x100]
                .iter()
                .all(|&b| b == 0)
        );
        let path = write(&dir, &format!("{}-flash-empty-csf.bin", set.name), &bytes);
        let o = run([Path::new("inspect"), &path]);
        assert_eq!(o.status.code(), Some(0), "{}: {}", set.name, describe(&o));
        assert_mentions(
            &stdout(&o),
            &[
                "flash.bin",
                &format!("csf {:#010x}", SPL_SELF + slot as u32),
                &format!("CSF slot at {slot:#x} is empty: the SPL is not signed"),
                "FIT at 0x57c00",
            ],
            set.name,
        );
        let j = inspect_json(&path, &[]);
        assert_eq!(num(&j, "/spl/csf_slot_offset"), slot, "{}", set.name);
        assert!(j["spl"].get("csf").is_none(), "{}: no SPL CSF", set.name);
        assert_eq!(
            num(&j, "/spl/ivt/csf"),
            u64::from(SPL_SELF) + slot,
            "{}",
            set.name
        );
        assert_eq!(num(&j, "/fit/offset"), FIT_IN_FLASH, "{}", set.name);
    }
}
