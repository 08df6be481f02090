//! Issue 11: one judgement of a boot copy. Each disagreement found by hostile testing has a
//! test here, then a property test mutates a signed flash.bin in every region and checks that
//! `verify`, `update --dry-run`, `status`'s verdict on that copy and the shim's own boot flow
//! over an in-memory disk all give the same verdict. (`verify` applying the handoff checks is
//! `verify_cli.rs`'s RSA fixture case.)

mod medium;

use boot_core::boot::{Hardware, Memory, run};
use boot_core::cell::{CopyReport, FailureClass, RomInfo};
use boot_core::examine::{Part, Rules};
use boot_core::platform::{BlockRead, Clock, MediaError, WatchdogService};
use boot_core::policy::Slot;
use imx_hab::hab::software::SoftwareHab;
use imx_hab::image::SignedFit;
use medium::{Layout, board, fuses, image, medium};
use proptest::prelude::*;
use ubootctl::blockdev::{BlockDevice, MemDevice};
use ubootctl::media::{MediaState, judge_flash_bin};
use ubootctl::plan::{NewImage, Refusal, plan_sync};

/// The CSF offset of the SPL (`IVT.csf - IVT.self`).
fn spl_csf_offset(fb: &[u8]) -> usize {
    let word = |at: usize| u32::from_le_bytes(fb[at..at + 4].try_into().unwrap());
    (word(0x18) - word(0x14)) as usize
}

#[test]
fn an_unsigned_modified_spl_is_refused_by_verify_and_update_on_a_closed_part() {
    let mut fb = image(2).to_vec();
    fb[0x100] ^= 0x01; // SPL code
    fb[0x18..0x1C].fill(0); // IVT.csf = 0: "unsigned"
    let f = judge_flash_bin(&fb, board(), &fuses()).unwrap_err();
    assert_eq!((f.part, f.class()), (Part::Spl, FailureClass::NotSigned));
    let r = NewImage::check(fb.clone(), board(), &fuses()).unwrap_err();
    assert!(matches!(r, Refusal::ImageRejected(f) if f.class() == FailureClass::NotSigned));
    // On an open part the ROM starts it: accepted, with the warning.
    let open = imx_hab::hab::Fuses {
        sec_config: 0,
        ..fuses()
    };
    let info = judge_flash_bin(&fb, board(), &open).unwrap();
    assert!(info.warnings.unsigned_spl && !info.warnings.unsigned_fit);
}

#[test]
fn a_bit_rotted_primary_spl_is_not_authentic_and_sync_does_not_copy_it() {
    let mut rotted = image(2).to_vec();
    rotted[0x200] ^= 0x10; // signed SPL code
    let dev = medium(Layout {
        primary: Some(&rotted),
        secondary: Some(image(1)),
        sit: true,
    });
    let state = MediaState::read(&dev, board(), &fuses()).unwrap();
    let f = state.primary.judgement.as_ref().unwrap_err();
    assert_eq!(
        (f.part, f.class()),
        (Part::Spl, FailureClass::ImageSignature)
    );
    // The ROM would start the secondary; so does the prediction.
    assert_eq!(state.decision().slot, Some(Slot::Secondary));
    assert_eq!(
        plan_sync(&state, Some(Slot::Primary), board()).unwrap_err(),
        Refusal::PrimaryNotAuthentic
    );
}

#[test]
fn an_ecdsa_image_is_refused_for_the_8m_mini_naming_board_and_algorithm() {
    let evk = &boards::imx8mm_evk::BOARD;
    let f = judge_flash_bin(image(1), evk, &fuses()).unwrap_err();
    assert_eq!(f.class(), FailureClass::Algorithm);
    let text = f.to_string();
    assert!(
        text.contains("imx8mm-evk") && text.contains("ECDSA P-256"),
        "{text}"
    );
}

/// The fuses of an open part with the test SRK hash.
fn open_part() -> imx_hab::hab::Fuses {
    imx_hab::hab::Fuses {
        sec_config: 0,
        ..fuses()
    }
}

/// An unsigned SPL (CSF slot zeroed) with the word at `at` set to `value`.
fn spl_with(at: usize, value: u32) -> Vec<u8> {
    let mut fb = image(1).to_vec();
    let csf = spl_csf_offset(&fb);
    fb[csf..csf + 0x2000].fill(0);
    fb[at..at + 4].copy_from_slice(&value.to_le_bytes());
    fb
}

#[test]
fn the_spl_structure_is_checked_as_the_rom_would_even_unsigned_on_an_open_part() {
    let word = |fb: &[u8], at: usize| u32::from_le_bytes(fb[at..at + 4].try_into().unwrap());
    let fb = image(1).to_vec();
    let self_addr = word(&fb, 0x14);
    // The unsigned SPL itself is accepted on an open part (with the warning).
    let csf = spl_csf_offset(&fb);
    let mut unsigned = fb.clone();
    unsigned[csf..csf + 0x2000].fill(0);
    assert!(judge_flash_bin(&unsigned, board(), &open_part()).is_ok());
    for (what, at, value, field) in [
        ("boot data size 1", 0x24, 1, "size"),
        ("boot data size 0x40 (entry past it)", 0x24, 0x40, "entry"),
        ("IVT 0x10 into the image", 0x20, self_addr - 0x10, "start"),
        ("entry outside the image", 0x04, 0x4000_0000, "entry"),
        ("a DCD", 0x0C, self_addr + 0x100, "dcd"),
    ] {
        let f = judge_flash_bin(&spl_with(at, value), board(), &open_part()).unwrap_err();
        assert_eq!(f.part, Part::Spl, "{what}: {f}");
        assert!(f.to_string().contains(field), "{what}: {f}");
    }
}

#[test]
fn a_partly_zeroed_spl_csf_is_a_failing_signature_not_an_unsigned_spl() {
    let mut fb = image(1).to_vec();
    let csf = spl_csf_offset(&fb);
    fb[csf..csf + 4].fill(0);
    for fuses in [fuses(), open_part()] {
        let f = judge_flash_bin(&fb, board(), &fuses).unwrap_err();
        assert_eq!(f.part, Part::Spl, "{f}");
        assert_ne!(f.class(), FailureClass::NotSigned, "{f}");
    }
}

#[test]
fn a_truncated_image_file_is_refused_where_it_ends() {
    let fb = image(1);
    let info = judge_flash_bin(fb, board(), &fuses()).unwrap();
    let fit_ivt = 0x57C00 + 0x56000 + 0x10;
    for cut in [
        0x100,
        0x200,
        info.spl_len as usize - 1,
        0x57C00 + 0x100,
        fit_ivt,
    ] {
        let f = judge_flash_bin(&fb[..cut], board(), &open_part()).unwrap_err();
        assert!(
            f.to_string().contains(&format!("{cut:#x} are available")),
            "cut {cut:#x}: {f}"
        );
    }
    // Cut inside the CSF: refused too (whatever the zeros make of it).
    assert!(judge_flash_bin(&fb[..info.extent as usize - 1], board(), &open_part()).is_err());
    // Too large for a slot.
    let mut big = fb.to_vec();
    big.resize((2 << 20) + 1, 0);
    assert!(judge_flash_bin(&big, board(), &fuses()).is_err());
}

#[test]
fn a_shim_only_update_changes_the_identity() {
    // Same FIT, another SPL: a different image to the booted-image rule.
    let other_spl = medium::flash_bin_with_fit(9, &medium::signed_fit_with(1, medium::LOAD, 0));
    let a = judge_flash_bin(image(1), board(), &fuses()).unwrap();
    let b = judge_flash_bin(&other_spl, board(), &fuses()).unwrap();
    assert_ne!(a.identity, b.identity);
    assert_eq!(a.identity, medium::identity(image(1)));
}

/// The shim's boot flow over `dev` (its own code, its own window), as the firmware runs it.
fn shim_verdict(dev: &MemDevice) -> CopyReport {
    struct Disk<'a>(&'a [u8]);
    impl BlockRead for Disk<'_> {
        fn block_count(&self) -> u64 {
            self.0.len() as u64 / 512
        }
        fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MediaError> {
            let start = lba as usize * 512;
            let src = self
                .0
                .get(start..start + buf.len())
                .ok_or(MediaError::OutOfRange {
                    lba,
                    len: buf.len(),
                })?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }
    struct Nothing;
    impl Clock for Nothing {
        fn ticks(&self) -> u64 {
            0
        }
        fn frequency_hz(&self) -> u64 {
            1
        }
    }
    impl WatchdogService for Nothing {
        fn service(&mut self) {}
    }
    let mut bytes = vec![0u8; dev.size() as usize];
    dev.read_at(0, &mut bytes).unwrap();
    let mut disk = Disk(&bytes);
    let mut hab = SoftwareHab { fuses: fuses() };
    let mut log = String::new();
    let mut window = vec![0u8; board().memory.fit_window.size as usize];
    let mut hw = Hardware {
        disk: &mut disk,
        hab: &mut hab,
        clock: &Nothing,
        watchdog: &mut Nothing,
        console: &mut log,
    };
    let mem = Memory {
        window: &mut window,
        window_base: board().memory.fit_window.start,
        shim: &[],
    };
    run(board(), Rules::of(&fuses()), &mut hw, mem, RomInfo::UNKNOWN)
        .record
        .primary
}

/// The regions of a signed flash.bin, as byte ranges.
fn regions(fb: &[u8]) -> Vec<(&'static str, std::ops::Range<usize>)> {
    let csf = spl_csf_offset(fb);
    let spl_end = u32::from_le_bytes(fb[0x24..0x28].try_into().unwrap()) as usize;
    let fit_off = board().media.fit_offset as usize;
    let fit = SignedFit::parse(&fb[fit_off..]).unwrap();
    let ivt = fit_off + fit.ivt_offset as usize;
    let fit_csf = fit_off + fit.csf_offset as usize;
    let fit_end = fit_off + fit.signed_len() as usize;
    vec![
        ("SPL IVT", 0..0x20),
        ("boot data", 0x20..0x2C),
        ("SPL code", 0x40..csf),
        ("SPL CSF", csf..csf + 0x600),
        ("padding", spl_end..fit_off),
        ("FIT", fit_off..ivt),
        ("FIT IVT", ivt..ivt + 0x20),
        ("FIT CSF", fit_csf..fit_end),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Every mutant gets one verdict from `verify`, `update --dry-run`, `status` and the shim.
    #[test]
    fn every_path_gives_a_mutant_the_same_verdict(
        region in 0usize..8,
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let mut fb = image(1).to_vec();
        let rs = regions(&fb);
        let (name, range) = rs[region].clone();
        let offset = range.start + at.index(range.len());
        fb[offset] ^= mask;

        let verify = judge_flash_bin(&fb, board(), &fuses()).map_err(|f| f.class());
        let update = NewImage::check(fb.clone(), board(), &fuses()).map_err(|r| match r {
            Refusal::ImageRejected(f) => f.class(),
            other => panic!("{name}: unexpected refusal {other}"),
        });
        let dev = medium(Layout { primary: Some(&fb), secondary: Some(image(2)), sit: true });
        let state = MediaState::read(&dev, board(), &fuses()).unwrap();
        let status = state.primary.judgement.as_ref().map_err(|f| f.class());
        let shim = match shim_verdict(&dev) {
            CopyReport::Authentic { .. } => Ok(()),
            CopyReport::Rejected { class, .. } => Err(class),
            CopyReport::NotExamined => panic!("the primary is always examined"),
        };
        let verdicts = [verify.map(drop), update.map(drop), status.map(drop), shim];
        prop_assert!(
            verdicts.iter().all(|v| *v == verdicts[0]),
            "{name} byte {offset:#x} ^ {mask:#x}: verify {:?}, update {:?}, status {:?}, shim {:?}",
            verdicts[0], verdicts[1], verdicts[2], verdicts[3]
        );
        // The prediction is the shim's: slot 1 exactly when the primary passes.
        let expected = if verdicts[0].is_ok() { Slot::Primary } else { Slot::Secondary };
        prop_assert_eq!(state.decision().slot, Some(expected));
        // Signed bytes never pass altered; only the unsigned padding may.
        if name != "padding" && name != "SPL CSF" && name != "FIT CSF" {
            prop_assert!(verdicts[0].is_err(), "{name} byte {offset:#x} ^ {mask:#x} accepted");
        }
    }
}
