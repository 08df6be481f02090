//! The partition-table reader (issue 12, item 1): DOS tables with primary, extended and logical
//! partitions, protective MBR and GPT (primary and backup, each damaged in turn), 512- and
//! 4096-byte logical blocks, a 16 GiB sparse image, and arbitrary bytes that must never make it
//! panic. Every medium is built byte by byte here; when `sgdisk` and `sfdisk` are installed the
//! interop tests also read tables those tools wrote.

use std::ops::Range;
use std::path::Path;
use std::process::Command;

use boards::AN12900_LAYOUT;
use proptest::prelude::*;
use ubootctl::blockdev::{BlockDevice, FileDevice, MemDevice};
use ubootctl::partitions::{
    Conflict, Damage, DosRole, EbrProblem, GptCopy, GptProblem, Guid, PartitionKind, PartitionMap,
    TableKind, conflicts, read_partition_map,
};

const MIB: u64 = 1 << 20;
const LINUX_FS: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const EFI_SYSTEM: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

// ---------------------------------------------------------------------------------------------
// The standard layout (design.md §4)

/// The three byte ranges `ubootctl` writes on the standard layout.
fn boot_ranges() -> [(&'static str, Range<u64>); 3] {
    let l = AN12900_LAYOUT;
    let slot = u64::from(l.standard_first_sector) * 512;
    let sit = l.sit_offset();
    let primary = l.primary_offset();
    let secondary = l
        .secondary_offset(l.standard_first_sector)
        .expect("standard secondary");
    [
        ("SIT", sit..sit + 512),
        ("primary", primary..primary + slot),
        ("secondary", secondary..secondary + slot),
    ]
}

#[test]
fn the_boot_ranges_are_those_of_design_md_section_4() {
    let [(_, sit), (_, primary), (_, secondary)] = boot_ranges();
    assert_eq!(sit, 0x8200..0x8400);
    assert_eq!(primary, 0x8400..0x208400);
    assert_eq!(secondary, 0x208400..0x408400);
}

fn assert_boot_area_free(map: &PartitionMap, size: u64) {
    for (what, r) in boot_ranges() {
        let c = conflicts(map, r.clone(), size);
        assert!(c.is_empty(), "{what} {r:x?}: {c:#?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Building media

/// Writes a DOS table (MBR or EBR) of up to four `(type, start, sectors)` entries at `lba`.
fn write_dos<D: BlockDevice>(dev: &mut D, lba: u64, entries: &[(u8, u32, u32)]) {
    let mut s = [0u8; 512];
    for (i, &(kind, start, sectors)) in entries.iter().enumerate() {
        let e = &mut s[446 + 16 * i..462 + 16 * i];
        e[4] = kind;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&sectors.to_le_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xAA;
    let bs = u64::from(dev.logical_block_size());
    dev.write_at(lba * bs, &s).unwrap();
}

/// A GPT partition for [`write_gpt`].
struct Part<'a> {
    first: u64,
    last: u64,
    type_guid: &'a str,
    name: &'a str,
}

/// The GPT header and entry array of one copy, CRCs filled in.
fn gpt_copy(
    bs: u64,
    blocks: u64,
    backup: bool,
    entries: &[u8],
    array_blocks: u64,
) -> (u64, Vec<u8>, u64) {
    let last = blocks - 1;
    let (my, alt, array_lba) = if backup {
        (last, 1, last - array_blocks)
    } else {
        (1, last, 2)
    };
    let mut h = vec![0u8; bs as usize];
    h[0..8].copy_from_slice(b"EFI PART");
    h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[24..32].copy_from_slice(&my.to_le_bytes());
    h[32..40].copy_from_slice(&alt.to_le_bytes());
    h[40..48].copy_from_slice(&(2 + array_blocks).to_le_bytes());
    h[48..56].copy_from_slice(&(last - 1 - array_blocks).to_le_bytes());
    h[56..72].copy_from_slice(&[0x5A; 16]);
    h[72..80].copy_from_slice(&array_lba.to_le_bytes());
    h[80..84].copy_from_slice(&128u32.to_le_bytes());
    h[84..88].copy_from_slice(&128u32.to_le_bytes());
    h[88..92].copy_from_slice(&crc32fast::hash(entries).to_le_bytes());
    fix_header_crc(&mut h);
    (my, h, array_lba)
}

/// Recomputes the CRC32 of the 92-byte header at the start of `h`.
fn fix_header_crc(h: &mut [u8]) {
    h[16..20].fill(0);
    let crc = crc32fast::hash(&h[..92]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
}

/// Writes a protective MBR and both GPT copies (128 entries of 128 bytes) holding `parts`.
fn write_gpt<D: BlockDevice>(dev: &mut D, parts: &[Part]) {
    let bs = u64::from(dev.logical_block_size());
    let blocks = dev.size() / bs;
    let pmbr_sectors = u32::try_from(blocks - 1).unwrap_or(u32::MAX);
    write_dos(dev, 0, &[(0xEE, 1, pmbr_sectors)]);
    let mut entries = vec![0u8; 128 * 128];
    for (i, p) in parts.iter().enumerate() {
        let e = &mut entries[128 * i..128 * (i + 1)];
        e[0..16].copy_from_slice(&Guid::parse(p.type_guid).unwrap().0);
        e[16..32].copy_from_slice(&[i as u8 + 1; 16]);
        e[32..40].copy_from_slice(&p.first.to_le_bytes());
        e[40..48].copy_from_slice(&p.last.to_le_bytes());
        for (j, u) in p.name.encode_utf16().enumerate() {
            e[56 + 2 * j..58 + 2 * j].copy_from_slice(&u.to_le_bytes());
        }
    }
    let array_blocks = (128 * 128) / bs;
    for backup in [false, true] {
        let (lba, header, array_lba) = gpt_copy(bs, blocks, backup, &entries, array_blocks);
        dev.write_at(lba * bs, &header).unwrap();
        dev.write_at(array_lba * bs, &entries).unwrap();
    }
}

/// The usual two-partition GPT of an i.MX SD card: boot (FAT) at 8 MiB, rootfs after it.
fn standard_gpt(dev: &mut MemDevice) {
    let bs = u64::from(dev.logical_block_size());
    let blocks = dev.size() / bs;
    let first = 8 * MIB / bs;
    let rootfs = first + 16 * MIB / bs;
    write_gpt(
        dev,
        &[
            Part {
                first,
                last: rootfs - 1,
                type_guid: EFI_SYSTEM,
                name: "boot",
            },
            Part {
                first: rootfs,
                last: blocks - 34,
                type_guid: LINUX_FS,
                name: "rootfs",
            },
        ],
    );
}

fn kinds(map: &PartitionMap) -> Vec<(TableKind, Range<u64>, bool)> {
    map.tables
        .iter()
        .map(|t| (t.kind, t.range.clone(), t.intact))
        .collect()
}

fn numbers(map: &PartitionMap) -> Vec<(u32, Range<u64>)> {
    map.partitions
        .iter()
        .map(|p| (p.number, p.range.clone()))
        .collect()
}

fn messages(c: &[Conflict]) -> Vec<String> {
    c.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// DOS

#[test]
fn a_dos_partition_at_8_mib_leaves_the_boot_area_free() {
    let mut dev = MemDevice::new(64 << 20);
    write_dos(&mut dev, 0, &[(0x83, 16384, 131072 - 16384)]);
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(numbers(&map), [(1, 8 * MIB..64 * MIB)]);
    assert_eq!(kinds(&map), [(TableKind::Mbr, 0..512, true)]);
    assert!(map.damage.is_empty(), "{:?}", map.damage);
    assert_boot_area_free(&map, dev.size());

    // The byte before the partition is free, the first byte of it is not.
    assert!(conflicts(&map, 0x40_0000..8 * MIB, dev.size()).is_empty());
    let c = conflicts(&map, 0x40_0000..8 * MIB + 1, dev.size());
    assert_eq!(
        messages(&c),
        [
            "bytes 0x400000..0x800001 overlap DOS partition 1 (type 0x83, Linux) at 0x800000..0x4000000"
        ]
    );
    // The MBR is a table.
    let c = conflicts(&map, 0x1b0..0x1c0, dev.size());
    assert_eq!(
        messages(&c),
        ["bytes 0x1b0..0x1c0 overlap the MBR at 0x0..0x200"]
    );
}

#[test]
fn a_dos_partition_over_the_secondary_slot_is_named() {
    let mut dev = MemDevice::new(64 << 20);
    // A FAT partition from 3 MiB to 8 MiB: over the secondary (0x208400..0x408400) only.
    write_dos(
        &mut dev,
        0,
        &[(0x0c, 6144, 10240), (0x83, 16384, 131072 - 16384)],
    );
    let map = read_partition_map(&dev).unwrap();
    let [(_, sit), (_, primary), (_, secondary)] = boot_ranges();
    assert!(conflicts(&map, sit, dev.size()).is_empty());
    assert!(conflicts(&map, primary, dev.size()).is_empty());
    let c = conflicts(&map, secondary, dev.size());
    assert_eq!(
        messages(&c),
        [
            "bytes 0x208400..0x408400 overlap DOS partition 1 (type 0x0c, W95 FAT32 (LBA)) \
          at 0x300000..0x800000"
        ]
    );
    match &c[0] {
        Conflict::Partition { partition, range } => {
            assert_eq!(partition.number, 1);
            assert_eq!(*range, 0x208400..0x408400);
            assert_eq!(
                partition.kind,
                PartitionKind::Dos {
                    type_byte: 0x0c,
                    role: DosRole::Primary
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_range_past_the_device_end_is_reported() {
    let mut dev = MemDevice::new(4 << 20);
    write_dos(&mut dev, 0, &[(0x83, 6144, 2048)]);
    let map = read_partition_map(&dev).unwrap();
    let [_, _, (_, secondary)] = boot_ranges();
    let c = conflicts(&map, secondary, dev.size());
    assert_eq!(
        messages(&c),
        [
            "bytes 0x208400..0x408400 extend past the end of the device (0x400000 bytes)",
            "bytes 0x208400..0x408400 overlap DOS partition 1 (type 0x83, Linux) at 0x300000..0x400000",
        ]
    );
    // An empty range touches nothing, even past the end.
    assert!(conflicts(&map, 0x300000..0x300000, dev.size()).is_empty());
    assert!(conflicts(&map, u64::MAX..u64::MAX, dev.size()).is_empty());
    #[allow(clippy::reversed_empty_ranges)]
    let inverted = 0x30_0001..0x30_0000;
    assert!(conflicts(&map, inverted, dev.size()).is_empty());
}

#[test]
fn a_partition_past_the_device_end_is_damage() {
    let mut dev = MemDevice::new(8 << 20);
    write_dos(&mut dev, 0, &[(0x83, 8192, 1 << 20)]);
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(numbers(&map), [(1, 4 * MIB..516 * MIB)]);
    assert!(matches!(&map.damage[..], [Damage::PartitionPastEnd(p)] if p.number == 1));
    assert_eq!(
        map.damage[0].to_string(),
        "DOS partition 1 (type 0x83, Linux) at 0x400000..0x20400000 extends past the end of the device"
    );
}

#[test]
fn a_boot_sector_is_not_a_partition_table() {
    let mut dev = MemDevice::new(8 << 20);
    write_dos(&mut dev, 0, &[(0x83, 8192, 2048)]);
    dev.bytes_mut()[446] = 0x29; // a boot indicator that is neither 0 nor 0x80
    let map = read_partition_map(&dev).unwrap();
    assert!(map.is_unpartitioned());
    assert_eq!(map.damage, [Damage::MbrNotATable]);
}

#[test]
fn a_blank_device_has_no_tables() {
    for size in [0, 100, 512, 1536, 8 << 20] {
        let dev = MemDevice::new(size);
        let map = read_partition_map(&dev).unwrap();
        assert!(map.is_unpartitioned(), "{size}: {map:?}");
        assert!(map.damage.is_empty(), "{size}: {map:?}");
        assert_eq!(map.to_string(), "no partition table");
    }
}

// ---------------------------------------------------------------------------------------------
// Extended and logical partitions

/// MBR: 1 = Linux at 8 MiB (8 MiB), 2 = extended at 16 MiB (32 MiB); EBRs at 16 MiB and
/// 24 MiB describe logical 5 (16 MiB + 1 MiB, 4 MiB) and 6 (24 MiB + 1 MiB, 4 MiB).
fn logical_medium() -> MemDevice {
    let mut dev = MemDevice::new(64 << 20);
    write_dos(&mut dev, 0, &[(0x83, 16384, 16384), (0x05, 32768, 65536)]);
    write_dos(&mut dev, 32768, &[(0x83, 2048, 8192), (0x05, 16384, 10240)]);
    write_dos(&mut dev, 32768 + 16384, &[(0x82, 2048, 8192)]);
    dev
}

#[test]
fn logical_partitions_are_read_through_the_ebr_chain() {
    let dev = logical_medium();
    let map = read_partition_map(&dev).unwrap();
    assert!(map.damage.is_empty(), "{:?}", map.damage);
    assert_eq!(
        numbers(&map),
        [
            (1, 8 * MIB..16 * MIB),
            (2, 16 * MIB..48 * MIB),
            (5, 17 * MIB..21 * MIB),
            (6, 25 * MIB..29 * MIB),
        ]
    );
    assert_eq!(
        kinds(&map),
        [
            (TableKind::Mbr, 0..512, true),
            (
                TableKind::Ebr { logical: Some(5) },
                16 * MIB..16 * MIB + 512,
                true
            ),
            (
                TableKind::Ebr { logical: Some(6) },
                24 * MIB..24 * MIB + 512,
                true
            ),
        ]
    );
    assert_boot_area_free(&map, dev.size());
    let c = conflicts(&map, 24 * MIB..25 * MIB + 1, dev.size());
    assert_eq!(
        messages(&c),
        [
            "bytes 0x1800000..0x1900001 overlap the EBR of logical partition 6 at 0x1800000..0x1800200",
            "bytes 0x1800000..0x1900001 overlap DOS extended partition 2 (type 0x05, Extended) \
             at 0x1000000..0x3000000",
            "bytes 0x1800000..0x1900001 overlap DOS logical partition 6 (type 0x82, Linux swap) \
             at 0x1900000..0x1d00000",
        ]
    );
}

#[test]
fn a_looping_ebr_chain_stops_and_is_reported() {
    // The second EBR links back to the first.
    let mut dev = logical_medium();
    write_dos(
        &mut dev,
        32768 + 16384,
        &[(0x82, 2048, 8192), (0x05, 0, 16384)],
    );
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(
        numbers(&map).iter().map(|p| p.0).collect::<Vec<_>>(),
        [1, 2, 5, 6]
    );
    assert_eq!(
        map.damage,
        [Damage::Ebr {
            lba: 32768,
            problem: EbrProblem::Loop
        }]
    );
    assert_eq!(
        map.damage[0].to_string(),
        "the EBR at LBA 32768 was already read: the EBR chain loops; logical partitions after \
         it are unknown"
    );

    // An EBR linking to itself.
    let mut dev = logical_medium();
    write_dos(&mut dev, 32768, &[(0x83, 2048, 8192), (0x0f, 0, 10240)]);
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(numbers(&map).len(), 3);
    assert!(matches!(
        map.damage[..],
        [Damage::Ebr {
            problem: EbrProblem::Loop,
            ..
        }]
    ));
}

#[test]
fn a_long_ebr_chain_is_bounded() {
    // 200 EBRs, one per sector, each linking to the next, each with a one-sector logical.
    let mut dev = MemDevice::new(8 << 20);
    write_dos(&mut dev, 0, &[(0x05, 2048, 4096)]);
    for i in 0..200u32 {
        write_dos(
            &mut dev,
            2048 + 2 * u64::from(i),
            &[(0x83, 1, 1), (0x05, 2 * (i + 1), 2)],
        );
    }
    let map = read_partition_map(&dev).unwrap();
    let logical = map
        .partitions
        .iter()
        .filter(|p| {
            matches!(
                p.kind,
                PartitionKind::Dos {
                    role: DosRole::Logical,
                    ..
                }
            )
        })
        .count();
    assert_eq!(logical, ubootctl::partitions::MAX_EBRS);
    assert!(matches!(
        map.damage[..],
        [Damage::Ebr {
            problem: EbrProblem::TooLong,
            ..
        }]
    ));
}

#[test]
fn a_broken_ebr_chain_keeps_what_was_read() {
    // The second EBR lacks its signature; a third link points past the end of the device.
    let mut dev = logical_medium();
    dev.bytes_mut()[(24 * MIB) as usize + 510] = 0;
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(
        numbers(&map).iter().map(|p| p.0).collect::<Vec<_>>(),
        [1, 2, 5]
    );
    assert_eq!(
        map.damage,
        [Damage::Ebr {
            lba: 49152,
            problem: EbrProblem::BadSignature
        }]
    );

    let mut dev = logical_medium();
    write_dos(
        &mut dev,
        32768,
        &[(0x83, 2048, 8192), (0x05, 0x1000_0000, 8)],
    );
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(
        map.damage,
        [Damage::Ebr {
            lba: 32768 + 0x1000_0000,
            problem: EbrProblem::OutsideDevice
        }]
    );

    // An empty extended partition (no EBR at all) is not damage.
    let mut dev = MemDevice::new(64 << 20);
    write_dos(&mut dev, 0, &[(0x85, 32768, 8192)]);
    let map = read_partition_map(&dev).unwrap();
    assert!(map.damage.is_empty(), "{:?}", map.damage);
    assert_eq!(numbers(&map), [(1, 16 * MIB..20 * MIB)]);
}

// ---------------------------------------------------------------------------------------------
// GPT

#[test]
fn a_gpt_with_both_copies_reports_every_table() {
    let mut dev = MemDevice::new(64 << 20);
    standard_gpt(&mut dev);
    let map = read_partition_map(&dev).unwrap();
    assert!(map.damage.is_empty(), "{:?}", map.damage);
    assert!(map.has_gpt());
    let end = 64 * MIB;
    assert_eq!(
        kinds(&map),
        [
            (TableKind::ProtectiveMbr, 0..0x200, true),
            (TableKind::GptHeader(GptCopy::Primary), 0x200..0x400, true),
            (TableKind::GptEntries(GptCopy::Primary), 0x400..0x4400, true),
            (
                TableKind::GptHeader(GptCopy::Backup),
                end - 0x200..end,
                true
            ),
            (
                TableKind::GptEntries(GptCopy::Backup),
                end - 0x4200..end - 0x200,
                true
            ),
        ]
    );
    assert_eq!(
        numbers(&map),
        [(1, 8 * MIB..24 * MIB), (2, 24 * MIB..end - 0x4200)]
    );
    let PartitionKind::Gpt { type_guid, name } = &map.partitions[1].kind else {
        panic!("{:?}", map.partitions[1]);
    };
    assert_eq!(
        (type_guid.to_string().as_str(), name.as_str()),
        (LINUX_FS, "rootfs")
    );
    // The boot area lies between the primary entry array and the first partition.
    assert_boot_area_free(&map, dev.size());

    let c = conflicts(&map, 0x300..0x8400, dev.size());
    assert_eq!(
        messages(&c),
        [
            "bytes 0x300..0x8400 overlap the primary GPT header at 0x200..0x400",
            "bytes 0x300..0x8400 overlap the primary GPT entry array at 0x400..0x4400",
        ]
    );
    let c = conflicts(&map, 23 * MIB..25 * MIB, dev.size());
    assert_eq!(
        messages(&c),
        [
            "bytes 0x1700000..0x1900000 overlap GPT partition 1 \"boot\" (EFI System) \
             at 0x800000..0x1800000",
            "bytes 0x1700000..0x1900000 overlap GPT partition 2 \"rootfs\" (Linux filesystem) \
             at 0x1800000..0x3ffbe00",
        ]
    );
}

#[test]
fn a_corrupted_primary_gpt_falls_back_to_the_backup_and_says_so() {
    let mut clean = MemDevice::new(64 << 20);
    standard_gpt(&mut clean);
    let want = read_partition_map(&clean).unwrap().partitions;

    // A flipped bit in the primary header.
    let mut dev = clean.clone();
    dev.bytes_mut()[0x200 + 40] ^= 1;
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(map.partitions, want);
    let [
        Damage::Gpt {
            copy: GptCopy::Primary,
            lba: 1,
            problem: GptProblem::HeaderCrc { .. },
        },
    ] = &map.damage[..]
    else {
        panic!("{:?}", map.damage);
    };
    assert!(
        map.damage[0]
            .to_string()
            .starts_with("the primary GPT (LBA 1) is not usable: header CRC32 0x"),
        "{}",
        map.damage[0]
    );
    // Where the primary belongs is still reported, as damaged.
    let t = kinds(&map);
    assert!(t.contains(&(TableKind::GptHeader(GptCopy::Primary), 0x200..0x400, false)));
    assert!(t.contains(&(
        TableKind::GptEntries(GptCopy::Primary),
        0x400..0x4400,
        false
    )));
    let c = conflicts(&map, 0x200..0x201, dev.size());
    assert_eq!(
        messages(&c),
        ["bytes 0x200..0x201 overlap the primary GPT header at 0x200..0x400 (damaged or missing)"]
    );

    // A flipped bit in the primary entry array.
    let mut dev = clean.clone();
    dev.bytes_mut()[0x400 + 33] ^= 0x80;
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(map.partitions, want);
    assert!(matches!(
        map.damage[..],
        [Damage::Gpt {
            copy: GptCopy::Primary,
            problem: GptProblem::EntriesCrc { .. },
            ..
        }]
    ));

    // The primary header wiped entirely.
    let mut dev = clean.clone();
    dev.bytes_mut()[0x200..0x400].fill(0);
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(map.partitions, want);
    assert_eq!(
        map.damage,
        [Damage::Gpt {
            copy: GptCopy::Primary,
            lba: 1,
            problem: GptProblem::Missing
        }]
    );
    assert!(
        map.tables
            .iter()
            .any(|t| t.kind == TableKind::GptEntries(GptCopy::Primary)
                && t.range == (0x400..0x4400)
                && !t.intact)
    );
}

#[test]
fn a_corrupted_backup_gpt_is_reported_and_the_primary_used() {
    let mut dev = MemDevice::new(64 << 20);
    standard_gpt(&mut dev);
    let want = read_partition_map(&dev).unwrap().partitions;
    let last = (64 << 20) / 512 - 1;
    dev.bytes_mut()[(64 << 20) - 512 + 90] ^= 4;
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(map.partitions, want);
    assert!(matches!(
        &map.damage[..],
        [Damage::Gpt { copy: GptCopy::Backup, lba, problem: GptProblem::HeaderCrc { .. } }] if *lba == last
    ));
    // The backup entry array is placed from the primary's size.
    let end = 64 * MIB;
    assert!(kinds(&map).contains(&(
        TableKind::GptEntries(GptCopy::Backup),
        end - 0x4200..end - 0x200,
        false
    )));
}

#[test]
fn a_protective_mbr_without_a_readable_gpt_claims_the_whole_disk() {
    let mut dev = MemDevice::new(64 << 20);
    standard_gpt(&mut dev);
    dev.bytes_mut()[0x200 + 40] ^= 1;
    let n = dev.bytes().len();
    dev.bytes_mut()[n - 512 + 40] ^= 1;
    let map = read_partition_map(&dev).unwrap();
    assert!(!map.has_gpt());
    assert!(
        map.damage.contains(&Damage::GptUnreadable),
        "{:?}",
        map.damage
    );
    assert_eq!(numbers(&map), [(1, 512..64 * MIB)]);
    let [(_, sit), ..] = boot_ranges();
    let c = conflicts(&map, sit, dev.size());
    assert_eq!(
        messages(&c),
        [
            "bytes 0x8200..0x8400 overlap DOS partition 1 (type 0xee, GPT protective) at 0x200..0x4000000"
        ]
    );
}

#[test]
fn differing_gpt_copies_list_both() {
    let mut dev = MemDevice::new(64 << 20);
    standard_gpt(&mut dev);
    // Rewrite the backup alone with a third partition over the secondary slot.
    let mut other = MemDevice::new(64 << 20);
    write_gpt(
        &mut other,
        &[Part {
            first: 4096,
            last: 16383,
            type_guid: LINUX_FS,
            name: "stale",
        }],
    );
    let n = dev.bytes().len();
    dev.bytes_mut()[n - 0x4200..].copy_from_slice(&other.bytes()[n - 0x4200..]);
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(map.damage, [Damage::GptCopiesDiffer]);
    assert_eq!(
        numbers(&map),
        [
            (1, 8 * MIB..24 * MIB),
            (2, 24 * MIB..64 * MIB - 0x4200),
            (1, 2 * MIB..8 * MIB)
        ]
    );
    let [_, _, (_, secondary)] = boot_ranges();
    assert_eq!(conflicts(&map, secondary, dev.size()).len(), 1);
}

#[test]
fn a_gpt_on_a_grown_device_finds_the_backup_where_the_primary_says() {
    // A 32 MiB image written to a 64 MiB card.
    let mut small = MemDevice::new(32 << 20);
    write_gpt(
        &mut small,
        &[Part {
            first: 16384,
            last: 65536 - 34,
            type_guid: LINUX_FS,
            name: "rootfs",
        }],
    );
    let mut dev = MemDevice::new(64 << 20);
    dev.bytes_mut()[..32 << 20].copy_from_slice(small.bytes());
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(
        map.damage,
        [Damage::GptBackupNotAtEnd {
            lba: 65535,
            last_lba: 131071
        }]
    );
    assert!(kinds(&map).contains(&(
        TableKind::GptHeader(GptCopy::Backup),
        32 * MIB - 512..32 * MIB,
        true
    )));
    // Then the grown copy's primary is lost: the backup is no longer found.
    dev.bytes_mut()[0x200..0x400].fill(0);
    let map = read_partition_map(&dev).unwrap();
    assert!(
        map.damage.contains(&Damage::GptUnreadable),
        "{:?}",
        map.damage
    );
}

#[test]
fn a_crc_valid_gpt_header_with_absurd_fields_is_damage_not_a_panic() {
    let mut clean = MemDevice::new(1 << 20);
    write_gpt(&mut clean, &[]);
    let cases: [(usize, &[u8], GptProblem); 6] = [
        (12, &600u32.to_le_bytes(), GptProblem::HeaderSize(600)),
        (24, &7u64.to_le_bytes(), GptProblem::WrongLba { stored: 7 }),
        (
            84,
            &0x8000_0000u32.to_le_bytes(),
            GptProblem::EntrySize(0x8000_0000),
        ),
        (84, &384u32.to_le_bytes(), GptProblem::EntrySize(384)),
        (
            80,
            &u32::MAX.to_le_bytes(),
            GptProblem::ArrayTooLarge {
                entries: u32::MAX,
                entry_size: 128,
            },
        ),
        (
            72,
            &u64::MAX.to_le_bytes(),
            GptProblem::ArrayMisplaced {
                lba: u64::MAX,
                blocks: 32,
            },
        ),
    ];
    for (at, bytes, want) in cases {
        let mut dev = clean.clone();
        let h = &mut dev.bytes_mut()[0x200..0x400];
        h[at..at + bytes.len()].copy_from_slice(bytes);
        fix_header_crc(h);
        let map = read_partition_map(&dev).unwrap();
        assert_eq!(
            map.damage,
            [Damage::Gpt {
                copy: GptCopy::Primary,
                lba: 1,
                problem: want.clone()
            }],
            "{want:?}"
        );
    }
    // An inverted entry and one that ends at LBA u64::MAX.
    let mut dev = MemDevice::new(1 << 20);
    write_gpt(
        &mut dev,
        &[
            Part {
                first: 100,
                last: 50,
                type_guid: LINUX_FS,
                name: "inverted",
            },
            Part {
                first: 1000,
                last: u64::MAX,
                type_guid: LINUX_FS,
                name: "huge",
            },
        ],
    );
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(numbers(&map), [(2, 1000 * 512..u64::MAX)]);
    assert_eq!(
        map.damage[0],
        Damage::GptEntryInverted {
            copy: GptCopy::Primary,
            number: 1,
            first_lba: 100,
            last_lba: 50
        }
    );
    assert!(matches!(map.damage[1], Damage::PartitionPastEnd(_)));
    assert_eq!(map.damage.len(), 2);
}

#[test]
fn a_gpt_without_a_protective_mbr_is_still_reported() {
    let mut dev = MemDevice::new(64 << 20);
    standard_gpt(&mut dev);
    dev.bytes_mut()[..512].fill(0);
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(map.damage, [Damage::GptWithoutProtectiveMbr]);
    assert_eq!(map.partitions.len(), 2);
    assert_eq!(map.tables.len(), 4);
}

#[test]
fn a_hybrid_mbr_lists_its_dos_entries_beside_the_gpt() {
    let mut dev = MemDevice::new(64 << 20);
    standard_gpt(&mut dev);
    write_dos(&mut dev, 0, &[(0xEE, 1, 16383), (0x0c, 16384, 32768)]);
    let map = read_partition_map(&dev).unwrap();
    assert!(map.damage.is_empty(), "{:?}", map.damage);
    assert_eq!(map.tables[0].kind, TableKind::ProtectiveMbr);
    assert_eq!(
        map.partitions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "GPT partition 1 \"boot\" (EFI System) at 0x800000..0x1800000",
            "GPT partition 2 \"rootfs\" (Linux filesystem) at 0x1800000..0x3ffbe00",
            "DOS partition 2 (type 0x0c, W95 FAT32 (LBA)) at 0x800000..0x1800000",
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// 4096-byte logical blocks

#[test]
fn lbas_are_in_4096_byte_blocks_on_a_4k_device() {
    let mut dev = MemDevice::new(64 << 20).with_block_size(4096);
    standard_gpt(&mut dev);
    let map = read_partition_map(&dev).unwrap();
    assert!(map.damage.is_empty(), "{:?}", map.damage);
    assert_eq!(map.block_size, 4096);
    let end = 64 * MIB;
    assert_eq!(
        kinds(&map),
        [
            (TableKind::ProtectiveMbr, 0..0x1000, true),
            (TableKind::GptHeader(GptCopy::Primary), 0x1000..0x2000, true),
            (
                TableKind::GptEntries(GptCopy::Primary),
                0x2000..0x6000,
                true
            ),
            (
                TableKind::GptHeader(GptCopy::Backup),
                end - 0x1000..end,
                true
            ),
            (
                TableKind::GptEntries(GptCopy::Backup),
                end - 0x5000..end - 0x1000,
                true
            ),
        ]
    );
    assert_eq!(
        numbers(&map),
        [(1, 8 * MIB..24 * MIB), (2, 24 * MIB..end - 33 * 4096)]
    );
    assert_boot_area_free(&map, dev.size());

    // The same bytes read with 512-byte blocks hold no GPT where one is looked for.
    let as_512 = MemDevice::from_bytes(dev.bytes().to_vec());
    let map = read_partition_map(&as_512).unwrap();
    assert!(!map.has_gpt());
    assert!(map.damage.contains(&Damage::GptUnreadable));

    // DOS entries count 4096-byte blocks too.
    let mut dev = MemDevice::new(64 << 20).with_block_size(4096);
    write_dos(&mut dev, 0, &[(0x83, 2048, 4096), (0x05, 8192, 4096)]);
    write_dos(&mut dev, 8192, &[(0x83, 256, 512)]);
    let map = read_partition_map(&dev).unwrap();
    assert_eq!(
        numbers(&map),
        [
            (1, 8 * MIB..24 * MIB),
            (2, 32 * MIB..48 * MIB),
            (5, 33 * MIB..35 * MIB)
        ]
    );
    assert_eq!(
        kinds(&map),
        [
            (TableKind::Mbr, 0..4096, true),
            (
                TableKind::Ebr { logical: Some(5) },
                32 * MIB..32 * MIB + 4096,
                true
            ),
        ]
    );
}

#[test]
fn an_unusable_block_size_is_an_error() {
    for bs in [0, 256, 1000, 1 << 17] {
        let dev = MemDevice::new(1 << 20).with_block_size(bs);
        assert!(read_partition_map(&dev).is_err(), "{bs}");
    }
}

// ---------------------------------------------------------------------------------------------
// A 16 GiB sparse image

#[test]
fn a_16_gib_sparse_image_with_a_rootfs_at_8_mib() {
    const SIZE: u64 = 16 << 30;
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().set_len(SIZE).unwrap();
    {
        let mut dev = FileDevice::open_buffered(file.path()).unwrap();
        assert_eq!(dev.size(), SIZE);
        let blocks = SIZE / 512;
        write_gpt(
            &mut dev,
            &[Part {
                first: 16384,
                last: blocks - 34,
                type_guid: LINUX_FS,
                name: "rootfs",
            }],
        );
        dev.flush().unwrap();
    }
    let dev = FileDevice::open_read_only(file.path()).unwrap();
    let map = read_partition_map(&dev).unwrap();
    assert!(map.damage.is_empty(), "{:?}", map.damage);
    assert_eq!(numbers(&map), [(1, 8 * MIB..SIZE - 0x4200)]);
    assert_eq!(
        kinds(&map)[3..],
        [
            (
                TableKind::GptHeader(GptCopy::Backup),
                SIZE - 0x200..SIZE,
                true
            ),
            (
                TableKind::GptEntries(GptCopy::Backup),
                SIZE - 0x4200..SIZE - 0x200,
                true
            ),
        ]
    );
    assert_boot_area_free(&map, SIZE);
    let c = conflicts(&map, SIZE - 0x1000..SIZE + 0x1000, SIZE);
    assert_eq!(
        messages(&c),
        [
            "bytes 0x3fffff000..0x400001000 extend past the end of the device (0x400000000 bytes)",
            "bytes 0x3fffff000..0x400001000 overlap the backup GPT header at 0x3fffffe00..0x400000000",
            "bytes 0x3fffff000..0x400001000 overlap the backup GPT entry array \
             at 0x3ffffbe00..0x3fffffe00",
        ]
    );
    let c = conflicts(&map, SIZE - 0x4201..SIZE - 0x4200, SIZE);
    assert_eq!(
        messages(&c),
        [
            "bytes 0x3ffffbdff..0x3ffffbe00 overlap GPT partition 1 \"rootfs\" (Linux filesystem) \
          at 0x800000..0x3ffffbe00"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Tables written by sgdisk and sfdisk (when installed)

fn tool(name: &str) -> bool {
    let found = Command::new(name).arg("--version").output().is_ok();
    if !found {
        eprintln!("skipped: {name} is not installed (apt-get install gdisk fdisk)");
    }
    found
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn image(path: &Path, size: u64) {
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
}

#[test]
fn sgdisk_gpt_is_read() {
    if !tool("sgdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("gpt.img");
    image(&img, 64 << 20);
    run(Command::new("sgdisk")
        .args(["-n", "1:16384:+16M", "-t", "1:ef00", "-c", "1:boot"])
        .args(["-n", "2:0:0", "-t", "2:8300", "-c", "2:rootfs"])
        .arg(&img));
    let dev = MemDevice::from_bytes(std::fs::read(&img).unwrap());
    let map = read_partition_map(&dev).unwrap();
    assert!(map.damage.is_empty(), "{:?}", map.damage);
    let last_usable_end = 64 * MIB - 0x4200;
    assert_eq!(
        numbers(&map),
        [(1, 8 * MIB..24 * MIB), (2, 24 * MIB..last_usable_end)]
    );
    assert_eq!(
        map.partitions[1].to_string(),
        format!("GPT partition 2 \"rootfs\" (Linux filesystem) at 0x1800000..{last_usable_end:#x}")
    );
    assert_eq!(map.tables.len(), 5);
    assert_boot_area_free(&map, dev.size());

    // A flipped bit in sgdisk's primary header: its backup is used.
    let mut damaged = dev.into_bytes();
    damaged[0x200 + 40] ^= 1;
    let map = read_partition_map(&MemDevice::from_bytes(damaged)).unwrap();
    assert_eq!(map.partitions.len(), 2);
    assert!(matches!(
        map.damage[..],
        [Damage::Gpt {
            copy: GptCopy::Primary,
            ..
        }]
    ));
}

#[test]
fn sfdisk_dos_table_with_logical_partitions_is_read() {
    if !tool("sfdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("dos.img");
    image(&img, 64 << 20);
    let script = "label: dos\n\
                  start=16384, size=16384, type=c\n\
                  start=32768, size=65536, type=5\n\
                  start=34816, size=8192, type=83\n\
                  start=51200, size=8192, type=82\n";
    let mut child = Command::new("sfdisk")
        .arg("--no-reread")
        .arg("--no-tell-kernel")
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let dev = MemDevice::from_bytes(std::fs::read(&img).unwrap());
    let map = read_partition_map(&dev).unwrap();
    assert!(map.damage.is_empty(), "{:?}", map.damage);
    let p: Vec<_> = numbers(&map).iter().map(|p| p.0).collect();
    assert_eq!(p, [1, 2, 5, 6]);
    assert_eq!(map.partitions[2].range, 17 * MIB..21 * MIB);
    let ebrs = map
        .tables
        .iter()
        .filter(|t| matches!(t.kind, TableKind::Ebr { .. }))
        .count();
    assert_eq!(ebrs, 2);
    assert_boot_area_free(&map, dev.size());
}

// ---------------------------------------------------------------------------------------------
// Never a panic

/// A 1 MiB device with `head` at LBA 0 onward.
fn device_with(head: &[u8], block_size: u32) -> MemDevice {
    let mut dev = MemDevice::new(1 << 20).with_block_size(block_size);
    dev.bytes_mut()[..head.len()].copy_from_slice(head);
    dev
}

fn check(dev: &MemDevice, ranges: &[(u64, u64)]) {
    let map = read_partition_map(dev).expect("a memory device never fails a read");
    let _ = map.to_string();
    for d in &map.damage {
        let _ = d.to_string();
    }
    for &(start, len) in ranges {
        for c in conflicts(&map, start..start.saturating_add(len), dev.size()) {
            let _ = c.to_string();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes in LBA 0..=33, with or without the MBR and GPT signatures forced in.
    #[test]
    fn arbitrary_bytes_in_the_first_34_lbas_never_panic(
        head in prop::collection::vec(any::<u8>(), 34 * 512),
        signatures in 0u8..4,
        block_size in prop::sample::select(vec![512u32, 4096]),
        ranges in prop::collection::vec((any::<u64>(), any::<u64>()), 0..4),
    ) {
        let mut head = head;
        if signatures & 1 != 0 {
            head[510] = 0x55;
            head[511] = 0xAA;
        }
        if signatures & 2 != 0 {
            let at = block_size as usize;
            if at + 8 <= head.len() {
                head[at..at + 8].copy_from_slice(b"EFI PART");
            }
        }
        check(&device_with(&head, block_size), &ranges);
    }

    /// A CRC-valid primary header with arbitrary fields after the signature, over arbitrary
    /// entry bytes, behind an MBR with arbitrary (possibly extended, looping) entries.
    #[test]
    fn crc_valid_headers_with_arbitrary_fields_never_panic(
        fields in prop::collection::vec(any::<u8>(), 84),
        entries in prop::collection::vec(any::<u8>(), 64 * 16),
        mbr in prop::collection::vec((prop::sample::select(vec![0u8, 0x05, 0x0f, 0x83, 0xee]),
                                      0u32..2048, any::<u32>()), 4),
        header_size in prop::sample::select(vec![92u32, 93, 200, 512, 4096, 0, u32::MAX]),
        entry_fix in any::<bool>(),
    ) {
        let mut head = vec![0u8; 34 * 512];
        for (i, &(kind, start, sectors)) in mbr.iter().enumerate() {
            let e = &mut head[446 + 16 * i..462 + 16 * i];
            e[4] = kind;
            e[8..12].copy_from_slice(&start.to_le_bytes());
            e[12..16].copy_from_slice(&sectors.to_le_bytes());
        }
        head[510] = 0x55;
        head[511] = 0xAA;
        head[1024..1024 + entries.len()].copy_from_slice(&entries);
        let h = &mut head[512..1024];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..92].copy_from_slice(&fields);
        h[12..16].copy_from_slice(&header_size.to_le_bytes());
        if entry_fix {
            // A plausible array so that the entries themselves get parsed.
            h[24..32].copy_from_slice(&1u64.to_le_bytes());
            h[72..80].copy_from_slice(&2u64.to_le_bytes());
            h[80..84].copy_from_slice(&8u32.to_le_bytes());
            h[84..88].copy_from_slice(&128u32.to_le_bytes());
            h[88..92].copy_from_slice(&crc32fast::hash(&entries[..1024]).to_le_bytes());
        }
        let n = (header_size as usize).clamp(92, 512);
        h[16..20].fill(0);
        let crc = crc32fast::hash(&h[..n]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        // EBRs at the MBR entries' starts (within the first 34 LBAs) may loop onto each other.
        check(&device_with(&head, 512), &[(0, 1 << 20), (0x8200, 0x400000)]);
    }
}
