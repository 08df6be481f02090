//! The software HAB4 verifier accepts both `cst`-signed fixture sets and the expected verdicts
//! of `fixtures/hab4/README.md` §4.

use imx_hab::hab::software::{KeyKind, VerifyError, verify};
use imx_hab::hab::{Authenticator, Fuses};
use workspace_tests::{FIXTURE_SETS, Layout, read_fixture};

fn fuses(set: &str) -> Fuses {
    Fuses::open_with(read_fixture(set, "srk_fuse.bin").try_into().unwrap())
}

#[test]
fn both_cst_fixture_sets_verify_at_their_load_address() {
    for set in FIXTURE_SETS {
        let l = Layout::load(set);
        let blob = read_fixture(set, "signed.bin");
        let r =
            verify(&blob, l.num("LOAD_ADDR"), &fuses(set)).unwrap_or_else(|e| panic!("{set}: {e}"));
        assert_eq!(u64::from(r.srk_index), l.num("SRK_INDEX"));
        assert_eq!(
            r.srk_key,
            if set == "rsa2048" {
                KeyKind::Rsa(2048)
            } else {
                KeyKind::P256
            }
        );
        assert_eq!((r.blocks, r.signed_bytes), (1, l.num("SIGNED_LEN")));
        assert!(r.csfk.is_some() && r.image_key.is_some());
        let a = imx_hab::hab::software::SoftwareHab { fuses: fuses(set) }
            .authenticate(&blob, l.num("LOAD_ADDR"))
            .unwrap();
        assert_eq!(a.ivt_offset, l.num("IVT_OFFSET"));
    }
}

#[test]
fn flipped_payload_byte_is_an_image_digest_mismatch() {
    for set in FIXTURE_SETS {
        let l = Layout::load(set);
        let mut blob = read_fixture(set, "signed.bin");
        blob[l.num("PAYLOAD_FLIP_TEST_OFFSET") as usize] ^= 1;
        let e = verify(&blob, l.num("LOAD_ADDR"), &fuses(set)).unwrap_err();
        assert_eq!(e.check(), "image-signature", "{set}: {e}");
        assert!(
            e.to_string().contains("messageDigest does not match"),
            "{e}"
        );
        assert!(
            e.to_string().contains("over block 0 0x44000000+0x56020"),
            "{e}"
        );
    }
}

#[test]
fn other_load_address_is_rejected_at_the_ivt() {
    for set in FIXTURE_SETS {
        let blob = read_fixture(set, "signed.bin");
        let e = verify(&blob, 0x4800_0000, &fuses(set)).unwrap_err();
        assert!(
            matches!(
                e,
                VerifyError::IvtSelf {
                    found: 0x4405_6000,
                    expected: 0x4805_6000
                }
            ),
            "{set}: {e}"
        );
    }
}

#[test]
fn the_other_sets_fuses_are_an_srk_hash_mismatch() {
    for (set, other) in [("ecc-p256", "rsa2048"), ("rsa2048", "ecc-p256")] {
        let blob = read_fixture(set, "signed.bin");
        let e = verify(&blob, 0x4400_0000, &fuses(other)).unwrap_err();
        assert_eq!(e.check(), "srk-hash", "{set}: {e}");
    }
}

/// Counts the verifier's passes over signed content.
#[derive(Default)]
struct CountingMeter {
    open: bool,
    passes: u32,
    bytes: u64,
}

impl imx_hab::hab::software::HashMeter for CountingMeter {
    fn hash_start(&mut self) {
        assert!(!self.open, "nested hash pass");
        self.open = true;
    }
    fn hash_end(&mut self, bytes: u64) {
        assert!(self.open, "hash_end without hash_start");
        self.open = false;
        self.passes += 1;
        self.bytes += bytes;
    }
}

#[test]
fn the_meter_sees_one_pass_over_the_csf_and_one_over_the_signed_image() {
    for set in FIXTURE_SETS {
        let l = Layout::load(set);
        let blob = read_fixture(set, "signed.bin");
        let mut meter = CountingMeter::default();
        let a = imx_hab::hab::software::SoftwareHab { fuses: fuses(set) }
            .authenticate_metered(&blob, l.num("LOAD_ADDR"), &mut meter)
            .unwrap();
        assert_eq!(meter.passes, 2, "{set}: CSF signature + image signature");
        assert!(!meter.open);
        // The image pass covers the signed bytes; the CSF pass the CSF's signed bytes.
        assert!(meter.bytes > a.signed_bytes, "{set}");
        assert!(meter.bytes < a.signed_bytes + 0x2000, "{set}");
    }
}
