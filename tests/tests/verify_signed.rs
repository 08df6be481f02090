//! The software verifier against images made by the test-key signer: every option it offers
//! verifies, and the attacks that need a second PKI or a re-signed CSF are rejected for the
//! right reason (issue 3: foreign SRK table, pasted genuine SRK table, blocks missing the IVT,
//! signed SPL).

use std::sync::OnceLock;

use boards::AN12900_LAYOUT;
use imx_hab::csf::Referenced;
use imx_hab::hab::Fuses;
use imx_hab::hab::software::{verify, verify_spl};
use imx_hab::image::SignedFit;
use imx_hab::sign::{self, Block, Engine, Pki, SignOptions, TestPkiOptions};
use workspace_tests::read_fixture;

const LOAD: u32 = 0x4400_0000;

fn fit() -> Vec<u8> {
    let b = read_fixture("ecc-p256", "signed.bin");
    let total = imx_hab::fit::totalsize(&b).unwrap() as usize;
    b[..total].to_vec()
}

fn pki(which: usize) -> &'static Pki {
    static PKIS: OnceLock<[Pki; 2]> = OnceLock::new();
    &PKIS.get_or_init(|| {
        let o = TestPkiOptions::default();
        [
            Pki::generate_p256(b"genuine", &o).unwrap(),
            Pki::generate_p256(b"foreign", &o).unwrap(),
        ]
    })[which]
}

fn fuses(p: &Pki) -> Fuses {
    Fuses::open_with(p.srk_hash().unwrap())
}

fn opts(engine: Engine, srk_index: u8, csf_version: u8) -> SignOptions {
    SignOptions {
        csf_version,
        engine,
        srk_index,
        signing_time: Some(1_790_000_000),
    }
}

#[test]
fn every_signer_option_verifies() {
    let fit = fit();
    for engine in [Engine::Any, Engine::Caam] {
        for srk_index in 0..4 {
            for version in [0x43, 0x45] {
                let img =
                    sign::sign_fit(&fit, LOAD, pki(0), &opts(engine, srk_index, version)).unwrap();
                let r = verify(&img, LOAD.into(), &fuses(pki(0)))
                    .unwrap_or_else(|e| panic!("{engine:?} SRK {srk_index} v{version:#x}: {e}"));
                assert_eq!(r.srk_index, srk_index);
            }
        }
    }
}

#[test]
fn srk_table_of_another_pki_is_an_srk_hash_rejection() {
    let img = sign::sign_fit(&fit(), LOAD, pki(1), &SignOptions::default()).unwrap();
    verify(&img, LOAD.into(), &fuses(pki(1))).unwrap();
    let e = verify(&img, LOAD.into(), &fuses(pki(0))).unwrap_err();
    assert_eq!(e.check(), "srk-hash", "{e}");
}

#[test]
fn genuine_srk_table_pasted_into_a_foreign_csf_fails_at_the_certificate() {
    let mut img = sign::sign_fit(&fit(), LOAD, pki(1), &SignOptions::default()).unwrap();
    let s = SignedFit::parse(&img).unwrap();
    let table = s
        .csf
        .commands()
        .find_map(|c| match s.csf.referenced(&c) {
            Some(Referenced::SrkTable(t)) => Some(t.record),
            _ => None,
        })
        .unwrap();
    let at = (s.csf_offset + table.offset) as usize;
    let genuine = &pki(0).srk_table;
    assert_eq!(
        genuine.len(),
        table.len(),
        "both tables hold four P-256 keys"
    );
    img[at..at + genuine.len()].copy_from_slice(genuine);
    let e = verify(&img, LOAD.into(), &fuses(pki(0))).unwrap_err();
    assert_eq!(e.check(), "certificate", "{e}");
    assert!(
        e.to_string().contains("is not signed by its source key"),
        "{e}"
    );
}

#[test]
fn signed_blocks_that_miss_the_ivt_are_not_enough() {
    let fit = fit();
    let ivt_off = imx_hab::image::ivt_offset_for(fit.len() as u64) as usize;
    let mut img = fit.clone();
    img.resize(ivt_off, 0);
    let self_addr = LOAD + ivt_off as u32;
    let ivt_words = [LOAD, 0, 0, 0, self_addr, self_addr + 0x20, 0];
    img.extend_from_slice(&[0xD1, 0x00, 0x20, 0x41]);
    for w in ivt_words {
        img.extend_from_slice(&w.to_le_bytes());
    }
    // Sign FIT and padding, but not the IVT.
    let block = Block {
        start: LOAD,
        data: &img[..ivt_off],
    };
    let csf = sign::build_csf(&[block], pki(0), &SignOptions::default()).unwrap();
    img.extend_from_slice(&csf);
    let e = verify(&img, LOAD.into(), &fuses(pki(0))).unwrap_err();
    assert_eq!(e.check(), "coverage", "{e}");
    assert!(e.to_string().contains(&format!("{:#x}", self_addr)), "{e}");
}

/// A flash.bin whose SPL (i.MX 8M Mini: entry 0x7E1000, self = entry - 0x40) reserves a CSF
/// slot at 0x1800, with the fixture's signed FIT at 0x57C00.
fn flash_bin() -> Vec<u8> {
    let entry = 0x007E_1000u32;
    let base = entry - 0x40;
    let csf_at = 0x1800u32;
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
    fb.extend_from_slice(&read_fixture("ecc-p256", "signed.bin"));
    fb
}

#[test]
fn signed_spl_verifies_and_a_flipped_spl_byte_does_not() {
    let signed = sign::sign_spl(&flash_bin(), pki(0), &SignOptions::default()).unwrap();
    let r = verify_spl(&signed, &AN12900_LAYOUT, &fuses(pki(0))).unwrap();
    assert_eq!((r.load_address, r.signed_bytes), (0x007E_0FC0, 0x1800));
    let mut bad = signed.clone();
    bad[0x100] ^= 1;
    let e = verify_spl(&bad, &AN12900_LAYOUT, &fuses(pki(0))).unwrap_err();
    assert_eq!(e.check(), "image-signature", "{e}");
    // An unsigned SPL has nothing to verify.
    assert!(verify_spl(&flash_bin(), &AN12900_LAYOUT, &fuses(pki(0))).is_err());
}
