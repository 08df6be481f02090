//! The SRK table as `srktool -h 4 -d sha256 -f 1 -c SRK1,…` builds it (docs/hab4-format.md
//! §5.1, §7).

use crate::codes::{ALG_ECDSA, ALG_PKCS1, TAG_CRT, TAG_KEY_PUBLIC};
use crate::srk::{KEY_FLAG_CA, MAX_SRKS, SrkTable};
use crate::x509::{Certificate, Curve, PublicKey};

use super::{SignError, SignResult};

/// SRK table version byte (srktool writes 4.0 whatever the CSF version).
const SRK_TABLE_VERSION: u8 = 0x40;

/// Builds the SRK table from 1 to 4 SRK certificates (DER), in order: `D7 len 40`, then one
/// `E1` public-key record per certificate. EC records are
/// `E1 len 27 000000 flags curve 00 bits X Y` (P-256: curve `4B`, bits `0100`; P-384 `4D`;
/// P-521 `4E`), RSA records `E1 len 21 000000 flags mod_len exp_len modulus exponent`; `flags`
/// is `80` when the certificate has basicConstraints CA:TRUE, as srktool sets it.
pub fn srk_table_from_certificates(certificates: &[&[u8]]) -> SignResult<Vec<u8>> {
    if certificates.is_empty() || certificates.len() > MAX_SRKS {
        return Err(SignError::Input(format!(
            "an SRK table holds 1 to {MAX_SRKS} keys, not {}",
            certificates.len()
        )));
    }
    let mut table = vec![TAG_CRT, 0, 0, SRK_TABLE_VERSION];
    for (i, der) in certificates.iter().enumerate() {
        let cert = Certificate::parse(der)
            .map_err(|e| SignError::Input(format!("SRK certificate {}: {e}", i + 1)))?;
        table.extend_from_slice(&key_record(&cert)?);
    }
    let len = u16::try_from(table.len())
        .map_err(|_| SignError::Input("SRK table longer than 0xFFFF bytes".into()))?;
    table[1..3].copy_from_slice(&len.to_be_bytes());
    Ok(table)
}

/// The 32-byte SRK hash of `table` that the fuses hold (`srktool -f 1 -e` output):
/// SHA-256 over the SHA-256 of every key record.
pub fn srk_fuse_hash(table: &[u8]) -> SignResult<[u8; 32]> {
    Ok(SrkTable::parse(table)?.hash())
}

/// The `E1` record of a certificate's public key.
pub(super) fn key_record(cert: &Certificate<'_>) -> SignResult<Vec<u8>> {
    let flags = if cert.is_ca { KEY_FLAG_CA } else { 0 };
    let mut rec = vec![TAG_KEY_PUBLIC, 0, 0, 0, 0, 0, 0, flags];
    match cert.public_key {
        PublicKey::Ec { curve, point } => {
            let c = curve.coordinate_len();
            if point.len() != 1 + 2 * c || point[0] != 0x04 {
                return Err(SignError::Input(
                    "SRK certificate: EC point is not uncompressed".into(),
                ));
            }
            rec[3] = ALG_ECDSA;
            let id = match curve {
                Curve::P256 => 0x4B,
                Curve::P384 => 0x4D,
                Curve::P521 => 0x4E,
            };
            rec.extend_from_slice(&[id, 0]);
            rec.extend_from_slice(&(curve.bits() as u16).to_be_bytes());
            rec.extend_from_slice(&point[1..]);
        }
        PublicKey::Rsa { modulus, exponent } => {
            rec[3] = ALG_PKCS1;
            let m = u16::try_from(modulus.len()).ok();
            let e = u16::try_from(exponent.len()).ok();
            let (Some(m), Some(e)) = (m, e) else {
                return Err(SignError::Input("SRK certificate: RSA key too long".into()));
            };
            rec.extend_from_slice(&m.to_be_bytes());
            rec.extend_from_slice(&e.to_be_bytes());
            rec.extend_from_slice(modulus);
            rec.extend_from_slice(exponent);
        }
    }
    let len = u16::try_from(rec.len())
        .map_err(|_| SignError::Input("SRK key record longer than 0xFFFF bytes".into()))?;
    rec[1..3].copy_from_slice(&len.to_be_bytes());
    Ok(rec)
}
