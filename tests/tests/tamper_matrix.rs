//! Tamper matrix (issue 3): a flipped byte anywhere in a `cst`-signed image is rejected by the
//! software verifier, with an error class that fits the region the byte is in.
//!
//! Every byte of the IVT, the CSF header and the commands is flipped; data regions (FIT header,
//! each image payload, padding, SRK table, certificates, signatures) are sampled at 64+ offsets
//! spread over the region, always including its first and last byte.

use imx_hab::hab::Fuses;
use imx_hab::hab::software::verify;
use workspace_tests::{FIXTURE_SETS, Layout, read_fixture};

struct Region {
    name: &'static str,
    start: u64,
    len: u64,
    every_byte: bool,
    allowed: &'static [&'static str],
}

const SIGNED: &[&str] = &["image-signature"];

fn regions(l: &Layout) -> Vec<Region> {
    let total = l.num("FIT_TOTALSIZE");
    let ivt = l.num("IVT_OFFSET");
    let csf = l.num("CSF_OFFSET");
    let rec = |key: &str| l.range(key);
    let mut v = vec![
        // FDT header fields the FDT parser checks give `structure`; the rest (e.g.
        // boot_cpuid_phys) only change the signed bytes.
        Region {
            name: "FIT header",
            start: 0,
            len: 40,
            every_byte: true,
            allowed: &["structure", "image-signature"],
        },
        Region {
            name: "padding",
            start: total,
            len: ivt - total,
            every_byte: false,
            allowed: SIGNED,
        },
        Region {
            name: "IVT",
            start: ivt,
            len: 0x20,
            every_byte: true,
            allowed: &["structure", "ivt", "image-signature"],
        },
        Region {
            name: "CSF header",
            start: csf,
            len: 4,
            every_byte: true,
            allowed: &["structure", "certificate", "csf-signature"],
        },
        Region {
            name: "CSF commands",
            start: csf + 4,
            len: l.num("CSF_CMDS_LEN") - 4,
            every_byte: true,
            allowed: &[
                "structure",
                "command",
                "srk-hash",
                "srk-key",
                "certificate",
                "csf-signature",
                "unsupported-key",
            ],
        },
        Region {
            name: "SRK table",
            start: rec("SRK_TABLE_REC").0,
            len: rec("SRK_TABLE_REC").1,
            every_byte: false,
            allowed: &["structure", "srk-hash"],
        },
    ];
    for (key, name) in [
        ("CSFK_CERT_REC", "CSFK certificate"),
        ("IMG_CERT_REC", "image key certificate"),
    ] {
        let (start, len) = rec(key);
        v.push(Region {
            name,
            start,
            len,
            every_byte: false,
            allowed: &[
                "structure",
                "certificate",
                "unsupported-key",
                "csf-signature",
                "image-signature",
            ],
        });
    }
    for (key, name, class) in [
        ("CSF_SIG_REC", "CSF signature", "csf-signature"),
        ("IMG_SIG_REC", "image signature", "image-signature"),
    ] {
        let (start, len) = rec(key);
        v.push(Region {
            name,
            start,
            len,
            every_byte: false,
            allowed: if class == "csf-signature" {
                &["structure", "csf-signature"]
            } else {
                &["structure", "image-signature"]
            },
        });
    }
    for key in ["DATA_UBOOT", "DATA_ATF", "DATA_FDT_1"] {
        let (start, len) = l.range(key);
        v.push(Region {
            name: "image payload",
            start,
            len,
            every_byte: false,
            allowed: SIGNED,
        });
    }
    v
}

fn offsets(r: &Region) -> Vec<u64> {
    if r.every_byte || r.len <= 64 {
        return (r.start..r.start + r.len).collect();
    }
    let mut v: Vec<u64> = (0..64).map(|i| r.start + i * (r.len - 1) / 63).collect();
    v.dedup();
    v
}

#[test]
fn every_flipped_byte_is_rejected_with_the_class_of_its_region() {
    for set in FIXTURE_SETS {
        let l = Layout::load(set);
        let load = l.num("LOAD_ADDR");
        let fuses = Fuses::open_with(read_fixture(set, "srk_fuse.bin").try_into().unwrap());
        let original = read_fixture(set, "signed.bin");
        verify(&original, load, &fuses).unwrap();
        let mut tried = 0;
        for r in regions(&l) {
            for at in offsets(&r) {
                for mask in [0x01u8, 0x80] {
                    let mut b = original.clone();
                    b[at as usize] ^= mask;
                    match verify(&b, load, &fuses) {
                        Ok(_) => {
                            panic!("{set}: {} byte {at:#x} ^ {mask:#04x} was accepted", r.name)
                        }
                        Err(e) => assert!(
                            r.allowed.contains(&e.check()),
                            "{set}: {} byte {at:#x} ^ {mask:#04x}: class {} not in {:?}: {e}",
                            r.name,
                            e.check(),
                            r.allowed
                        ),
                    }
                    tried += 1;
                }
            }
        }
        assert!(tried > 1000, "{set}: only {tried} variants");
    }
}

#[test]
fn payload_and_padding_flips_are_image_digest_mismatches_naming_the_block() {
    for set in FIXTURE_SETS {
        let l = Layout::load(set);
        let fuses = Fuses::open_with(read_fixture(set, "srk_fuse.bin").try_into().unwrap());
        let mut b = read_fixture(set, "signed.bin");
        let pad = l.num("FIT_TOTALSIZE") as usize + 1;
        b[pad] ^= 0x40;
        let e = verify(&b, l.num("LOAD_ADDR"), &fuses)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "messageDigest does not match the signed bytes over block 0 0x44000000+0x56020"
            ),
            "{e}"
        );
    }
}

#[test]
fn truncated_blob_and_missing_csf_are_structural_rejections() {
    for set in FIXTURE_SETS {
        let l = Layout::load(set);
        let fuses = Fuses::open_with(read_fixture(set, "srk_fuse.bin").try_into().unwrap());
        let b = read_fixture(set, "signed.bin");
        let (sig_at, sig_len) = l.range("IMG_SIG_REC");
        for cut in [
            l.num("CSF_OFFSET") as usize,
            (sig_at + sig_len - 1) as usize,
            l.num("IVT_OFFSET") as usize + 0x10,
        ] {
            let e = verify(&b[..cut], 0x4400_0000, &fuses).unwrap_err();
            assert_eq!(e.check(), "structure", "{set} cut at {cut:#x}: {e}");
        }
        // A FIT with zeroed IVT+CSF area parses as unsigned and cannot be verified.
        let mut z = b.clone();
        z.truncate(l.num("IVT_OFFSET") as usize);
        assert_eq!(
            verify(&z, 0x4400_0000, &fuses).unwrap_err().check(),
            "structure"
        );
    }
}

#[test]
fn revoked_srk_is_rejected_and_other_revocations_are_not() {
    for set in FIXTURE_SETS {
        let l = Layout::load(set);
        let hash: [u8; 32] = read_fixture(set, "srk_fuse.bin").try_into().unwrap();
        let b = read_fixture(set, "signed.bin");
        let index = l.num("SRK_INDEX") as u32;
        let revoked = Fuses {
            srk_hash: hash,
            sec_config: Fuses::SEC_CONFIG_CLOSED,
            srk_revoke_mask: 1 << index,
            rollback: 0,
        };
        let e = verify(&b, 0x4400_0000, &revoked).unwrap_err();
        assert_eq!(e.check(), "srk-key", "{set}: {e}");
        assert!(e.to_string().contains("revoked"));
        let others = Fuses {
            srk_revoke_mask: 0xF & !(1 << index),
            ..revoked
        };
        verify(&b, 0x4400_0000, &others).unwrap();
    }
}
