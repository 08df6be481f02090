//! The test PKI (P-256, `imx_hab::sign`) and the simulated fuse block (`fuses.bin`).
//!
//! **Test keys only**: a generated PKI is derived from its seed, and its keys are written
//! unencrypted.

use std::path::Path;

use imx_hab::hab::Fuses;
use imx_hab::sign::{Pki, TestPkiOptions};

use crate::{Context, Result, bail};

/// The seed `cargo xtask image` and the scenario tests use unless told otherwise.
pub const DEFAULT_SEED: &str = "imx-redundant-boot simulation test PKI";

/// Size of the simulated fuse block (`fuses.bin`, loaded at OCRAM 0x0090_0000).
pub const FUSE_BLOCK_SIZE: usize = 64;

/// Generates the deterministic P-256 test PKI for `seed` (CA1, SRK1-4, CSFn_1/IMGn_1).
pub fn generate(seed: &[u8]) -> Result<Pki> {
    Pki::generate_p256(seed, &TestPkiOptions::default()).context("generating the test PKI")
}

/// Loads a PKI in `cst`'s layout from `dir`.
pub fn load(dir: &Path) -> Result<Pki> {
    Pki::load_dir(dir).with_context(|| format!("loading the PKI in {}", dir.display()))
}

/// Whether `dir` looks like a PKI directory (has `srk_table.bin` or `crts/`).
pub fn is_pki_dir(dir: &Path) -> bool {
    dir.join("srk_table.bin").is_file() || dir.join("crts").is_dir()
}

/// Loads the PKI in `dir` if there is one; otherwise generates one from `seed`, writes it to
/// `dir` (creating it) and returns it. Returns the PKI and whether it was generated.
pub fn load_or_generate(dir: &Path, seed: &[u8]) -> Result<(Pki, bool)> {
    if is_pki_dir(dir) {
        return Ok((load(dir)?, false));
    }
    let pki = generate(seed)?;
    pki.write_dir(dir)
        .with_context(|| format!("writing the PKI to {}", dir.display()))?;
    Ok((pki, true))
}

/// The simulated fuse values (boards `FuseSource::SimulatedBlock`, issue 4 item 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimFuses {
    /// SRK hash exactly as `srktool`'s fuse file ([`Pki::srk_hash`]).
    pub srk_hash: [u8; 32],
    /// SEC_CONFIG word; bit 25 ([`Fuses::SEC_CONFIG_CLOSED`]) = closed.
    pub sec_config: u32,
    /// SRK revoke mask: bit n = SRK n revoked.
    pub revoke_mask: u32,
    /// The anti-rollback fuse bits (block bytes 0x28..0x30, LE; `boot_core::rollback`).
    pub rollback: u64,
}

impl SimFuses {
    /// A closed part (the simulation's default) fused with `pki`'s SRK hash, nothing revoked.
    pub fn closed_for(pki: &Pki) -> Result<Self> {
        Ok(SimFuses {
            srk_hash: pki.srk_hash()?,
            sec_config: Fuses::SEC_CONFIG_CLOSED,
            revoke_mask: 0,
            rollback: 0,
        })
    }

    /// The 64-byte block: bytes 0..32 SRK hash, 32..36 SEC_CONFIG (LE), 36..40 revoke mask
    /// (LE), 40..48 the rollback bits (LE), the rest zero.
    pub fn to_block(&self) -> [u8; FUSE_BLOCK_SIZE] {
        let mut b = [0u8; FUSE_BLOCK_SIZE];
        b[..32].copy_from_slice(&self.srk_hash);
        b[32..36].copy_from_slice(&self.sec_config.to_le_bytes());
        b[36..40].copy_from_slice(&self.revoke_mask.to_le_bytes());
        let at = boot_core::rollback::SIM_BLOCK_OFFSET;
        b[at..at + 8].copy_from_slice(&self.rollback.to_le_bytes());
        b
    }

    /// The fuse values as the verifier takes them.
    pub fn fuses(&self) -> Fuses {
        Fuses::from_simulated_block(&self.to_block())
    }

    /// Writes the block to `path` (the `fuses.bin` of the QEMU contract).
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_block()).with_context(|| format!("writing {}", path.display()))
    }
}

/// Reads a `fuses.bin` (exactly 64 bytes) back.
pub fn read_fuse_block(path: &Path) -> Result<[u8; FUSE_BLOCK_SIZE]> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match <[u8; FUSE_BLOCK_SIZE]>::try_from(data.as_slice()) {
        Ok(b) => Ok(b),
        Err(_) => bail!(
            "{}: a fuse block is {FUSE_BLOCK_SIZE} bytes, this file has {}",
            path.display(),
            data.len()
        ),
    }
}

/// Writes `fuses.bin` for a closed part fused with `pki` and returns the fuse values.
pub fn write_fuses(pki: &Pki, path: &Path) -> Result<SimFuses> {
    let f = SimFuses::closed_for(pki)?;
    f.write(path)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuse_block_layout() {
        let pki = generate(b"xtask fuse test").unwrap();
        let f = SimFuses {
            revoke_mask: 0b10,
            ..SimFuses::closed_for(&pki).unwrap()
        };
        let b = f.to_block();
        assert_eq!(&b[..32], &pki.srk_hash().unwrap());
        assert_eq!(&b[32..36], &(1u32 << 25).to_le_bytes());
        assert_eq!(&b[36..40], &2u32.to_le_bytes());
        assert!(b[40..].iter().all(|&x| x == 0));
        let f = SimFuses {
            rollback: 0b111 << 30,
            ..f
        };
        let b = f.to_block();
        assert_eq!(&b[40..48], &(0b111u64 << 30).to_le_bytes());
        assert_eq!(f.fuses().rollback, 0b111 << 30);
        let fuses = f.fuses();
        assert!(fuses.is_closed());
        assert!(fuses.is_revoked(1));
    }

    #[test]
    fn pki_dir_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (a, generated) = load_or_generate(dir.path(), b"xtask pki dir").unwrap();
        assert!(generated);
        let (b, generated) = load_or_generate(dir.path(), b"another seed").unwrap();
        assert!(!generated);
        assert_eq!(a.srk_hash().unwrap(), b.srk_hash().unwrap());
        let fuses = dir.path().join("fuses.bin");
        write_fuses(&b, &fuses).unwrap();
        assert_eq!(
            read_fuse_block(&fuses).unwrap()[..32],
            a.srk_hash().unwrap()
        );
    }
}
