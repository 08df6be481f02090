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

/// The board whose ROM can authenticate a fixture set: RSA on the 8M Mini EVK, P-256 on the
/// QEMU 8M Plus board (`boards::HabCapabilities`).
fn board_for(set: &str) -> &'static str {
    if set.starts_with("rsa") {
        "imx8mm-evk"
    } else {
        "qemu-imx8mp"
    }
}

fn fuse_file(set: &str) -> std::path::PathBuf {
    set_dir(set).join("srk_fuse.bin")
}

#[test]
fn both_fixture_sets_are_authentic_with_their_fuse_file() {
    for set in SETS {
        let out = ubootctl(&[
            "verify",
            "--board",
            board_for(set.name),
            s(&signed_bin(set.name)),
            "--srk-hash",
            s(&fuse_file(set.name)),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        if set.name.starts_with("rsa") {
            // cst's RSA fixture FIT loads its TF-A at 0x970000, the 8M Plus's BL31 address:
            // authentic, but outside the 8M Mini EVK's load ranges, so `verify` refuses it as
            // `update` and the shim do (one judgement).
            assert_eq!(out.status.code(), Some(1), "{text}");
            assert!(
                text.contains("REJECTED (load-address)")
                    && text.contains("authentic, but the shim cannot hand off")
                    && text.contains("`atf`"),
                "{text}"
            );
            continue;
        }
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
            "--board",
            board_for(set.name),
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
        "--board",
        "qemu-imx8mp",
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
fn an_image_the_boards_rom_cannot_authenticate_is_refused_naming_board_and_algorithm() {
    // RSA on the QEMU 8M Plus board (its authenticator is P-256 only), P-256 on the 8M Mini
    // EVK (HAB 4.3, RSA only).
    for (set, board, key) in [
        ("rsa2048", "qemu-imx8mp", "RSA-2048"),
        ("ecc-p256", "imx8mm-evk", "ECDSA P-256"),
    ] {
        let out = ubootctl(&[
            "verify",
            "--board",
            board,
            s(&signed_bin(set)),
            "--srk-hash",
            s(&fuse_file(set)),
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(1), "{set}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let p = &v["parts"][0];
        assert_eq!(p["check"], "algorithm", "{v}");
        let reason = p["reason"].as_str().unwrap();
        assert!(reason.contains(board) && reason.contains(key), "{reason}");
        assert_eq!(p["hab"]["reason"], "HAB_UNS_ALGORITHM");
    }
}

#[test]
fn fuses_are_read_from_an_ocotp_nvmem_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut nvmem = vec![0u8; 0x100];
    nvmem[0x60..0x80].copy_from_slice(&read_fixture("ecc-p256", "srk_fuse.bin"));
    nvmem[0x1C..0x20].copy_from_slice(&(1u32 << 25).to_le_bytes());
    let p = dir.path().join("nvmem");
    std::fs::write(&p, &nvmem).unwrap();
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&signed_bin("ecc-p256")),
        "--ocotp",
        s(&p),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fuses from OCOTP"));
    // Unprogrammed SRK fuses on an open part: a signed image fails at the SRK hash (exit 1).
    std::fs::write(&p, vec![0u8; 0x100]).unwrap();
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&signed_bin("ecc-p256")),
        "--ocotp",
        s(&p),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("srk-hash"));
    // Unprogrammed SRK fuses on a closed part: nothing can be authentic (refused, exit 1).
    let mut closed = vec![0u8; 0x100];
    closed[0x1C..0x20].copy_from_slice(&(1u32 << 25).to_le_bytes());
    std::fs::write(&p, closed).unwrap();
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&signed_bin("ecc-p256")),
        "--ocotp",
        s(&p),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not programmed"));
}

#[test]
fn missing_fuse_sources_are_usage_errors_that_say_what_to_do() {
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
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
        "--board",
        "qemu-imx8mp",
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
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&fit),
        "--srk-hash",
        s(&fuse_file("ecc-p256")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not signed"));
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, [0x55u8; 4096]).unwrap();
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&junk),
        "--srk-hash",
        s(&fuse_file("ecc-p256")),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn flash_bin_fit_is_verified_at_0x57c00() {
    let dir = tempfile::tempdir().unwrap();
    let fit = read_fixture("ecc-p256", "signed.bin");
    // An unsigned i.MX 8M Mini SPL (CSF slot zeroed), then the fixture's FIT.
    let mut fb = workspace_tests::imx8mm_spl_area(0x1800);
    fb.extend_from_slice(&fit);
    let p = dir.path().join("flash.bin");
    std::fs::write(&p, &fb).unwrap();
    // Given only the SRK hash, the part is taken as closed: its ROM refuses the unsigned SPL.
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&p),
        "--srk-hash",
        s(&fuse_file("ecc-p256")),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "flash.bin");
    assert_eq!(v["security"], "closed");
    assert_eq!(v["parts"][0]["check"], "not-signed", "{v}");
    assert_eq!(v["parts"][1]["examined"], false, "{v}");
    // An open part (SEC_CONFIG clear in the fuse block) starts it: accepted, with a warning,
    // and the FIT is verified at 0x57C00.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(&std::fs::read(fuse_file("ecc-p256")).unwrap());
    let fuses = dir.path().join("fuses.bin");
    std::fs::write(&fuses, block).unwrap();
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&p),
        "--fuses",
        s(&fuses),
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["security"], "open");
    assert_eq!(v["parts"][0]["part"], "SPL");
    assert!(
        v["parts"][0]["warning"]
            .as_str()
            .unwrap()
            .contains("unsigned SPL")
    );
    assert_eq!(v["parts"][1]["offset"], 0x57C00);
    assert_eq!(v["parts"][1]["accepted"], true);
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
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&p),
        "--srk-hash",
        s(&fuse),
        "--json",
    ]);
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
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&p),
        "--srk-hash",
        s(&fuse),
        "--json",
    ]);
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
    // The copy is refused at its SPL: the FIT is not examined (the ROM never starts it).
    assert_eq!(
        (parts[1]["part"].as_str(), parts[1]["examined"].as_bool()),
        (Some("FIT"), Some(false))
    );
    // The fixture's fuses do not match the generated PKI: both parts fail at the SRK hash.
    std::fs::write(&p, &fb).unwrap();
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&p),
        "--srk-hash",
        s(&fuse_file("ecc-p256")),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The copy fails at its SPL's SRK hash; its FIT is never reached.
    assert_eq!(v["parts"][0]["check"], "srk-hash", "{v}");
    assert_eq!(v["parts"][1]["examined"], false, "{v}");
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
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&p),
        "--srk-hash",
        s(&fuse),
        "--json",
    ]);
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
    let out = ubootctl(&[
        "verify",
        "--board",
        "qemu-imx8mp",
        s(&p),
        "--srk-hash",
        s(&fuse),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("CSF key none (fast authentication), image key the SRK")
            .count(),
        2,
        "{text}"
    );
}
