//! CSF assembly with `cst`'s command sequence and record order, and the two image layouts it
//! signs: a U-Boot FIT (docs/hab4-format.md §2) and the SPL part of a flash.bin.

use der::Encode;
use p256::ecdsa::signature::Verifier;
use rsa::pkcs1::DecodeRsaPublicKey;
use sha2::Sha256;

use super::cms::sign_detached;
use super::keys::PrivateKey;
use super::pki::{CertKey, Pki};
use super::spl::ivt;
use super::srk::key_record;
use super::{Engine, FastAuth, SignError, SignOptions, SignResult};
use crate::codes::{
    ALG_ANY, ALG_SHA256, CMD_AUT_DAT, CMD_INS_KEY, CMD_UNLK, ENG_CAAM, INS_KEY_CSF, PCL_CMS,
    PCL_SRK, PCL_X509, TAG_CRT, TAG_CSF, TAG_SIG,
};
use crate::csf::Csf;
use crate::image::{SignedFit, ivt_offset_for};
use crate::ivt::{IVT_SIZE, Ivt};
use crate::srk::{SrkKey, SrkKeyData, SrkTable};
use crate::x509::{Certificate, Curve, SignatureAlgorithm};

/// Key slot of the SRK.
const SLOT_SRK: u8 = 0;
/// Key slot of the CSF key.
const SLOT_CSFK: u8 = 1;
/// Key slot `cst` installs the image key into (`Target index = 2`).
const SLOT_IMG: u8 = 2;
/// `cst`'s automatic Unlock for `Engine = CAAM`: engine CAAM, features 0x2 (RNG).
const UNLOCK_CAAM_RNG: [u8; 8] = [CMD_UNLK, 0x00, 0x08, ENG_CAAM, 0x00, 0x00, 0x00, 0x02];
/// Attempts to find CSF-signature record offsets that hold after signing (ECDSA signature
/// lengths vary by a byte or two, and the offsets behind the signature are signed). Each
/// attempt succeeds with probability at least 1/2.
const LAYOUT_ATTEMPTS: u32 = 64;

/// One block of an Authenticate Data command: where the bytes sit in memory, and the bytes.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// Absolute address of the first byte when HAB authenticates it.
    pub start: u32,
    /// The bytes.
    pub data: &'a [u8],
}

/// Builds a complete CSF that authenticates `blocks` (signed in order, as one image
/// signature) with the CSF and image keys issued by SRK `options.srk_index`:
///
/// ```text
/// D4 len ver
/// be 00 0c 00  03 17 idx 00  <SRK table>        Install SRK
/// be 00 0c 02  09 00 00 01   <CSFK certificate> Install CSFK
/// ca 00 0c 00  01 c5 eng 00  <CSF signature>    Authenticate CSF
/// be 00 0c 00  09 00 00 02   <image key cert>   Install Key (slot 0 -> 2)
/// ca len 00    02 c5 eng 00  <image signature> {start, length}...   Authenticate Data
/// [b2 00 08 1d 00 00 00 02]                     Unlock CAAM RNG (Engine::Caam)
/// SRK table, D7 CSFK cert, D8 CSF signature, D7 image cert, D8 image signature (4-aligned)
/// ```
///
/// With [`SignOptions::fast_auth`] the SRK signs both and no key is installed besides it (see
/// the module documentation of [`crate::sign`], "Fast authentication").
///
/// The CSF signature covers the header and commands; the image signature covers the blocks.
/// Before signing, the CSF and image key certificates are checked to be signed by that SRK
/// (fast authentication: the SRK private key is checked to match the table's key).
pub fn build_csf(blocks: &[Block<'_>], pki: &Pki, options: &SignOptions) -> SignResult<Vec<u8>> {
    if !(0x40..=0x4F).contains(&options.csf_version) {
        return Err(SignError::Input(format!(
            "CSF version {:#04x} is not a HAB 4.x version (0x40..=0x4F)",
            options.csf_version
        )));
    }
    if blocks.is_empty() {
        return Err(SignError::Input("nothing to sign: no blocks".into()));
    }
    for b in blocks {
        let end = u32::try_from(b.data.len())
            .ok()
            .and_then(|l| b.start.checked_add(l));
        if end.is_none() || b.data.is_empty() {
            return Err(SignError::Input(format!(
                "block at {:#x} ({} bytes) is empty or does not fit the 32-bit address space",
                b.start,
                b.data.len()
            )));
        }
    }
    let table = SrkTable::parse(&pki.srk_table)?;
    let srk = table.key(usize::from(options.srk_index)).ok_or_else(|| {
        SignError::Input(format!(
            "SRK index {} is outside the SRK table ({} keys)",
            options.srk_index,
            table.len()
        ))
    })?;
    let signing = Signing::new(pki, &srk, options)?;

    let version = options.csf_version;
    let signing_time = match options.signing_time {
        Some(t) => t,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| SignError::Input("system clock before 1970".into()))?
            .as_secs(),
    };
    let cert_record = |c: Option<&[u8]>| c.map(|c| record(TAG_CRT, version, c)).transpose();
    let before_rec = cert_record(signing.before_csf_sig)?;
    let after_rec = cert_record(signing.after_csf_sig)?;
    let image: Vec<u8> = blocks.iter().flat_map(|b| b.data).copied().collect();
    let (img_cert, img_key) = signing.image;
    let img_sig_rec = record(
        TAG_SIG,
        version,
        &sign_detached(&image, img_cert, img_key, signing_time, 0)?,
    )?;

    // The command bytes do not depend on the offsets' values, only on the options and blocks.
    let cmds_len = commands(blocks, options, Offsets::default())?.len();
    let srk_off = align4(cmds_len);
    let before_off = align4(srk_off + pki.srk_table.len());
    let csf_sig_off = match &before_rec {
        Some(r) => align4(before_off + r.len()),
        None => before_off,
    };
    let layout = |csf_sig_len: usize| {
        let after_off = align4(csf_sig_off + csf_sig_len);
        let img_sig_off = match &after_rec {
            Some(r) => align4(after_off + r.len()),
            None => after_off,
        };
        let offsets = Offsets {
            srk: srk_off,
            csfk: before_off,
            csf_sig: csf_sig_off,
            imgk: after_off,
            img_sig: img_sig_off,
        };
        commands(blocks, options, offsets).map(|c| (c, offsets))
    };
    // The CSF signature's length decides the offsets behind it, which it signs. Lay out for the
    // length of the previous signature and sign; if the new signature's padded length differs,
    // try again with the next ECDSA variant (a fresh, still deterministic nonce): a new
    // signature lands in the same 4-byte bucket as the previous one with probability >= 1/2.
    // The first attempt gives RFC 6979's plain signature; RSA always fits at once.
    let (csf_cert, csf_key) = signing.csf;
    let sign_cmds = |cmds: &[u8], variant: u32| -> SignResult<Vec<u8>> {
        let cms = sign_detached(cmds, csf_cert, csf_key, signing_time, variant)?;
        record(TAG_SIG, version, &cms)
    };
    let mut guess = sign_cmds(&layout(0)?.0, 0)?.len();
    let mut done = None;
    for variant in 0..LAYOUT_ATTEMPTS {
        let (cmds, offsets) = layout(guess)?;
        let sig = sign_cmds(&cmds, variant)?;
        if align4(sig.len()) == align4(guess) {
            done = Some((cmds, offsets, sig));
            break;
        }
        guess = sig.len();
    }
    let Some((cmds, offsets, csf_sig_rec)) = done else {
        return Err(SignError::Input(
            "could not settle the CSF record layout (signature length keeps changing)".into(),
        ));
    };

    let mut records: Vec<(usize, &[u8])> = vec![(offsets.srk, pki.srk_table.as_slice())];
    if let Some(r) = &before_rec {
        records.push((offsets.csfk, r));
    }
    records.push((offsets.csf_sig, &csf_sig_rec));
    if let Some(r) = &after_rec {
        records.push((offsets.imgk, r));
    }
    records.push((offsets.img_sig, &img_sig_rec));
    let mut csf = cmds;
    for (off, rec) in records {
        debug_assert!(csf.len() <= off);
        csf.resize(off, 0);
        csf.extend_from_slice(rec);
    }
    csf.resize(align4(csf.len()), 0);
    Csf::parse(&csf)?;
    Ok(csf)
}

/// Who signs what, and which certificates go into the CSF.
struct Signing<'p> {
    /// Certificate (for the CMS signer identifier) and key of the CSF signature.
    csf: (&'p [u8], &'p PrivateKey),
    /// Certificate and key of the image signature.
    image: (&'p [u8], &'p PrivateKey),
    /// Certificate recorded between the SRK table and the CSF signature: the CSFK, or in
    /// `cst`'s fast authentication the SRK certificate (the `[Install NOCAK]` file).
    before_csf_sig: Option<&'p [u8]>,
    /// Certificate recorded after the CSF signature: the image key.
    after_csf_sig: Option<&'p [u8]>,
}

impl<'p> Signing<'p> {
    fn new(pki: &'p Pki, srk: &SrkKey<'_>, options: &SignOptions) -> SignResult<Self> {
        let index = options.srk_index;
        if options.fast_auth == FastAuth::Off {
            let signer = pki.signer(index)?;
            let (csfk, imgk) = (&signer.csfk, &signer.imgk);
            for ck in [csfk, imgk] {
                check_issued_by(&ck.certificate, &srk.data, index)
                    .map_err(|e| SignError::Input(format!("{}: {e}", ck.name)))?;
            }
            return Ok(Signing {
                csf: (&csfk.certificate, csfk.private_key()?),
                image: (&imgk.certificate, imgk.private_key()?),
                before_csf_sig: Some(&csfk.certificate),
                after_csf_sig: Some(&imgk.certificate),
            });
        }
        let srk_cert = srk_certificate(pki, srk, index)?;
        let key = srk_cert.private_key()?;
        // The key must be the table's key, or HAB (and the verifier) would reject both
        // signatures; catch a key file that belongs to another certificate.
        const PROBE: &[u8] = b"imx-hab fast authentication key check";
        let algorithm = match key {
            PrivateKey::P256(_) => SignatureAlgorithm::EcdsaSha256,
            PrivateKey::Rsa(_) => SignatureAlgorithm::RsaSha256,
        };
        verify_with_srk(&srk.data, index, algorithm, PROBE, &key.sign_sha256(PROBE)?).map_err(
            |_| {
                SignError::Input(format!(
                    "{}: the private key does not belong to the key at SRK index {index}",
                    srk_cert.name
                ))
            },
        )?;
        let cert = srk_cert.certificate.as_slice();
        Ok(Signing {
            csf: (cert, key),
            image: (cert, key),
            before_csf_sig: (options.fast_auth == FastAuth::Cst).then_some(cert),
            after_csf_sig: None,
        })
    }
}

/// The certificate in [`Pki::srks`] whose public key is the SRK table's key `srk`.
fn srk_certificate<'p>(pki: &'p Pki, srk: &SrkKey<'_>, index: u8) -> SignResult<&'p CertKey> {
    pki.srks
        .iter()
        .find(|ck| {
            Certificate::parse(&ck.certificate)
                .ok()
                .and_then(|c| key_record(&c).ok())
                .is_some_and(|rec| rec == srk.bytes)
        })
        .ok_or_else(|| {
            SignError::MissingKey(format!(
                "SRK index {index} (fast authentication signs with the SRK: the PKI needs the \
                 certificate SRK{n}_… whose key is the table's record {n}, and its private key)",
                n = u32::from(index) + 1
            ))
        })
}

/// Signs a FIT with embedded data for loading at `load`, in U-Boot's i.MX 8M convention
/// (docs/hab4-format.md §2): `FIT ‖ zeros to ivt_off = ALIGN(totalsize, 0x1000) ‖ IVT ‖ CSF`,
/// IVT = `D1 0020 41`, entry = `load`, self = `load + ivt_off`, csf = self + 0x20, other
/// words 0; one Authenticate Data block `[load, load + ivt_off + 0x20)`.
///
/// `fit` may be longer than the FIT (an already signed FIT, for instance): only its first
/// `totalsize` bytes are used. The result parses as [`SignedFit`].
pub fn sign_fit(fit: &[u8], load: u32, pki: &Pki, options: &SignOptions) -> SignResult<Vec<u8>> {
    let total = crate::fit::totalsize(fit)? as usize;
    let fit = fit.get(..total).ok_or_else(|| {
        SignError::Input(format!(
            "FIT totalsize {total:#x} is larger than the input ({:#x} bytes)",
            fit.len()
        ))
    })?;
    crate::fit::Fit::parse(fit)?;
    let ivt_off = ivt_offset_for(total as u64);
    let self_addr = u32::try_from(ivt_off)
        .ok()
        .and_then(|o| load.checked_add(o))
        .filter(|s| s.checked_add(2 * IVT_SIZE as u32).is_some())
        .ok_or_else(|| {
            SignError::Input(format!(
                "load address {load:#x} + IVT offset {ivt_off:#x} does not fit 32 bits"
            ))
        })?;
    let mut out = fit.to_vec();
    out.resize(ivt_off as usize, 0);
    out.extend_from_slice(&ivt(load, 0, self_addr, self_addr + IVT_SIZE as u32));
    let csf = build_csf(
        &[Block {
            start: load,
            data: &out,
        }],
        pki,
        options,
    )?;
    out.extend_from_slice(&csf);
    SignedFit::parse(&out)?;
    Ok(out)
}

/// Signs the SPL part of a flash.bin (or of a bare `imx8mimage` SPL) whose IVT is at offset 0,
/// as U-Boot's binman `nxp_imx8mcst.py` does: sign base = loader − 0x40 where the loader
/// address is the IVT's `entry` (the SPL text base), which must equal the IVT's `self` (the
/// IVT is the first byte of the signed block); signed length = `csf − sign base`; one
/// Authenticate Data block `[sign base, csf)`, which covers the IVT, the boot data and the SPL.
///
/// The CSF is written at file offset `csf − sign base`, where the IVT's `csf` field points.
/// Whatever follows the CSF (the rest of the CSF slot, the FIT) is kept; a CSF already there
/// is replaced, and anything else non-zero in the way is an error. An IVT with `csf = 0` (an
/// image built without HAB support) is an error.
pub fn sign_spl(image: &[u8], pki: &Pki, options: &SignOptions) -> SignResult<Vec<u8>> {
    let ivt = Ivt::parse(image)?;
    if ivt.csf() == 0 {
        return Err(SignError::Input(
            "the SPL IVT has csf = 0: the image has no CSF slot (build it with HAB support)".into(),
        ));
    }
    let base = ivt
        .entry()
        .checked_sub(0x40)
        .ok_or_else(|| SignError::Input(format!("IVT entry {:#x} is below 0x40", ivt.entry())))?;
    if base != ivt.self_addr() {
        return Err(SignError::Input(format!(
            "sign base = entry - 0x40 = {base:#x} but the IVT's self is {:#x}: not an imx8mimage \
             SPL layout",
            ivt.self_addr()
        )));
    }
    let len = ivt
        .csf()
        .checked_sub(base)
        .map(|l| l as usize)
        .filter(|&l| l >= IVT_SIZE && l <= image.len())
        .ok_or_else(|| {
            SignError::Input(format!(
                "IVT csf {:#x} is not inside the image (sign base {base:#x}, {:#x} bytes)",
                ivt.csf(),
                image.len()
            ))
        })?;
    let csf = build_csf(
        &[Block {
            start: base,
            data: &image[..len],
        }],
        pki,
        options,
    )?;
    let mut out = image.to_vec();
    if let Ok(old) = Csf::parse(&image[len..]) {
        let end = (len + old.extent()).min(out.len());
        out[len..end].fill(0);
    }
    let end = len + csf.len();
    if out.len() < end {
        out.resize(end, 0);
    }
    if out[len..end].iter().any(|&b| b != 0) {
        return Err(SignError::Input(format!(
            "the CSF ({:#x} bytes at {len:#x}) would overwrite non-zero data",
            csf.len()
        )));
    }
    out[len..end].copy_from_slice(&csf);
    Ok(out)
}

/// CSF-relative record offsets. In fast authentication `csfk` and `imgk` are unused (the
/// former is where `cst` puts the SRK certificate, which no command points to).
#[derive(Clone, Copy, Default)]
struct Offsets {
    srk: usize,
    csfk: usize,
    csf_sig: usize,
    imgk: usize,
    img_sig: usize,
}

/// The CSF header and commands.
fn commands(blocks: &[Block<'_>], options: &SignOptions, o: Offsets) -> SignResult<Vec<u8>> {
    let off = |v: usize| {
        u32::try_from(v)
            .map(u32::to_be_bytes)
            .map_err(|_| SignError::Input("CSF larger than 4 GiB".into()))
    };
    let eng = options.engine.code();
    let mut c = vec![TAG_CSF, 0, 0, options.csf_version];
    let install = |c: &mut Vec<u8>, flg, pcl, alg, src, tgt, at: usize| -> SignResult<()> {
        c.extend_from_slice(&[CMD_INS_KEY, 0x00, 0x0C, flg, pcl, alg, src, tgt]);
        c.extend_from_slice(&off(at)?);
        Ok(())
    };
    install(&mut c, 0, PCL_SRK, ALG_SHA256, options.srk_index, 0, o.srk)?;
    // Authenticate CSF key: cst's AUT_CSF macro always writes the CSFK slot, even for
    // [Install NOCAK], which installs nothing.
    let (csf_key, data_key) = match options.fast_auth {
        FastAuth::Off => {
            install(&mut c, INS_KEY_CSF, PCL_X509, ALG_ANY, 0, SLOT_CSFK, o.csfk)?;
            (SLOT_CSFK, SLOT_IMG)
        }
        FastAuth::Cst => (SLOT_CSFK, SLOT_SRK),
        FastAuth::SrkSlot => (SLOT_SRK, SLOT_SRK),
    };
    c.extend_from_slice(&[CMD_AUT_DAT, 0x00, 0x0C, 0x00, csf_key, PCL_CMS, eng, 0x00]);
    c.extend_from_slice(&off(o.csf_sig)?);
    if options.fast_auth == FastAuth::Off {
        install(&mut c, 0, PCL_X509, ALG_ANY, SLOT_SRK, SLOT_IMG, o.imgk)?;
    }
    let aut_len = u16::try_from(12 + 8 * blocks.len())
        .map_err(|_| SignError::Input("too many blocks for one Authenticate Data".into()))?;
    c.push(CMD_AUT_DAT);
    c.extend_from_slice(&aut_len.to_be_bytes());
    c.extend_from_slice(&[0x00, data_key, PCL_CMS, eng, 0x00]);
    c.extend_from_slice(&off(o.img_sig)?);
    for b in blocks {
        c.extend_from_slice(&b.start.to_be_bytes());
        c.extend_from_slice(&(b.data.len() as u32).to_be_bytes());
    }
    if options.engine == Engine::Caam {
        c.extend_from_slice(&UNLOCK_CAAM_RNG);
    }
    let len = u16::try_from(c.len())
        .map_err(|_| SignError::Input("CSF commands longer than 0xFFFF bytes".into()))?;
    c[1..3].copy_from_slice(&len.to_be_bytes());
    Ok(c)
}

/// `tag | len (BE, header included) | version | body`.
fn record(tag: u8, version: u8, body: &[u8]) -> SignResult<Vec<u8>> {
    let len = u16::try_from(body.len() + 4)
        .map_err(|_| SignError::Input(format!("record {tag:#04x} longer than 0xFFFF bytes")))?;
    let mut r = vec![tag, 0, 0, version];
    r[1..3].copy_from_slice(&len.to_be_bytes());
    r.extend_from_slice(body);
    Ok(r)
}

const fn align4(v: usize) -> usize {
    (v + 3) & !3
}

/// Checks that `cert` carries a valid signature by the SRK table key `srk`, as HAB will when it
/// installs the certificate; catches a CSF/image key pair from another SRK or PKI.
fn check_issued_by(cert: &[u8], srk: &SrkKeyData<'_>, index: u8) -> Result<(), String> {
    let cert = Certificate::parse(cert).map_err(|e| e.to_string())?;
    verify_with_srk(
        srk,
        index,
        cert.signature_algorithm,
        cert.tbs,
        cert.signature,
    )
    .map_err(|e| match e {
        SrkCheck::Mismatch => {
            format!("certificate is not signed by the key at SRK index {index}")
        }
        SrkCheck::Other(s) => s,
    })
}

/// Why [`verify_with_srk`] failed.
enum SrkCheck {
    /// The signature does not verify with the SRK (or is not a valid signature encoding).
    Mismatch,
    /// The key or algorithm cannot be used; the text says why.
    Other(String),
}

/// Verifies `signature` (DER ECDSA or raw PKCS#1 v1.5) over SHA-256 of `msg` with the SRK table
/// key `srk` at `index`.
fn verify_with_srk(
    srk: &SrkKeyData<'_>,
    index: u8,
    algorithm: SignatureAlgorithm,
    msg: &[u8],
    signature: &[u8],
) -> Result<(), SrkCheck> {
    let other = SrkCheck::Other;
    match (srk, algorithm) {
        (
            SrkKeyData::Ec {
                curve: Curve::P256,
                x,
                y,
            },
            SignatureAlgorithm::EcdsaSha256,
        ) => {
            let mut point = vec![0x04];
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                .map_err(|_| other(format!("SRK index {index} is not a valid P-256 key")))?;
            let sig =
                p256::ecdsa::Signature::from_der(signature).map_err(|_| SrkCheck::Mismatch)?;
            key.verify(msg, &sig).map_err(|_| SrkCheck::Mismatch)
        }
        (SrkKeyData::Rsa { modulus, exponent }, SignatureAlgorithm::RsaSha256) => {
            let der = rsa::pkcs1::RsaPublicKey {
                modulus: der::asn1::UintRef::new(modulus).map_err(|e| other(e.to_string()))?,
                public_exponent: der::asn1::UintRef::new(exponent)
                    .map_err(|e| other(e.to_string()))?,
            }
            .to_der()
            .map_err(|e| other(e.to_string()))?;
            let key = rsa::PublicKey::from_pkcs1_der(&der)
                .map_err(|e| other(format!("SRK index {index}: {e}")))?;
            let sig =
                rsa::pkcs1v15::Signature::try_from(signature).map_err(|_| SrkCheck::Mismatch)?;
            rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
                .verify(msg, &sig)
                .map_err(|_| SrkCheck::Mismatch)
        }
        (
            SrkKeyData::Ec {
                curve: Curve::P256, ..
            }
            | SrkKeyData::Rsa { .. },
            _,
        ) => Err(other(format!(
            "signature ({}) does not match the key type at SRK index {index}",
            algorithm.name()
        ))),
        _ => Err(other(format!(
            "the key at SRK index {index} cannot be used: hash-only record, or a curve other than \
             P-256"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::cert::{Subject, issue};
    use crate::sign::keys::PrivateKey;
    use crate::sign::pki::{CertKey, SignerKeys};
    use crate::sign::srk_table_from_certificates;

    /// A one-SRK PKI whose SRK name is `cn`: the name sits in every signature's signer
    /// identifier, so its length moves the CSF signature's length against the 4-byte grid.
    fn pki_with_srk_name(cn: &str) -> Pki {
        let make = |name: &str, serial: u8, ca: bool, issuer: Option<&CertKey>| {
            let key = PrivateKey::derive_p256(b"layout", name);
            let spki = key.public_key_der().unwrap();
            let subject = Subject {
                cn: name,
                serial: &[serial],
                is_ca: ca,
                not_before: 1_767_225_600,
                not_after: 1_767_225_600 + 86_400,
                public_key: &spki,
            };
            let issuer = issuer.map(|i| (i.certificate.as_slice(), i.key.as_ref().unwrap()));
            CertKey {
                name: name.into(),
                certificate: issue(&subject, issuer, &key).unwrap(),
                key: Some(key),
            }
        };
        let srk = make(cn, 1, true, None);
        let signer = SignerKeys {
            srk_index: 0,
            csfk: make("CSF", 2, false, Some(&srk)),
            imgk: make("IMG", 3, false, Some(&srk)),
        };
        let table = srk_table_from_certificates(&[&srk.certificate]).unwrap();
        let mut pki = Pki::from_parts(table, vec![signer]).unwrap();
        pki.srks.push(srk);
        pki
    }

    #[test]
    fn csf_layout_settles_whatever_the_ecdsa_signature_length() {
        let data = [0x5Au8; 64];
        let block = [Block {
            start: 0x4000_0000,
            data: &data,
        }];
        for cn_len in 4..8 {
            let pki = pki_with_srk_name(&"S".repeat(cn_len));
            for t in 0..24 {
                let options = SignOptions {
                    signing_time: Some(1_767_225_600 + t),
                    ..SignOptions::default()
                };
                let csf = build_csf(&block, &pki, &options).unwrap();
                let parsed = Csf::parse(&csf).unwrap();
                // Records follow each other with less than 4 bytes of padding.
                let mut end = parsed.len();
                for cmd in parsed.commands() {
                    let rec = match parsed.referenced(&cmd) {
                        Some(crate::csf::Referenced::SrkTable(r)) => r.record,
                        Some(crate::csf::Referenced::Certificate(r)) => r.record,
                        Some(crate::csf::Referenced::Signature(r)) => r.record,
                        None => continue,
                    };
                    let off = rec.offset as usize;
                    assert!(
                        off >= end && off - end < 4 && off.is_multiple_of(4),
                        "cn {cn_len} t {t}"
                    );
                    end = off + rec.len();
                }
                assert_eq!(csf.len(), align4(end));
            }
        }
    }

    #[test]
    fn fast_auth_layout_settles_and_records_follow_each_other() {
        let data = [0x5Au8; 64];
        let block = [Block {
            start: 0x4000_0000,
            data: &data,
        }];
        for cn_len in 4..8 {
            let pki = pki_with_srk_name(&"S".repeat(cn_len));
            let cert_rec = 4 + pki.srks[0].certificate.len();
            for form in [FastAuth::SrkSlot, FastAuth::Cst] {
                for t in 0..24 {
                    let options = SignOptions {
                        signing_time: Some(1_767_225_600 + t),
                        fast_auth: form,
                        ..SignOptions::default()
                    };
                    let csf = build_csf(&block, &pki, &options).unwrap();
                    let parsed = Csf::parse(&csf).unwrap();
                    let mut end = parsed.len();
                    let mut referenced = 0;
                    for cmd in parsed.commands() {
                        let rec = match parsed.referenced(&cmd) {
                            Some(crate::csf::Referenced::SrkTable(r)) => r.record,
                            Some(crate::csf::Referenced::Signature(r)) => r.record,
                            Some(crate::csf::Referenced::Certificate(_)) => {
                                panic!("fast authentication installs no certificate")
                            }
                            None => continue,
                        };
                        let off = rec.offset as usize;
                        if form == FastAuth::Cst && referenced == 1 {
                            // cst's unreferenced SRK certificate record sits before the CSF
                            // signature.
                            let cert_at = align4(end);
                            assert_eq!(csf[cert_at], TAG_CRT);
                            assert_eq!(
                                csf[cert_at + 4..cert_at + cert_rec],
                                pki.srks[0].certificate
                            );
                            end = cert_at + cert_rec;
                        }
                        assert_eq!(off, align4(end), "{form:?} cn {cn_len} t {t}");
                        end = off + rec.len();
                        referenced += 1;
                    }
                    assert_eq!(referenced, 3);
                    assert_eq!(csf.len(), align4(end));
                }
            }
        }
    }

    #[test]
    fn fast_auth_needs_the_srk_certificate_and_its_own_key() {
        let data = [0x5Au8; 64];
        let block = [Block {
            start: 0x4000_0000,
            data: &data,
        }];
        let options = SignOptions {
            signing_time: Some(1_767_225_600),
            fast_auth: FastAuth::Cst,
            ..SignOptions::default()
        };
        let pki = pki_with_srk_name("SRK");
        build_csf(&block, &pki, &options).unwrap();

        let mut no_srks = pki.clone();
        no_srks.srks.clear();
        assert!(matches!(
            build_csf(&block, &no_srks, &options),
            Err(SignError::MissingKey(_))
        ));
        let mut no_key = pki.clone();
        no_key.srks[0].key = None;
        assert!(matches!(
            build_csf(&block, &no_key, &options),
            Err(SignError::MissingKey(_))
        ));
        let mut wrong_key = pki.clone();
        wrong_key.srks[0].key = Some(PrivateKey::derive_p256(b"layout", "another"));
        match build_csf(&block, &wrong_key, &options) {
            Err(SignError::Input(e)) => assert!(e.contains("does not belong"), "{e}"),
            other => panic!("{other:?}"),
        }
        // Normal authentication does not need the SRK's key.
        let normal = SignOptions {
            fast_auth: FastAuth::Off,
            ..options
        };
        build_csf(&block, &no_key, &normal).unwrap();
    }
}
