//! HAB4 constant values and their names (docs/hab4-format.md §1, §4.6; HAB4 API RM).
//!
//! Names follow NXP's `hab_types.h` spelling so that output lines up with `csf_parser`.

/// Tag of an Image Vector Table.
pub const TAG_IVT: u8 = 0xD1;
/// Tag of a CSF header.
pub const TAG_CSF: u8 = 0xD4;
/// Tag of a certificate or SRK table record.
pub const TAG_CRT: u8 = 0xD7;
/// Tag of a signature record.
pub const TAG_SIG: u8 = 0xD8;
/// Tag of a HAB event record.
pub const TAG_EVT: u8 = 0xDB;
/// Tag of the ROM vector table.
pub const TAG_RVT: u8 = 0xDD;
/// Tag of an SRK public-key record.
pub const TAG_KEY_PUBLIC: u8 = 0xE1;
/// Tag of an SRK hash-only record (`srktool` `%cert`).
pub const TAG_KEY_HASH: u8 = 0xEE;

/// Command tag: Install Key.
pub const CMD_INS_KEY: u8 = 0xBE;
/// Command tag: Authenticate Data (also Authenticate CSF).
pub const CMD_AUT_DAT: u8 = 0xCA;
/// Command tag: Unlock.
pub const CMD_UNLK: u8 = 0xB2;
/// Command tag: Init.
pub const CMD_INIT: u8 = 0xB4;
/// Command tag: Set.
pub const CMD_SET: u8 = 0xB1;
/// Command tag: NOP.
pub const CMD_NOP: u8 = 0xC0;
/// Command tag: Write Data.
pub const CMD_WRT_DAT: u8 = 0xCC;
/// Command tag: Check Data.
pub const CMD_CHK_DAT: u8 = 0xCF;

/// Protocol: SRK table.
pub const PCL_SRK: u8 = 0x03;
/// Protocol: X.509 v3 certificate.
pub const PCL_X509: u8 = 0x09;
/// Protocol: CMS / PKCS#7 signature.
pub const PCL_CMS: u8 = 0xC5;
/// Protocol: encrypted key blob.
pub const PCL_BLOB: u8 = 0xBB;
/// Protocol: AEAD MAC.
pub const PCL_AEAD: u8 = 0xA3;

/// Algorithm: any / none.
pub const ALG_ANY: u8 = 0x00;
/// Algorithm: SHA-1.
pub const ALG_SHA1: u8 = 0x11;
/// Algorithm: SHA-256.
pub const ALG_SHA256: u8 = 0x17;
/// Algorithm: SHA-512.
pub const ALG_SHA512: u8 = 0x1B;
/// Algorithm: PKCS#1 RSA.
pub const ALG_PKCS1: u8 = 0x21;
/// Algorithm: ECDSA (observed in SRK records of `srktool`).
pub const ALG_ECDSA: u8 = 0x27;

/// Install Key flag: absolute key address.
pub const INS_KEY_ABS: u8 = 0x01;
/// Install Key flag: install the CSF key.
pub const INS_KEY_CSF: u8 = 0x02;
/// Install Key flag: key binds to data.
pub const INS_KEY_DAT: u8 = 0x04;
/// Install Key flag: key binds to configuration.
pub const INS_KEY_CFG: u8 = 0x08;
/// Install Key flag: key binds to fabrication UID.
pub const INS_KEY_FID: u8 = 0x10;
/// Install Key flag: key binds to manufacturing ID.
pub const INS_KEY_MID: u8 = 0x20;
/// Install Key flag: key binds to caller ID.
pub const INS_KEY_CID: u8 = 0x40;
/// Install Key flag: a certificate hash follows the command.
pub const INS_KEY_HSH: u8 = 0x80;

/// Engine: CAAM.
pub const ENG_CAAM: u8 = 0x1D;

/// Set configuration item: manufacturing-ID fuse location.
pub const SET_ITM_MID: u8 = 0x01;
/// Set configuration item: preferred engine for an algorithm.
pub const SET_ITM_ENG: u8 = 0x03;

/// Name of a command tag.
pub const fn command_name(tag: u8) -> Option<&'static str> {
    Some(match tag {
        CMD_INS_KEY => "Install Key",
        CMD_AUT_DAT => "Authenticate Data",
        CMD_UNLK => "Unlock",
        CMD_INIT => "Init",
        CMD_SET => "Set",
        CMD_NOP => "NOP",
        CMD_WRT_DAT => "Write Data",
        CMD_CHK_DAT => "Check Data",
        _ => return None,
    })
}

/// `hab_types.h` name of an engine code.
pub const fn engine_name(eng: u8) -> Option<&'static str> {
    Some(match eng {
        0x00 => "HAB_ENG_ANY",
        0x03 => "HAB_ENG_SCC",
        0x05 => "HAB_ENG_RTIC",
        0x06 => "HAB_ENG_SAHARA",
        0x0A => "HAB_ENG_CSU",
        0x0C => "HAB_ENG_SRTC",
        0x1B => "HAB_ENG_DCP",
        0x1D => "HAB_ENG_CAAM",
        0x1E => "HAB_ENG_SNVS",
        0x21 => "HAB_ENG_OCOTP",
        0x22 => "HAB_ENG_DTCP",
        0x24 => "HAB_ENG_HDCP",
        0x36 => "HAB_ENG_ROM",
        0xFF => "HAB_ENG_SW",
        _ => return None,
    })
}

/// `hab_types.h` name of a protocol code.
pub const fn protocol_name(pcl: u8) -> Option<&'static str> {
    Some(match pcl {
        PCL_SRK => "HAB_PCL_SRK",
        PCL_X509 => "HAB_PCL_X509",
        PCL_CMS => "HAB_PCL_CMS",
        PCL_BLOB => "HAB_PCL_BLOB",
        PCL_AEAD => "HAB_PCL_AEAD",
        _ => return None,
    })
}

/// `hab_types.h` name of an algorithm code.
pub const fn algorithm_name(alg: u8) -> Option<&'static str> {
    Some(match alg {
        ALG_ANY => "HAB_ALG_ANY",
        ALG_SHA1 => "HAB_ALG_SHA1",
        ALG_SHA256 => "HAB_ALG_SHA256",
        ALG_SHA512 => "HAB_ALG_SHA512",
        ALG_PKCS1 => "HAB_ALG_PKCS1",
        ALG_ECDSA => "HAB_ALG_ECDSA",
        0x55 => "HAB_ALG_AES",
        0x66 => "HAB_ALG_CCM",
        0x71 => "HAB_ALG_BLOB",
        _ => return None,
    })
}

/// Digest length in bytes of a hash algorithm code.
pub const fn digest_len(alg: u8) -> Option<usize> {
    match alg {
        ALG_SHA1 => Some(20),
        ALG_SHA256 => Some(32),
        ALG_SHA512 => Some(64),
        _ => None,
    }
}

/// Names of the Install Key flags set in `flags`, in bit order.
pub fn install_key_flag_names(flags: u8) -> impl Iterator<Item = &'static str> {
    const NAMES: [&str; 8] = ["ABS", "CSF", "DAT", "CFG", "FID", "MID", "CID", "HSH"];
    (0..8)
        .filter(move |b| flags & (1 << b) != 0)
        .map(|b| NAMES[b])
}
