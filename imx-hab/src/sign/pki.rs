//! A HAB4 test PKI: generated from a seed (P-256, like `hab4_pki_tree.sh -use-ecc y -kl p256
//! -num-srk 4 -srk-ca y`), or loaded from `cst`-style files (any key type the signer supports).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use der::pem::{self, LineEnding};
use sha2::{Digest, Sha256};

use super::cert::{self, Subject};
use super::keys::{PrivateKey, pem_text};
use super::srk::{srk_fuse_hash, srk_table_from_certificates};
use super::{SignError, SignResult};
use crate::srk::MAX_SRKS;

/// First serial number `hab4_pki_tree.sh` gives out: SRKn = 0x12345678 + 3(n-1),
/// CSFn_1 = SRKn + 1, IMGn_1 = SRKn + 2.
const FIRST_SERIAL: u32 = 0x1234_5678;

/// Key-type part of the file and subject names `hab4_pki_tree.sh` uses for P-256 trees.
const P256_NAME: &str = "sha256_prime256v1";

/// Name of the notice [`Pki::write_dir`] leaves next to the keys.
const NOTICE_FILE: &str = "TEST-KEYS-NOT-FOR-PRODUCTION.txt";

/// Validity of generated certificates. HAB never checks certificate dates; these only make the
/// certificates look like `hab4_pki_tree.sh` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestPkiOptions {
    /// notBefore, seconds since the Unix epoch (default 2026-01-01T00:00:00Z, fixed so that
    /// the same seed always gives the same certificates).
    pub not_before: u64,
    /// Days from notBefore to notAfter (default 3650, `-duration 10`).
    pub validity_days: u32,
}

impl Default for TestPkiOptions {
    fn default() -> Self {
        TestPkiOptions {
            not_before: 1_767_225_600,
            validity_days: 3650,
        }
    }
}

/// A certificate and, when known, its private key.
#[derive(Debug, Clone)]
pub struct CertKey {
    /// File-name stem in `cst` style without `_crt` / `_key`, e.g.
    /// `CSF1_1_sha256_prime256v1_v3_usr`; for generated PKIs also the subject CN.
    pub name: String,
    /// The certificate, DER.
    pub certificate: Vec<u8>,
    /// The private key (absent for certificates loaded without one).
    pub key: Option<PrivateKey>,
}

impl CertKey {
    /// Reads a certificate (PEM or DER) and optionally its unencrypted private key (see
    /// [`PrivateKey::from_file`]). The name is the certificate's file stem without `_crt`.
    pub fn from_files(certificate: &Path, key: Option<&Path>) -> SignResult<Self> {
        let stem = certificate
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("certificate");
        let name = stem.strip_suffix("_crt").unwrap_or(stem).to_string();
        let der = read_certificate(certificate)?;
        let key = key.map(PrivateKey::from_file).transpose()?;
        Ok(CertKey {
            name,
            certificate: der,
            key,
        })
    }

    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`).
    pub fn certificate_pem(&self) -> SignResult<String> {
        pem::encode_string("CERTIFICATE", LineEnding::LF, &self.certificate)
            .map_err(|e| SignError::Input(format!("{}: PEM encoding: {e}", self.name)))
    }

    /// The private key, or [`SignError::MissingKey`].
    pub fn private_key(&self) -> SignResult<&PrivateKey> {
        self.key
            .as_ref()
            .ok_or_else(|| SignError::MissingKey(self.name.clone()))
    }
}

/// The CSF key and the image key issued by one SRK.
#[derive(Debug, Clone)]
pub struct SignerKeys {
    /// Index of the issuing SRK in the SRK table (0-based: SRK1 is 0).
    pub srk_index: u8,
    /// The CSF key (`CSFn_1`): signs the CSF commands.
    pub csfk: CertKey,
    /// The image key (`IMGn_1`): signs the image blocks.
    pub imgk: CertKey,
}

/// A HAB4 PKI as the signer needs it. **Test keys only.**
#[derive(Debug, Clone)]
pub struct Pki {
    /// The root CA (`CA1`), if known.
    pub ca: Option<CertKey>,
    /// The SRK certificates (and keys) in table order, if known; the table alone suffices to
    /// sign.
    pub srks: Vec<CertKey>,
    /// The SRK table, byte-identical to `srktool`'s output.
    pub srk_table: Vec<u8>,
    /// CSF and image keys, one pair per SRK that has them.
    pub signers: Vec<SignerKeys>,
}

impl Pki {
    /// Generates a P-256 test PKI from `seed`: CA1 (self-signed, CA:TRUE), SRK1-4 (CA:TRUE,
    /// issued by CA1) and, for every SRK n, CSFn_1 and IMGn_1 (CA:FALSE, issued by SRKn), with
    /// `hab4_pki_tree.sh`'s subject names and serial numbers (CA1's serial is derived from the
    /// seed), ecdsa-with-SHA256 signatures, and the SRK table of SRK1-4.
    ///
    /// **Deterministic: the seed is the private keys.** Same seed and options, same PKI, byte
    /// for byte. Never fuse its SRK hash into a device that matters.
    pub fn generate_p256(seed: &[u8], options: &TestPkiOptions) -> SignResult<Self> {
        let not_after = options.not_before + u64::from(options.validity_days) * 86_400;
        let make = |name: String,
                    serial: &[u8],
                    is_ca: bool,
                    issuer: Option<&CertKey>|
         -> SignResult<CertKey> {
            let key = PrivateKey::derive_p256(seed, &name);
            let public_key = key.public_key_der()?;
            let subject = Subject {
                cn: &name,
                serial,
                is_ca,
                not_before: options.not_before,
                not_after,
                public_key: &public_key,
            };
            let issuer = match issuer {
                Some(i) => Some((i.certificate.as_slice(), i.private_key()?)),
                None => None,
            };
            let certificate = cert::issue(&subject, issuer, &key)?;
            Ok(CertKey {
                name,
                certificate,
                key: Some(key),
            })
        };
        let mut ca_serial: [u8; 20] = Sha256::new()
            .chain_update(b"imx-hab test PKI v1 CA1 serial\0")
            .chain_update(seed)
            .finalize()[..20]
            .try_into()
            .expect("20 bytes");
        ca_serial[0] = (ca_serial[0] & 0x7F) | 0x40;
        let ca = make(format!("CA1_{P256_NAME}_v3_ca"), &ca_serial, true, None)?;
        let mut srks = Vec::new();
        let mut signers = Vec::new();
        for n in 1..=MAX_SRKS as u32 {
            let base = FIRST_SERIAL + 3 * (n - 1);
            let srk = make(
                format!("SRK{n}_{P256_NAME}_v3_ca"),
                &base.to_be_bytes(),
                true,
                Some(&ca),
            )?;
            let csfk = make(
                format!("CSF{n}_1_{P256_NAME}_v3_usr"),
                &(base + 1).to_be_bytes(),
                false,
                Some(&srk),
            )?;
            let imgk = make(
                format!("IMG{n}_1_{P256_NAME}_v3_usr"),
                &(base + 2).to_be_bytes(),
                false,
                Some(&srk),
            )?;
            srks.push(srk);
            signers.push(SignerKeys {
                srk_index: (n - 1) as u8,
                csfk,
                imgk,
            });
        }
        let certs: Vec<&[u8]> = srks.iter().map(|s| s.certificate.as_slice()).collect();
        let srk_table = srk_table_from_certificates(&certs)?;
        Ok(Pki {
            ca: Some(ca),
            srks,
            srk_table,
            signers,
        })
    }

    /// A PKI from an SRK table (e.g. `srktool`'s `SRK_1_2_3_4_table.bin`) and the CSF/image key
    /// pairs to sign with. The table must parse.
    pub fn from_parts(srk_table: Vec<u8>, signers: Vec<SignerKeys>) -> SignResult<Self> {
        srk_fuse_hash(&srk_table)?;
        Ok(Pki {
            ca: None,
            srks: Vec::new(),
            srk_table,
            signers,
        })
    }

    /// The 32-byte SRK hash to burn into the fuses (`srktool -f 1 -e` output).
    pub fn srk_hash(&self) -> SignResult<[u8; 32]> {
        srk_fuse_hash(&self.srk_table)
    }

    /// The CSF and image keys issued by SRK `srk_index`.
    pub fn signer(&self, srk_index: u8) -> SignResult<&SignerKeys> {
        self.signers
            .iter()
            .find(|s| s.srk_index == srk_index)
            .ok_or_else(|| {
                SignError::MissingKey(format!(
                    "SRK index {srk_index} (CSF{n}_1 / IMG{n}_1 certificates and keys)",
                    n = u32::from(srk_index) + 1
                ))
            })
    }

    /// Writes the PKI in `cst`'s layout, creating `dir` if needed:
    /// `crts/<name>_crt.pem` and `.der` for every certificate, `keys/<name>_key.pem` and `.der`
    /// (**unencrypted** PKCS#8) for every known key, `crts/SRK_1_2_3_4_table.bin` and
    /// `crts/SRK_1_2_3_4_fuse.bin` (srktool's names, for the number of SRKs), the same two as
    /// `srk_table.bin` and `srk_fuse.bin` in `dir`, and a notice that these are test keys.
    pub fn write_dir(&self, dir: &Path) -> SignResult<()> {
        let crts = dir.join("crts");
        let keys = dir.join("keys");
        for d in [&crts, &keys] {
            std::fs::create_dir_all(d).map_err(|e| SignError::Io(d.clone(), e))?;
        }
        for ck in self.all() {
            write(&crts.join(format!("{}_crt.der", ck.name)), &ck.certificate)?;
            write(
                &crts.join(format!("{}_crt.pem", ck.name)),
                ck.certificate_pem()?.as_bytes(),
            )?;
            if let Some(k) = &ck.key {
                write(
                    &keys.join(format!("{}_key.der", ck.name)),
                    &k.to_pkcs8_der()?,
                )?;
                write(
                    &keys.join(format!("{}_key.pem", ck.name)),
                    k.to_pkcs8_pem()?.as_bytes(),
                )?;
            }
        }
        let hash = self.srk_hash()?;
        let n = crate::srk::SrkTable::parse(&self.srk_table)?.len();
        let set = (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join("_");
        write(&crts.join(format!("SRK_{set}_table.bin")), &self.srk_table)?;
        write(&crts.join(format!("SRK_{set}_fuse.bin")), &hash)?;
        write(&dir.join("srk_table.bin"), &self.srk_table)?;
        write(&dir.join("srk_fuse.bin"), &hash)?;
        write(
            &dir.join(NOTICE_FILE),
            b"These keys are TEST keys made by imx-hab's test signer, stored unencrypted\n\
              and, when generated, derived from a seed. Never fuse this SRK hash into a\n\
              device that matters and never sign anything a real device should trust.\n",
        )
    }

    /// Reads a PKI in `cst`'s layout: every `crts/*_crt.pem` (or `.der` when there is no PEM)
    /// named `CA<n>_…`, `SRK<n>_…`, `CSF<n>_<m>_…` or `IMG<n>_<m>_…`, the matching
    /// `keys/*_key.pem` / `.der` where present (unencrypted; an encrypted CSF or image key is an
    /// error, an encrypted CA or SRK key is skipped), and the SRK table from `srk_table.bin`,
    /// else `crts/SRK_1_2_3_4_table.bin`, else built from the SRK certificates. CSFn and IMGn
    /// belong to SRK index n-1. When all SRK certificates of the table are present, the table
    /// must match them.
    pub fn load_dir(dir: &Path) -> SignResult<Self> {
        let crts = dir.join("crts");
        let keys = dir.join("keys");
        let entries = std::fs::read_dir(&crts).map_err(|e| SignError::Io(crts.clone(), e))?;
        let mut stems: BTreeMap<String, PathBuf> = BTreeMap::new();
        for entry in entries {
            let path = entry.map_err(|e| SignError::Io(crts.clone(), e))?.path();
            let Some(file) = path.file_name().and_then(|s| s.to_str()) else {
                continue;
            };
            let stem = file
                .strip_suffix("_crt.pem")
                .or_else(|| file.strip_suffix("_crt.der"));
            if let Some(stem) = stem {
                let pem = file.ends_with(".pem");
                if pem || !stems.contains_key(stem) {
                    stems.insert(stem.to_string(), path.clone());
                }
            }
        }
        let mut ca = None;
        let mut srks: BTreeMap<u32, CertKey> = BTreeMap::new();
        let mut csfks: BTreeMap<u32, CertKey> = BTreeMap::new();
        let mut imgks: BTreeMap<u32, CertKey> = BTreeMap::new();
        for (stem, path) in &stems {
            let Some((role, n)) = classify(stem) else {
                continue;
            };
            let key_path = ["pem", "der"]
                .iter()
                .map(|ext| keys.join(format!("{stem}_key.{ext}")))
                .find(|p| p.is_file());
            let optional_key = matches!(role, Role::Ca | Role::Srk);
            let ck = match CertKey::from_files(path, key_path.as_deref()) {
                Err(SignError::EncryptedKey(_)) if optional_key => CertKey::from_files(path, None)?,
                other => other?,
            };
            let slot = match role {
                Role::Ca => {
                    ca.get_or_insert(ck);
                    continue;
                }
                Role::Srk => &mut srks,
                Role::Csf => &mut csfks,
                Role::Img => &mut imgks,
            };
            slot.entry(n).or_insert(ck);
        }
        let srk_certs: Vec<&[u8]> = srks.values().map(|s| s.certificate.as_slice()).collect();
        let from_certs = (!srk_certs.is_empty())
            .then(|| srk_table_from_certificates(&srk_certs))
            .transpose()?;
        let table = [
            dir.join("srk_table.bin"),
            crts.join("SRK_1_2_3_4_table.bin"),
        ]
        .into_iter()
        .find(|p| p.is_file());
        let srk_table = match (table, from_certs) {
            (Some(p), built) => {
                let t = std::fs::read(&p).map_err(|e| SignError::Io(p.clone(), e))?;
                let n = crate::srk::SrkTable::parse(&t)?.len();
                if let Some(b) =
                    built.filter(|_| srks.len() == n && srks.keys().copied().eq(1..=n as u32))
                    && b != t
                {
                    return Err(SignError::Input(format!(
                        "{}: does not match the SRK certificates in {}",
                        p.display(),
                        crts.display()
                    )));
                }
                t
            }
            (None, Some(b)) => b,
            (None, None) => {
                return Err(SignError::Input(format!(
                    "{}: no srk_table.bin and no SRK certificates",
                    dir.display()
                )));
            }
        };
        let mut signers = Vec::new();
        for (n, csfk) in csfks {
            if let (Some(imgk), Ok(idx)) = (imgks.remove(&n), u8::try_from(n - 1)) {
                signers.push(SignerKeys {
                    srk_index: idx,
                    csfk,
                    imgk,
                });
            }
        }
        srk_fuse_hash(&srk_table)?;
        Ok(Pki {
            ca,
            srks: srks.into_values().collect(),
            srk_table,
            signers,
        })
    }

    /// Every certificate of the PKI: CA, SRKs, then CSF and image keys.
    fn all(&self) -> impl Iterator<Item = &CertKey> {
        self.ca
            .iter()
            .chain(&self.srks)
            .chain(self.signers.iter().flat_map(|s| [&s.csfk, &s.imgk]))
    }
}

#[derive(Clone, Copy)]
enum Role {
    Ca,
    Srk,
    Csf,
    Img,
}

/// `CA1_…` → (Ca, 1), `SRK3_…` → (Srk, 3), `CSF3_1_…` → (Csf, 3), `IMG2_1_…` → (Img, 2).
fn classify(stem: &str) -> Option<(Role, u32)> {
    let (role, rest) = [
        ("CA", Role::Ca),
        ("SRK", Role::Srk),
        ("CSF", Role::Csf),
        ("IMG", Role::Img),
    ]
    .into_iter()
    .find_map(|(p, r)| stem.strip_prefix(p).map(|rest| (r, rest)))?;
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let n: u32 = rest[..digits].parse().ok()?;
    (n >= 1 && rest[digits..].starts_with('_')).then_some((role, n))
}

/// Reads a certificate file, PEM or DER, and returns the DER.
fn read_certificate(path: &Path) -> SignResult<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| SignError::Io(path.to_path_buf(), e))?;
    let der = match pem_text(&bytes) {
        Some(text) => {
            let (label, der) = pem::decode_vec(text.trim().as_bytes())
                .map_err(|e| SignError::Input(format!("{}: PEM: {e}", path.display())))?;
            if label != "CERTIFICATE" {
                return Err(SignError::Input(format!(
                    "{}: PEM label {label:?} is not CERTIFICATE",
                    path.display()
                )));
            }
            der
        }
        None => bytes,
    };
    cert::check_parses(&der, &path.display().to_string())?;
    Ok(der)
}

fn write(path: &Path, bytes: &[u8]) -> SignResult<()> {
    std::fs::write(path, bytes).map_err(|e| SignError::Io(path.to_path_buf(), e))
}
