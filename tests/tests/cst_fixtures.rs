//! The library decodes both `cst`-signed fixture sets exactly as `layout.env` describes them.

use boards::AN12900_LAYOUT;
use imx_hab::csf::{CommandKind, KeyRole, Referenced};
use imx_hab::image::{Image, SignedFit};
use imx_hab::srk::{SrkTable, fuse_words};
use sha2::{Digest, Sha256};
use workspace_tests::{FIXTURE_SETS, Layout, hex, read_fixture};

fn record_at(l: &Layout, key: &str, csf_offset: u64) -> (u64, u64) {
    let (off, len) = l.range(key);
    (off - csf_offset, len)
}

#[test]
fn signed_fit_layout_matches_layout_env() {
    for set in FIXTURE_SETS {
        let l = Layout::load(set);
        let blob = read_fixture(set, "signed.bin");
        let s = SignedFit::parse(&blob).unwrap_or_else(|e| panic!("{set}: {e}"));
        assert_eq!(s.fit.totalsize() as u64, l.num("FIT_TOTALSIZE"), "{set}");
        assert_eq!(s.ivt_offset, l.num("IVT_OFFSET"), "{set}");
        assert_eq!(s.csf_offset, l.num("CSF_OFFSET"), "{set}");
        assert_eq!(s.load_address(), l.num("LOAD_ADDR"), "{set}");
        assert_eq!(s.csf.len() as u64, l.num("CSF_CMDS_LEN"), "{set}");
        assert_eq!(u64::from(s.csf.version()), l.num("CSF_VERSION"), "{set}");
        assert_eq!(
            hex(&Sha256::digest(s.csf.signed_bytes())),
            l.get("CSF_CMDS_SHA256"),
            "{set}"
        );
        // The CSF runs to the end of the file, up to 3 bytes of record padding.
        assert!(l.num("SIGNED_BLOB_SIZE") - s.signed_len() < 4, "{set}");
        for (name, key) in [
            ("uboot", "DATA_UBOOT"),
            ("atf", "DATA_ATF"),
            ("fdt-1", "DATA_FDT_1"),
        ] {
            let img = s.fit.image_by_name(name).unwrap();
            assert_eq!(
                (img.data.offset, img.data.len),
                l.range(key),
                "{set} {name}"
            );
            assert!(img.data.embedded);
        }
        let cfg = s.fit.default_config().unwrap();
        assert_eq!((cfg.firmware, cfg.fdt), (Some("uboot"), Some("fdt-1")));
        assert_eq!(cfg.loadables().collect::<Vec<_>>(), ["atf"]);
        assert_eq!(s.fit.image_by_name("atf").unwrap().entry, Some(0x970000));
        assert_eq!(
            hex(&Sha256::digest(&blob[..s.fit.totalsize()])),
            l.get("FIT_SHA256")
        );
        assert!(matches!(
            Image::parse(&blob, &AN12900_LAYOUT).unwrap(),
            Image::SignedFit(_)
        ));
    }
}

#[test]
fn csf_commands_and_records_match_layout_env() {
    for set in FIXTURE_SETS {
        let l = Layout::load(set);
        let blob = read_fixture(set, "signed.bin");
        let s = SignedFit::parse(&blob).unwrap();
        let csf_off = s.csf_offset;
        let mut seen = Vec::new();
        for cmd in s.csf.commands() {
            match (cmd.kind, s.csf.referenced(&cmd)) {
                (CommandKind::InstallKey(k), Some(Referenced::SrkTable(t))) => {
                    assert_eq!(k.role(), KeyRole::Srk);
                    assert_eq!(u64::from(k.source), l.num("SRK_INDEX"), "{set}");
                    assert_eq!(
                        (t.record.offset, t.record.len() as u64),
                        record_at(&l, "SRK_TABLE_REC", csf_off)
                    );
                    assert_eq!(t.table.bytes(), read_fixture(set, "srk_table.bin"), "{set}");
                    seen.push("srk");
                }
                (CommandKind::InstallKey(k), Some(Referenced::Certificate(c))) => {
                    let key = if k.role() == KeyRole::Csfk {
                        "CSFK_CERT_REC"
                    } else {
                        "IMG_CERT_REC"
                    };
                    assert_eq!(
                        (c.record.offset, c.record.len() as u64),
                        record_at(&l, key, csf_off),
                        "{set} {key}"
                    );
                    seen.push(key);
                }
                (CommandKind::Authenticate(a), Some(Referenced::Signature(sig))) => {
                    let (key, digest) = if a.is_csf() {
                        ("CSF_SIG_REC", "CSF_CMDS_SHA256")
                    } else {
                        ("IMG_SIG_REC", "SIGNED_SHA256")
                    };
                    assert_eq!(
                        (sig.record.offset, sig.record.len() as u64),
                        record_at(&l, key, csf_off),
                        "{set} {key}"
                    );
                    assert_eq!(a.engine as u64, l.num("CSF_ENGINE"));
                    assert_eq!(
                        hex(sig.signature.message_digest.unwrap()),
                        l.get(digest),
                        "{set} {key}"
                    );
                    assert!(sig.signature.detached && sig.signature.digest_is_sha256());
                    if !a.is_csf() {
                        let blocks: Vec<_> = a
                            .blocks()
                            .map(|b| (u64::from(b.start), u64::from(b.len)))
                            .collect();
                        assert_eq!(blocks, [l.range("AUTH_BLOCK")], "{set}");
                    }
                    seen.push(key);
                }
                (CommandKind::Unlock(u), None) => {
                    assert_eq!(u64::from(u.engine), l.num("UNLOCK_ENGINE"));
                    assert_eq!(u64::from(u.features()), l.num("UNLOCK_FEATURES"));
                    seen.push("unlock");
                }
                (k, r) => panic!("{set}: unexpected command {k:?} -> {r:?}"),
            }
        }
        let unlock = l.get("UNLOCK_ENGINE") != "none";
        let mut want = vec![
            "srk",
            "CSFK_CERT_REC",
            "CSF_SIG_REC",
            "IMG_CERT_REC",
            "IMG_SIG_REC",
        ];
        if unlock {
            want.push("unlock");
        }
        assert_eq!(seen, want, "{set}");
    }
}

#[test]
fn srk_hash_equals_srktool_fuse_file_and_words() {
    for set in FIXTURE_SETS {
        let fuse: [u8; 32] = read_fixture(set, "srk_fuse.bin").try_into().unwrap();
        let table_bytes = read_fixture(set, "srk_table.bin");
        let table = SrkTable::parse(&table_bytes).unwrap();
        assert_eq!(table.len(), 4);
        assert!(table.matches_fuses(&fuse), "{set}");
        let words = String::from_utf8(read_fixture(set, "srk_fuse_words.txt")).unwrap();
        for w in fuse_words(&fuse) {
            assert!(
                words.to_uppercase().contains(&format!("{w:08X}")),
                "{set}: {w:08X} not in srk_fuse_words.txt"
            );
        }
        let other = if set == "rsa2048" {
            "ecc-p256"
        } else {
            "rsa2048"
        };
        let other_fuse: [u8; 32] = read_fixture(other, "srk_fuse.bin").try_into().unwrap();
        assert!(!table.matches_fuses(&other_fuse));
    }
}

#[test]
fn certificates_are_signed_by_the_installed_srk_per_subject_and_issuer() {
    for (set, srk, cn_csf, cn_img, key) in [
        (
            "ecc-p256",
            "SRK1_sha256_prime256v1_v3_ca",
            "CSF1_1_sha256_prime256v1_v3_usr",
            "IMG1_1_sha256_prime256v1_v3_usr",
            "ECDSA P-256 (prime256v1)",
        ),
        (
            "rsa2048",
            "SRK3_sha256_2048_65537_v3_ca",
            "CSF3_1_sha256_2048_65537_v3_usr",
            "IMG3_1_sha256_2048_65537_v3_usr",
            "RSA-2048",
        ),
    ] {
        let blob = read_fixture(set, "signed.bin");
        let s = SignedFit::parse(&blob).unwrap();
        let certs: Vec<_> = s
            .csf
            .commands()
            .filter_map(|c| match s.csf.referenced(&c) {
                Some(Referenced::Certificate(c)) => Some(c.certificate),
                _ => None,
            })
            .collect();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].subject.common_name(), Some(cn_csf));
        assert_eq!(certs[1].subject.common_name(), Some(cn_img));
        for c in &certs {
            assert_eq!(c.issuer.to_string(), format!("CN={srk}"));
            assert_eq!(c.public_key.describe().to_string(), key);
            assert!(!c.is_ca);
        }
        let der = read_fixture(set, &format!("crts/{cn_csf}_crt.der"));
        assert_eq!(
            certs[0].der,
            &der[..],
            "{set}: CSFK certificate differs from crts/"
        );
    }
}
