//! The test-key signer (`imx_hab::sign`) writes what `cst` writes: its images parse, its SRK
//! tables equal `srktool`'s, `csf_parser` and `openssl` accept its CSFs and signatures, and it
//! signs with a `cst`-made RSA PKI as well as with its own generated P-256 PKI.
//!
//! External tools (`srktool`, `csf_parser`, `openssl`) are optional: a test that needs a missing
//! one prints `SKIPPED: …` and passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use imx_hab::csf::{CommandKind, KeyRole, Referenced};
use imx_hab::image::SignedFit;
use imx_hab::sign::{
    self, Block, CertKey, Engine, Pki, PrivateKey, SignError, SignOptions, SignerKeys,
    TestPkiOptions,
};
use imx_hab::srk::SrkTable;
use workspace_tests::{fixture_dir, read_fixture};

const LOAD: u32 = 0x4400_0000;
const FIT_TOTALSIZE: usize = 0x55ebf;
const SIGNING_TIME: u64 = 1_767_225_600 + 3600;

fn fixture_fit() -> Vec<u8> {
    read_fixture("ecc-p256", "signed.bin")[..FIT_TOTALSIZE].to_vec()
}

fn test_pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        Pki::generate_p256(b"imx-hab signer tests", &TestPkiOptions::default()).unwrap()
    })
}

fn options(engine: Engine, srk_index: u8) -> SignOptions {
    SignOptions {
        engine,
        srk_index,
        signing_time: Some(SIGNING_TIME),
        ..SignOptions::default()
    }
}

/// Whether `tool` is on PATH; prints why the caller skips when it is not.
fn have(tool: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    if !found {
        eprintln!("SKIPPED: {test}: `{tool}` is not on PATH");
    }
    found
}

fn run(dir: &Path, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn pem(cert: &[u8]) -> String {
    CertKey {
        name: "certificate".into(),
        certificate: cert.to_vec(),
        key: None,
    }
    .certificate_pem()
    .unwrap()
}

/// What a signed FIT's CSF points to, found through its commands.
struct Parts {
    ivt_offset: usize,
    csf_offset: usize,
    cmds: Vec<u8>,
    /// (CSF-relative offset, whole record) in command order.
    records: Vec<(usize, Vec<u8>)>,
    srk_table: Vec<u8>,
    csfk: Vec<u8>,
    csf_sig: Vec<u8>,
    imgk: Vec<u8>,
    img_sig: Vec<u8>,
}

fn parts(blob: &[u8]) -> Parts {
    let s = SignedFit::parse(blob).unwrap();
    let mut records = Vec::new();
    let (mut certs, mut sigs, mut table) = (Vec::new(), Vec::new(), None);
    for cmd in s.csf.commands() {
        match s.csf.referenced(&cmd) {
            Some(Referenced::SrkTable(t)) => {
                records.push((t.record.offset as usize, t.record.bytes.to_vec()));
                table = Some(t.record.bytes.to_vec());
            }
            Some(Referenced::Certificate(c)) => {
                records.push((c.record.offset as usize, c.record.bytes.to_vec()));
                certs.push(c.record.body().to_vec());
            }
            Some(Referenced::Signature(g)) => {
                records.push((g.record.offset as usize, g.record.bytes.to_vec()));
                sigs.push(g.record.body().to_vec());
            }
            None => {}
        }
    }
    assert_eq!((certs.len(), sigs.len()), (2, 2));
    Parts {
        ivt_offset: s.ivt_offset as usize,
        csf_offset: s.csf_offset as usize,
        cmds: s.csf.signed_bytes().to_vec(),
        records,
        srk_table: table.unwrap(),
        csfk: certs[0].clone(),
        imgk: certs[1].clone(),
        csf_sig: sigs[0].clone(),
        img_sig: sigs[1].clone(),
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

#[test]
fn signed_fit_parses_with_cst_command_bytes_and_records_where_the_commands_point() {
    let fit = fixture_fit();
    let pki = test_pki();
    for (engine, srk_index) in [(Engine::Any, 0u8), (Engine::Caam, 2), (Engine::Any, 3)] {
        let out = sign::sign_fit(&fit, LOAD, pki, &options(engine, srk_index)).unwrap();
        let p = parts(&out);
        let what = format!("{engine:?} SRK index {srk_index}");

        // FIT, zero padding, IVT.
        assert_eq!(&out[..FIT_TOTALSIZE], &fit[..], "{what}");
        assert_eq!(p.ivt_offset, 0x56000, "{what}");
        assert!(out[FIT_TOTALSIZE..p.ivt_offset].iter().all(|&b| b == 0));
        // An independent oracle for the signer's IVT: built here by hand, not with the
        // builder the signer uses.
        let mut ivt = vec![0xD1, 0x00, 0x20, 0x41];
        for w in [LOAD, 0, 0, 0, LOAD + 0x56000, LOAD + 0x56020, 0] {
            ivt.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(&out[p.ivt_offset..p.ivt_offset + 0x20], &ivt[..], "{what}");
        assert_eq!(p.csf_offset, 0x56020);

        // Exactly cst's command bytes; offsets come from the records checked below.
        let eng = engine.code();
        let caam = engine == Engine::Caam;
        let len: u16 = if caam { 0x50 } else { 0x48 };
        let c = &p.cmds;
        let mut expected = vec![0xD4, (len >> 8) as u8, len as u8, 0x45];
        expected.extend_from_slice(&[0xBE, 0x00, 0x0C, 0x00, 0x03, 0x17, srk_index, 0x00]);
        expected.extend_from_slice(&c[12..16]);
        expected.extend_from_slice(&[0xBE, 0x00, 0x0C, 0x02, 0x09, 0x00, 0x00, 0x01]);
        expected.extend_from_slice(&c[24..28]);
        expected.extend_from_slice(&[0xCA, 0x00, 0x0C, 0x00, 0x01, 0xC5, eng, 0x00]);
        expected.extend_from_slice(&c[36..40]);
        expected.extend_from_slice(&[0xBE, 0x00, 0x0C, 0x00, 0x09, 0x00, 0x00, 0x02]);
        expected.extend_from_slice(&c[48..52]);
        expected.extend_from_slice(&[0xCA, 0x00, 0x14, 0x00, 0x02, 0xC5, eng, 0x00]);
        expected.extend_from_slice(&c[60..64]);
        expected.extend_from_slice(&LOAD.to_be_bytes());
        expected.extend_from_slice(&0x56020u32.to_be_bytes());
        if caam {
            expected.extend_from_slice(&[0xB2, 0x00, 0x08, 0x1D, 0x00, 0x00, 0x00, 0x02]);
        }
        assert_eq!(c, &expected, "{what}");

        // Records in cst's order, 4-byte aligned, packed with under 4 bytes of zero padding.
        let offsets: Vec<usize> = [12, 24, 36, 48, 60]
            .iter()
            .map(|&i| be32(c, i) as usize)
            .collect();
        assert_eq!(
            p.records.iter().map(|r| r.0).collect::<Vec<_>>(),
            offsets,
            "{what}"
        );
        let csf = &out[p.csf_offset..];
        let mut end = c.len();
        for (off, rec) in &p.records {
            assert_eq!(off % 4, 0, "{what}: record at {off:#x}");
            assert!(*off >= end && off - end < 4, "{what}: gap before {off:#x}");
            assert!(csf[end..*off].iter().all(|&b| b == 0));
            end = off + rec.len();
        }
        assert_eq!(csf.len(), end.next_multiple_of(4), "{what}: CSF end");
        assert_eq!(p.srk_table, pki.srk_table);
        let signer = pki.signer(srk_index).unwrap();
        assert_eq!(p.csfk, signer.csfk.certificate);
        assert_eq!(p.imgk, signer.imgk.certificate);
        for (tag, (_, rec)) in [0xD7, 0xD7, 0xD8, 0xD7, 0xD8].iter().zip(&p.records) {
            assert_eq!(rec[0], *tag, "{what}");
            assert_eq!(usize::from(u16::from_be_bytes([rec[1], rec[2]])), rec.len());
        }
        assert_eq!(p.records[0].1[3], 0x40, "SRK table version");
        assert!(p.records[1..].iter().all(|(_, r)| r[3] == 0x45), "{what}");

        // The decoder agrees on every role.
        let s = SignedFit::parse(&out).unwrap();
        let roles: Vec<_> = s
            .csf
            .commands()
            .map(|c| match c.kind {
                CommandKind::InstallKey(k) => Some(k.role()),
                _ => None,
            })
            .collect();
        assert_eq!(
            roles[..4],
            [
                Some(KeyRole::Srk),
                Some(KeyRole::Csfk),
                None,
                Some(KeyRole::ImageKey)
            ]
        );
        assert_eq!(s.load_address(), u64::from(LOAD));
    }
}

#[test]
fn csf_version_and_signing_time_are_options() {
    let pki = test_pki();
    let opts = SignOptions {
        csf_version: 0x43,
        ..options(Engine::Caam, 1)
    };
    let out = sign::sign_fit(&fixture_fit(), LOAD, pki, &opts).unwrap();
    let p = parts(&out);
    assert_eq!(p.cmds[3], 0x43);
    assert!(p.records[1..].iter().all(|(_, r)| r[3] == 0x43));
    // Same inputs and signing time: byte-identical output (RFC 6979 ECDSA).
    assert_eq!(
        sign::sign_fit(&fixture_fit(), LOAD, pki, &opts).unwrap(),
        out
    );
    // Several signing times: the ECDSA signature length varies, the layout always holds.
    for t in 0..12 {
        let o = SignOptions {
            signing_time: Some(SIGNING_TIME + t),
            ..opts
        };
        parts(&sign::sign_fit(&fixture_fit(), LOAD, pki, &o).unwrap());
    }
    let bad = SignOptions {
        csf_version: 0x50,
        ..opts
    };
    assert!(matches!(
        sign::sign_fit(&fixture_fit(), LOAD, pki, &bad),
        Err(SignError::Input(_))
    ));
}

#[test]
fn generated_srk_table_is_srktools_layout_and_hash_matches_srktool() {
    let pki = test_pki();
    let t = &pki.srk_table;
    assert_eq!(t.len(), 0x134);
    assert_eq!(t[..4], [0xD7, 0x01, 0x34, 0x40]);
    for i in 0..4 {
        let r = &t[4 + 0x4C * i..4 + 0x4C * (i + 1)];
        assert_eq!(
            r[..12],
            [
                0xE1, 0x00, 0x4C, 0x27, 0, 0, 0, 0x80, 0x4B, 0x00, 0x01, 0x00
            ]
        );
        let cert = imx_hab::x509::Certificate::parse(&pki.srks[i].certificate).unwrap();
        let imx_hab::x509::PublicKey::Ec { point, .. } = cert.public_key else {
            panic!("SRK{} is not EC", i + 1)
        };
        assert_eq!(&r[12..], &point[1..]);
    }
    let hash = SrkTable::parse(t).unwrap().hash();
    assert_eq!(sign::srk_fuse_hash(t).unwrap(), hash);
    assert_eq!(pki.srk_hash().unwrap(), hash);

    if !have("srktool", "srktool comparison") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (1..=4)
        .map(|n| {
            let name = format!("SRK{n}.pem");
            write(
                dir.path(),
                &name,
                pem(&pki.srks[n - 1].certificate).as_bytes(),
            );
            name
        })
        .collect();
    let o = run(
        dir.path(),
        "srktool",
        &[
            "-h",
            "4",
            "-t",
            "t.bin",
            "-e",
            "f.bin",
            "-d",
            "sha256",
            "-f",
            "1",
            "-c",
            &names.join(","),
        ],
    );
    assert!(o.status.success(), "srktool: {o:?}");
    assert_eq!(std::fs::read(dir.path().join("t.bin")).unwrap(), *t);
    assert_eq!(std::fs::read(dir.path().join("f.bin")).unwrap(), hash);
}

#[test]
fn srk_tables_built_from_cst_fixture_certificates_equal_srktools() {
    for (set, kind) in [("ecc-p256", "prime256v1"), ("rsa2048", "2048_65537")] {
        let certs: Vec<Vec<u8>> = (1..=4)
            .map(|n| read_fixture(set, &format!("crts/SRK{n}_sha256_{kind}_v3_ca_crt.der")))
            .collect();
        let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
        let table = sign::srk_table_from_certificates(&refs).unwrap();
        assert_eq!(table, read_fixture(set, "srk_table.bin"), "{set}");
        assert_eq!(
            sign::srk_fuse_hash(&table).unwrap()[..],
            read_fixture(set, "srk_fuse.bin")[..],
            "{set}"
        );
    }
}

#[test]
fn csf_parser_accepts_the_signed_fit_and_extracts_our_records() {
    if !have("csf_parser", "csf_parser comparison") {
        return;
    }
    let pki = test_pki();
    for engine in [Engine::Any, Engine::Caam] {
        let out = sign::sign_fit(&fixture_fit(), LOAD, pki, &options(engine, 1)).unwrap();
        let p = parts(&out);
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "signed.bin", &out);
        let o = run(dir.path(), "csf_parser", &["-d", "-s", "signed.bin"]);
        assert!(o.status.success(), "csf_parser: {o:?}");
        let got = |n: &str| {
            std::fs::read(dir.path().join("output").join(n))
                .unwrap_or_else(|e| panic!("csf_parser wrote no output/{n}: {e}"))
        };
        assert_eq!(got("SRKTable.bin"), p.srk_table, "{engine:?}");
        assert_eq!(got("cert0.der"), p.csfk, "{engine:?}");
        assert_eq!(got("cert1.der"), p.imgk, "{engine:?}");
        assert_eq!(got("sig0.bin"), p.csf_sig, "{engine:?}");
        assert_eq!(got("sig1.bin"), p.img_sig, "{engine:?}");
    }
}

/// `openssl cms -verify` of a detached signature over `content` by `cert`.
fn cms_verifies(dir: &Path, sig: &[u8], content: &[u8], cert: &[u8]) -> bool {
    write(dir, "sig.der", sig);
    write(dir, "data.bin", content);
    write(dir, "cert.pem", pem(cert).as_bytes());
    let o = run(
        dir,
        "openssl",
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.der",
            "-content",
            "data.bin",
            "-certfile",
            "cert.pem",
            "-noverify",
            "-out",
            "/dev/null",
        ],
    );
    o.status.success()
}

/// `openssl verify` of `cert` against the single trusted certificate `issuer`.
fn chain_verifies(dir: &Path, cert: &[u8], issuer: &[u8]) -> bool {
    write(dir, "issuer.pem", pem(issuer).as_bytes());
    write(dir, "leaf.pem", pem(cert).as_bytes());
    let o = run(
        dir,
        "openssl",
        &[
            "verify",
            "-no_check_time",
            "-partial_chain",
            "-CAfile",
            "issuer.pem",
            "leaf.pem",
        ],
    );
    o.status.success()
}

/// Both CMS signatures of `out` verify over what HAB signs, and fail on one changed byte.
fn assert_openssl_accepts(dir: &Path, out: &[u8], what: &str) {
    let p = parts(out);
    let img_data = &out[..p.ivt_offset + 0x20];
    assert!(
        cms_verifies(dir, &p.csf_sig, &p.cmds, &p.csfk),
        "{what}: CSF signature"
    );
    assert!(
        cms_verifies(dir, &p.img_sig, img_data, &p.imgk),
        "{what}: image signature"
    );
    let mut cmds = p.cmds.clone();
    cmds[7] ^= 1;
    assert!(
        !cms_verifies(dir, &p.csf_sig, &cmds, &p.csfk),
        "{what}: flipped CSF byte"
    );
    let mut data = img_data.to_vec();
    data[0x12445] ^= 1;
    assert!(
        !cms_verifies(dir, &p.img_sig, &data, &p.imgk),
        "{what}: flipped image byte"
    );
}

#[test]
fn openssl_verifies_both_cms_signatures_and_rejects_a_changed_byte() {
    if !have("openssl", "openssl cms -verify") {
        return;
    }
    let pki = test_pki();
    let dir = tempfile::tempdir().unwrap();
    for (engine, idx) in [(Engine::Any, 0), (Engine::Caam, 3)] {
        let out = sign::sign_fit(&fixture_fit(), LOAD, pki, &options(engine, idx)).unwrap();
        assert_openssl_accepts(dir.path(), &out, &format!("{engine:?} SRK index {idx}"));
    }
}

#[test]
fn openssl_verifies_the_generated_certificate_chain() {
    if !have("openssl", "openssl verify") {
        return;
    }
    let pki = test_pki();
    let dir = tempfile::tempdir().unwrap();
    let ca = &pki.ca.as_ref().unwrap().certificate;
    assert!(chain_verifies(dir.path(), ca, ca), "CA1 self-signed");
    for (n, srk) in pki.srks.iter().enumerate() {
        assert!(
            chain_verifies(dir.path(), &srk.certificate, ca),
            "SRK{}",
            n + 1
        );
        let s = pki.signer(n as u8).unwrap();
        for ck in [&s.csfk, &s.imgk] {
            assert!(
                chain_verifies(dir.path(), &ck.certificate, &srk.certificate),
                "{}",
                ck.name
            );
        }
        let other = &pki.srks[(n + 1) % 4].certificate;
        assert!(
            !chain_verifies(dir.path(), &s.csfk.certificate, other),
            "{} vs other SRK",
            s.csfk.name
        );
    }
    // Subject, serial and CA flag as hab4_pki_tree.sh makes them.
    let s = pki.signer(1).unwrap();
    let c = imx_hab::x509::Certificate::parse(&s.csfk.certificate).unwrap();
    assert_eq!(
        c.subject.common_name(),
        Some("CSF2_1_sha256_prime256v1_v3_usr")
    );
    assert_eq!(c.issuer.common_name(), Some("SRK2_sha256_prime256v1_v3_ca"));
    assert_eq!(c.serial, 0x1234_567Cu32.to_be_bytes());
    assert!(!c.is_ca);
    let c = imx_hab::x509::Certificate::parse(&s.imgk.certificate).unwrap();
    assert_eq!(
        c.subject.common_name(),
        Some("IMG2_1_sha256_prime256v1_v3_usr")
    );
    assert_eq!(c.serial, 0x1234_567Du32.to_be_bytes());
    let c = imx_hab::x509::Certificate::parse(&pki.srks[1].certificate).unwrap();
    assert_eq!(
        c.subject.common_name(),
        Some("SRK2_sha256_prime256v1_v3_ca")
    );
    assert_eq!(c.issuer.common_name(), Some("CA1_sha256_prime256v1_v3_ca"));
    assert_eq!(c.serial, 0x1234_567Bu32.to_be_bytes());
    assert!(c.is_ca);
}

#[test]
fn same_seed_gives_the_same_pki_and_another_seed_does_not() {
    let opts = TestPkiOptions::default();
    let a = Pki::generate_p256(b"imx-hab signer tests", &opts).unwrap();
    let b = test_pki();
    let all = |p: &Pki| -> Vec<Vec<u8>> {
        let mut v = vec![
            p.ca.as_ref().unwrap().certificate.clone(),
            p.srk_table.clone(),
        ];
        v.extend(p.srks.iter().map(|s| s.certificate.clone()));
        for s in &p.signers {
            v.push(s.csfk.certificate.clone());
            v.push(s.imgk.certificate.clone());
            v.push(s.csfk.private_key().unwrap().to_pkcs8_der().unwrap());
        }
        v
    };
    assert_eq!(all(&a), all(b));
    let c = Pki::generate_p256(b"another seed", &opts).unwrap();
    assert_ne!(c.srk_hash().unwrap(), b.srk_hash().unwrap());
    let k1 = PrivateKey::derive_p256(b"seed", "SRK1_sha256_prime256v1_v3_ca");
    let k2 = PrivateKey::derive_p256(b"seed", "SRK2_sha256_prime256v1_v3_ca");
    assert_ne!(k1.public_key_der().unwrap(), k2.public_key_der().unwrap());
}

#[test]
fn pki_written_to_a_directory_loads_back_identical() {
    let pki = test_pki();
    let dir = tempfile::tempdir().unwrap();
    pki.write_dir(dir.path()).unwrap();
    for f in [
        "srk_table.bin",
        "srk_fuse.bin",
        "crts/SRK_1_2_3_4_table.bin",
        "crts/SRK_1_2_3_4_fuse.bin",
        "crts/CA1_sha256_prime256v1_v3_ca_crt.pem",
        "crts/SRK3_sha256_prime256v1_v3_ca_crt.der",
        "crts/CSF3_1_sha256_prime256v1_v3_usr_crt.pem",
        "keys/IMG4_1_sha256_prime256v1_v3_usr_key.pem",
        "keys/SRK1_sha256_prime256v1_v3_ca_key.der",
        "TEST-KEYS-NOT-FOR-PRODUCTION.txt",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    assert_eq!(
        std::fs::read(dir.path().join("srk_fuse.bin")).unwrap(),
        pki.srk_hash().unwrap()
    );
    let key = std::fs::read_to_string(
        dir.path()
            .join("keys/CSF1_1_sha256_prime256v1_v3_usr_key.pem"),
    )
    .unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));

    let back = Pki::load_dir(dir.path()).unwrap();
    assert_eq!(back.srk_table, pki.srk_table);
    assert_eq!(
        back.ca.as_ref().unwrap().certificate,
        pki.ca.as_ref().unwrap().certificate
    );
    assert_eq!(back.srks.len(), 4);
    assert_eq!(back.signers.len(), 4);
    for (x, y) in back.signers.iter().zip(&pki.signers) {
        assert_eq!(x.srk_index, y.srk_index);
        assert_eq!(x.csfk.name, y.csfk.name);
        assert_eq!(x.csfk.certificate, y.csfk.certificate);
        assert_eq!(x.imgk.certificate, y.imgk.certificate);
        assert_eq!(
            x.imgk.private_key().unwrap().to_pkcs8_der().unwrap(),
            y.imgk.private_key().unwrap().to_pkcs8_der().unwrap()
        );
    }
    let opts = options(Engine::Caam, 2);
    assert_eq!(
        sign::sign_fit(&fixture_fit(), LOAD, &back, &opts).unwrap(),
        sign::sign_fit(&fixture_fit(), LOAD, pki, &opts).unwrap()
    );
    if have("openssl", "openssl reads the written keys") {
        let o = run(
            dir.path(),
            "openssl",
            &[
                "pkey",
                "-in",
                "keys/CSF1_1_sha256_prime256v1_v3_usr_key.pem",
                "-noout",
            ],
        );
        assert!(o.status.success(), "{o:?}");
    }
}

#[test]
fn signing_refuses_keys_not_issued_by_the_chosen_srk() {
    let pki = test_pki();
    let mut wrong = pki.clone();
    // SRK index 1 with SRK1's CSF/image keys: HAB would reject the certificates.
    wrong.signers[1] = SignerKeys {
        srk_index: 1,
        ..pki.signers[0].clone()
    };
    let e = sign::sign_fit(&fixture_fit(), LOAD, &wrong, &options(Engine::Any, 1)).unwrap_err();
    assert!(
        matches!(e, SignError::Input(ref s) if s.contains("not signed")),
        "{e}"
    );
    let e = sign::sign_fit(&fixture_fit(), LOAD, pki, &options(Engine::Any, 4)).unwrap_err();
    assert!(matches!(e, SignError::Input(_)), "{e}");
    let mut keyless = pki.clone();
    keyless.signers[0].imgk.key = None;
    let e = sign::sign_fit(&fixture_fit(), LOAD, &keyless, &options(Engine::Any, 0)).unwrap_err();
    assert!(matches!(e, SignError::MissingKey(_)), "{e}");
}

/// A made-up imx8mimage-style SPL: IVT at 0 (self = entry - 0x40), boot data, code, a zeroed
/// CSF slot at `csf_at`, then unrelated data after the slot.
fn fake_spl(csf_at: u32) -> Vec<u8> {
    let entry = 0x0092_0000u32;
    let base = entry - 0x40;
    let mut img = vec![0u8; csf_at as usize + 0x2000 + 0x100];
    let csf = if csf_at == 0 { 0 } else { base + csf_at };
    img[..0x20].copy_from_slice(&test_images::ivt(entry, base + 0x20, base, csf));
    let size = img.len() as u32;
    img[0x20..0x2C].copy_from_slice(&test_images::boot_data(base, size, 0));
    for (i, b) in img[0x40..csf_at.max(0x40) as usize].iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    let n = img.len();
    img[n - 0x100..].fill(0xA5);
    img
}

#[test]
fn signed_spl_gets_its_csf_where_the_ivt_points_and_covers_ivt_to_csf() {
    let pki = test_pki();
    let csf_at = 0x1800u32;
    let spl = fake_spl(csf_at);
    let out = sign::sign_spl(&spl, pki, &options(Engine::Caam, 0)).unwrap();
    assert_eq!(out.len(), spl.len());
    assert_eq!(&out[..csf_at as usize], &spl[..csf_at as usize]);
    assert_eq!(&out[out.len() - 0x100..], &spl[spl.len() - 0x100..]);
    let csf = imx_hab::csf::Csf::parse(&out[csf_at as usize..]).unwrap();
    let blocks: Vec<_> = csf
        .commands()
        .filter_map(|c| match c.kind {
            CommandKind::Authenticate(a) if !a.is_csf() => Some(a.blocks().collect::<Vec<_>>()),
            _ => None,
        })
        .collect();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].len(), 1);
    assert_eq!(
        (blocks[0][0].start, blocks[0][0].len),
        (0x0092_0000 - 0x40, csf_at)
    );

    // Re-signing replaces the CSF; build_csf gives the same bytes for the same block.
    let again = sign::sign_spl(&out, pki, &options(Engine::Caam, 0)).unwrap();
    assert_eq!(again, out);
    let direct = sign::build_csf(
        &[Block {
            start: 0x0092_0000 - 0x40,
            data: &spl[..csf_at as usize],
        }],
        pki,
        &options(Engine::Caam, 0),
    )
    .unwrap();
    assert_eq!(
        &out[csf_at as usize..csf_at as usize + direct.len()],
        &direct[..]
    );

    if have("openssl", "openssl cms -verify of the SPL signature") {
        let dir = tempfile::tempdir().unwrap();
        let mut sigs = Vec::new();
        let mut certs = Vec::new();
        for c in csf.commands() {
            match csf.referenced(&c) {
                Some(Referenced::Signature(s)) => sigs.push(s.record.body().to_vec()),
                Some(Referenced::Certificate(x)) => certs.push(x.record.body().to_vec()),
                _ => {}
            }
        }
        assert!(cms_verifies(
            dir.path(),
            &sigs[0],
            csf.signed_bytes(),
            &certs[0]
        ));
        assert!(cms_verifies(
            dir.path(),
            &sigs[1],
            &spl[..csf_at as usize],
            &certs[1]
        ));
    }

    let e = sign::sign_spl(&fake_spl(0), pki, &options(Engine::Any, 0)).unwrap_err();
    assert!(
        matches!(e, SignError::Input(ref s) if s.contains("csf = 0")),
        "{e}"
    );
}

/// The fixture's cst-made RSA-2048 PKI, with CSF3_1 / IMG3_1 keys decrypted by openssl, laid
/// out in `cst`'s directory structure.
fn rsa_fixture_pki(dir: &Path) -> Option<Pki> {
    let src = fixture_dir("rsa2048");
    std::fs::create_dir_all(dir.join("crts")).unwrap();
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    for e in std::fs::read_dir(src.join("crts")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join("crts").join(p.file_name().unwrap())).unwrap();
    }
    std::fs::copy(src.join("srk_table.bin"), dir.join("srk_table.bin")).unwrap();
    for k in ["CSF3_1", "IMG3_1"] {
        let name = format!("{k}_sha256_2048_65537_v3_usr_key.pem");
        let encrypted = src.join("keys").join(&name);
        let out = dir.join("keys").join(&name);
        let o = Command::new("openssl")
            .args(["pkcs8", "-in"])
            .arg(&encrypted)
            .args(["-passin", "pass:test", "-nocrypt", "-topk8", "-out"])
            .arg(&out)
            .output()
            .ok()?;
        assert!(o.status.success(), "openssl pkcs8: {o:?}");
    }
    Some(Pki::load_dir(dir).unwrap())
}

#[test]
fn rsa_fixture_pki_signs_a_fit_that_matches_the_fixture_fuses_and_verifies() {
    if !have(
        "openssl",
        "RSA signing with the fixture PKI (keys need openssl to decrypt)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = rsa_fixture_pki(dir.path()).unwrap();
    assert_eq!(pki.srks.len(), 4);
    let s = pki.signer(2).unwrap();
    assert_eq!(s.csfk.name, "CSF3_1_sha256_2048_65537_v3_usr");
    assert!(s.csfk.private_key().unwrap().describe() == "RSA-2048");
    assert!(
        pki.signer(0).unwrap().csfk.key.is_none(),
        "no key for CSF1_1"
    );

    let opts = SignOptions {
        csf_version: 0x43,
        ..options(Engine::Caam, 2)
    };
    let out = sign::sign_fit(&fixture_fit(), LOAD, &pki, &opts).unwrap();
    let p = parts(&out);
    let fuses = read_fixture("rsa2048", "srk_fuse.bin");
    assert_eq!(SrkTable::parse(&p.srk_table).unwrap().hash()[..], fuses[..]);
    assert!(
        SrkTable::parse(&p.srk_table)
            .unwrap()
            .matches_fuses(&fuses.clone().try_into().unwrap())
    );
    // Same commands, records and sizes as cst's rsa2048 CSF: only the signing time differs.
    let cst = read_fixture("rsa2048", "signed.bin")[p.csf_offset..].to_vec();
    assert_eq!(p.cmds, cst[..0x50]);
    assert_eq!(out.len() - p.csf_offset, cst.len());
    assert_eq!(
        out[..p.csf_offset],
        read_fixture("rsa2048", "signed.bin")[..p.csf_offset]
    );
    assert_eq!(p.csf_sig.len(), 0x201 - 4);
    assert_openssl_accepts(dir.path(), &out, "rsa2048");

    // Loading the key from PKCS#1 works too.
    let pkcs1 = dir.path().join("csf3_pkcs1.pem");
    let o = Command::new("openssl")
        .current_dir(dir.path())
        .args([
            "rsa",
            "-in",
            "keys/CSF3_1_sha256_2048_65537_v3_usr_key.pem",
            "-traditional",
            "-out",
        ])
        .arg(&pkcs1)
        .output()
        .unwrap();
    if o.status.success() {
        let text = std::fs::read_to_string(&pkcs1).unwrap();
        assert!(text.contains("BEGIN RSA PRIVATE KEY"));
        let k = PrivateKey::from_pem(&text).unwrap();
        assert_eq!(
            k.public_key_der().unwrap(),
            s.csfk.private_key().unwrap().public_key_der().unwrap()
        );
    }
    // An encrypted key is reported as such.
    let e = PrivateKey::from_file(
        &fixture_dir("rsa2048").join("keys/CSF3_1_sha256_2048_65537_v3_usr_key.pem"),
    )
    .unwrap_err();
    assert!(matches!(e, SignError::EncryptedKey(_)), "{e}");
}
