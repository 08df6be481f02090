//! `ubootctl verify`: exit codes, reasons, JSON and the fuse sources.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{SETS, read_fixture, set_dir, signed_bin};
use serde_json::Value;

fn ubootctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ubootctl"))
        .args(args)
        .output()
        .expect("ubootctl runs")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fuse_file(set: &str) -> std::path::PathBuf {
    set_dir(set).join("srk_fuse.bin")
}

#[test]
fn both_fixture_sets_are_authentic_with_their_fuse_file() {
    for set in SETS {
        let out = ubootctl(&[
            "verify",
            s(&signed_bin(set.name)),
            "--srk-hash",
            s(&fuse_file(set.name)),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {text}{}",
            set.name,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("AUTHENTIC"), "{text}");
        assert!(
            text.contains(set.csfk_subject) && text.contains(set.imgk_subject),
            "{text}"
        );
        assert!(text.contains(set.key), "{text}");
    }
}

#[test]
fn flipped_payload_byte_exits_1_with_the_block_in_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for set in SETS {
        let mut b = read_fixture(set.name, "signed.bin");
        b[0x12445] ^= 1;
        let p = dir.path().join(format!("{}.bin", set.name));
        std::fs::write(&p, &b).unwrap();
        let out = ubootctl(&[
            "verify",
            s(&p),
            "--srk-hash",
            s(&fuse_file(set.name)),
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", set.name);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["accepted"], false);
        let part = &v["parts"][0];
        assert_eq!(part["check"], "image-signature");
        assert_eq!(part["hab"]["reason"], "HAB_INV_SIGNATURE");
        assert!(
            part["reason"]
                .as_str()
                .unwrap()
                .contains("over block 0 0x44000000+0x56020"),
            "{part}"
        );
    }
}

#[test]
fn foreign_fuses_are_an_srk_hash_rejection() {
    let out = ubootctl(&[
        "verify",
        s(&signed_bin("ecc-p256")),
        "--srk-hash",
        s(&fuse_file("rsa2048")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("REJECTED (srk-hash)") && text.contains("not to the SRK fuses"),
        "{text}"
    );
}

#[test]
fn json_reports_keys_blocks_and_fuse_source() {
    let out = ubootctl(&[
        "verify",
        s(&signed_bin("rsa2048")),
        "--srk-hash",
        s(&fuse_file("rsa2048")),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "signed FIT");
    assert_eq!(
        v["srk_hash"],
        "81a3c4343ea8d1ac93772ac8f1c50e1cf46e93209da8728a2339a2ace4dd8d76"
    );
    let p = &v["parts"][0];
    assert_eq!(
        (
            p["part"].as_str(),
            p["srk_index"].as_u64(),
            p["srk_key"].as_str()
        ),
        (Some("FIT"), Some(2), Some("RSA-2048"))
    );
    assert_eq!(
        (
            p["load_address"].as_u64(),
            p["blocks"].as_u64(),
            p["signed_bytes"].as_u64()
        ),
        (Some(0x4400_0000), Some(1), Some(0x56020))
    );
}

#[test]
fn fuses_are_read_from_an_ocotp_nvmem_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut nvmem = vec![0u8; 0x100];
    nvmem[0x60..0x80].copy_from_slice(&read_fixture("ecc-p256", "srk_fuse.bin"));
    nvmem[0x1C..0x20].copy_from_slice(&(1u32 << 25).to_le_bytes());
    let p = dir.path().join("nvmem");
    std::fs::write(&p, &nvmem).unwrap();
    let out = ubootctl(&["verify", s(&signed_bin("ecc-p256")), "--ocotp", s(&p)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fuses from OCOTP"));
    // Unprogrammed SRK fuses: nothing can be authentic (refused, exit 1).
    std::fs::write(&p, vec![0u8; 0x100]).unwrap();
    let out = ubootctl(&["verify", s(&signed_bin("ecc-p256")), "--ocotp", s(&p)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not programmed"));
}

#[test]
fn missing_fuse_sources_are_usage_errors_that_say_what_to_do() {
    let out = ubootctl(&[
        "verify",
        s(&signed_bin("ecc-p256")),
        "--ocotp",
        "/nonexistent/nvmem",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read the SRK fuses") && err.contains("--srk-hash"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.bin");
    std::fs::write(&short, [0u8; 31]).unwrap();
    let out = ubootctl(&[
        "verify",
        s(&signed_bin("ecc-p256")),
        "--srk-hash",
        s(&short),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exactly 32 bytes"));
}

#[test]
fn unsigned_fit_and_garbage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = read_fixture("ecc-p256", "signed.bin");
    let fit = dir.path().join("fit.bin");
    std::fs::write(&fit, &b[..0x55ebf]).unwrap();
    let out = ubootctl(&["verify", s(&fit), "--srk-hash", s(&fuse_file("ecc-p256"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not signed"));
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, [0x55u8; 4096]).unwrap();
    let out = ubootctl(&["verify", s(&junk), "--srk-hash", s(&fuse_file("ecc-p256"))]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn flash_bin_fit_is_verified_at_0x57c00() {
    let dir = tempfile::tempdir().unwrap();
    let fit = read_fixture("rsa2048", "signed.bin");
    let mut fb = vec![0u8; 0x57C00];
    // SPL IVT (i.MX 8M Mini): entry 0x7E1000, self 0x7E0FC0, boot data right after, unsigned.
    let words = [0x7E1000u32, 0, 0, 0x7E0FE0, 0x7E0FC0, 0, 0];
    fb[..4].copy_from_slice(&[0xD1, 0x00, 0x20, 0x41]);
    for (i, w) in words.iter().enumerate() {
        fb[4 + 4 * i..8 + 4 * i].copy_from_slice(&w.to_le_bytes());
    }
    fb[0x20..0x2C].copy_from_slice(&[0xC0, 0x0B, 0x7E, 0x00, 0x00, 0x00, 0x06, 0x00, 0, 0, 0, 0]);
    fb.extend_from_slice(&fit);
    let p = dir.path().join("flash.bin");
    std::fs::write(&p, &fb).unwrap();
    let out = ubootctl(&[
        "verify",
        s(&p),
        "--srk-hash",
        s(&fuse_file("rsa2048")),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "flash.bin");
    assert_eq!(
        v["parts"].as_array().unwrap().len(),
        1,
        "an unsigned SPL is not a part"
    );
    assert_eq!(v["parts"][0]["offset"], 0x57C00);
}

/// A PKI generated on the fly (test keys), its SRK hash written as a fuse file in `dir`.
fn generated_pki(dir: &Path) -> (imx_hab::sign::Pki, std::path::PathBuf) {
    let pki = imx_hab::sign::Pki::generate_p256(
        b"ubootctl verify flash.bin",
        &imx_hab::sign::TestPkiOptions::default(),
    )
    .unwrap();
    let fuse = dir.join("gen_fuse.bin");
    std::fs::write(&fuse, pki.srk_hash().unwrap()).unwrap();
    (pki, fuse)
}

/// A flash.bin (i.MX 8M Mini SPL: IVT at 0, entry 0x7E1000, self = entry - 0x40, boot data
/// after the IVT, CSF slot at 0x1800) whose U-Boot FIT at 0x57C00 (the fixture's FIT, re-signed
/// for 0x44000000) and whose SPL are both signed with `pki`.
fn signed_flash_bin(pki: &imx_hab::sign::Pki, options: &imx_hab::sign::SignOptions) -> Vec<u8> {
    let mut fb = workspace_tests::imx8mm_spl_area(0x1800);
    let fit = imx_hab::sign::sign_fit(
        &read_fixture("ecc-p256", "signed.bin"),
        0x4400_0000,
        pki,
        options,
    )
    .unwrap();
    fb.extend_from_slice(&fit);
    imx_hab::sign::sign_spl(&fb, pki, options).unwrap()
}

#[test]
fn flash_bin_with_signed_spl_and_fit_verifies_both_and_a_flipped_spl_byte_rejects_the_spl() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, fuse) = generated_pki(dir.path());
    let options = imx_hab::sign::SignOptions {
        srk_index: 1,
        signing_time: Some(1_790_000_000),
        ..Default::default()
    };
    let fb = signed_flash_bin(&pki, &options);
    let p = dir.path().join("flash.bin");
    std::fs::write(&p, &fb).unwrap();
    let out = ubootctl(&["verify", s(&p), "--srk-hash", s(&fuse), "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["accepted"].as_bool()),
        (Some("flash.bin"), Some(true))
    );
    let parts = v["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{v}");
    let (spl, fit) = (&parts[0], &parts[1]);
    assert_eq!(
        (
            spl["part"].as_str(),
            spl["accepted"].as_bool(),
            spl["offset"].as_u64()
        ),
        (Some("SPL"), Some(true), Some(0))
    );
    assert_eq!(
        (
            spl["load_address"].as_u64(),
            spl["signed_bytes"].as_u64(),
            spl["srk_index"].as_u64()
        ),
        (Some(0x007E_0FC0), Some(0x1800), Some(1))
    );
    assert_eq!(
        (
            fit["part"].as_str(),
            fit["accepted"].as_bool(),
            fit["offset"].as_u64()
        ),
        (Some("FIT"), Some(true), Some(0x57C00))
    );
    assert_eq!(
        (fit["load_address"].as_u64(), fit["srk_index"].as_u64()),
        (Some(0x4400_0000), Some(1))
    );
    assert_eq!(fit["csfk"], "CN=CSF2_1_sha256_prime256v1_v3_usr");

    let mut bad = fb.clone();
    bad[0x100] ^= 1;
    std::fs::write(&p, &bad).unwrap();
    let out = ubootctl(&["verify", s(&p), "--srk-hash", s(&fuse), "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["accepted"], false);
    let parts = v["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{v}");
    assert_eq!(
        (
            parts[0]["part"].as_str(),
            parts[0]["accepted"].as_bool(),
            parts[0]["check"].as_str()
        ),
        (Some("SPL"), Some(false), Some("image-signature"))
    );
    assert_eq!(parts[0]["hab"]["reason"], "HAB_INV_SIGNATURE");
    assert_eq!(
        (parts[1]["part"].as_str(), parts[1]["accepted"].as_bool()),
        (Some("FIT"), Some(true))
    );
    // The fixture's fuses do not match the generated PKI: both parts fail at the SRK hash.
    std::fs::write(&p, &fb).unwrap();
    let out = ubootctl(&[
        "verify",
        s(&p),
        "--srk-hash",
        s(&fuse_file("ecc-p256")),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for part in v["parts"].as_array().unwrap() {
        assert_eq!(part["check"], "srk-hash", "{part}");
    }
}

#[test]
fn fast_authentication_flash_bin_reports_no_csf_or_image_key() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, fuse) = generated_pki(dir.path());
    let options = imx_hab::sign::SignOptions {
        engine: imx_hab::sign::Engine::Caam,
        signing_time: Some(1_790_000_000),
        fast_auth: imx_hab::sign::FastAuth::SrkSlot,
        ..Default::default()
    };
    let p = dir.path().join("flash.bin");
    std::fs::write(&p, signed_flash_bin(&pki, &options)).unwrap();
    let out = ubootctl(&["verify", s(&p), "--srk-hash", s(&fuse), "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let parts = v["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{v}");
    for part in parts {
        assert_eq!(part["accepted"], true, "{part}");
        assert!(
            part.get("csfk").is_none() && part.get("image_key").is_none(),
            "{part}"
        );
    }
    let out = ubootctl(&["verify", s(&p), "--srk-hash", s(&fuse)]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("CSF key none (fast authentication), image key the SRK")
            .count(),
        2,
        "{text}"
    );
}
