//! [`FileDevice`] on real files and devices (issue 5, item 6): an update on a regular file and on
//! a loop device, the exclusive lock, refusals of what is not a device, and that nothing is
//! ever written past the end.

mod medium;

use std::io::Write;
use std::path::Path;

use boot_core::policy::Slot;
use medium::{DEVICE, Layout, board, fuses, holds, image, write_layout};
use ubootctl::blockdev::{BlockDevice, DeviceKind, FileDevice, IoMode, MemDevice, OpenError};
use ubootctl::exec::{self, ExecOptions, NoProgress};
use ubootctl::media::{MediaState, predict};

const PRIMARY: u64 = 0x8400;

/// An 8 MiB file holding the running primary only (no secondary, no SIT).
fn image_file() -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let mut content = MemDevice::new(DEVICE);
    write_layout(
        &mut content,
        Layout {
            primary: Some(image(1)),
            secondary: None,
            sit: false,
        },
    );
    f.write_all(content.bytes()).unwrap();
    f.flush().unwrap();
    f
}

/// Opens `path`, retrying for a while when it is busy: a process spawned by a test running in
/// parallel (losetup) holds copies of every descriptor between its fork and its exec, and with
/// them the lock of a device this test has just closed.
fn open_when_free(path: &Path) -> FileDevice {
    for _ in 0..100 {
        match FileDevice::open(path) {
            Err(OpenError::Busy { .. }) => std::thread::sleep(std::time::Duration::from_millis(10)),
            other => return other.unwrap(),
        }
    }
    panic!("{} stays locked", path.display())
}

/// Runs the full update on `dev` and checks the result through the same device.
fn update_and_check(dev: &mut FileDevice) {
    let out = exec::update(
        dev,
        board(),
        &fuses(),
        image(2).to_vec(),
        Some(Slot::Primary),
        &ExecOptions::default(),
        &mut NoProgress,
    )
    .unwrap();
    assert!(out.summary.bytes_verified > 2 * image(2).len() as u64 - 0x1000);
    assert!(holds(dev, PRIMARY, image(2)));
    assert_eq!(predict(&*dev, board(), &fuses()).slot, Some(Slot::Primary));
    assert!(
        MediaState::read(&*dev, board(), &fuses())
            .unwrap()
            .fallback_ok()
    );
}

#[test]
fn update_on_a_regular_file() {
    let f = image_file();
    let mut dev = FileDevice::open(f.path()).unwrap();
    assert_eq!(dev.kind(), DeviceKind::RegularFile);
    assert_eq!(dev.logical_block_size(), 512);
    assert_eq!(dev.size(), DEVICE as u64);
    println!("regular file I/O: {:?}", dev.io_mode());
    update_and_check(&mut dev);
    drop(dev);
    // What another reader of the file sees.
    let bytes = std::fs::read(f.path()).unwrap();
    assert_eq!(bytes.len(), DEVICE, "the file did not grow");
    assert_eq!(&bytes[PRIMARY as usize..][..image(2).len()], image(2));
}

#[test]
fn the_device_is_locked_while_open() {
    let f = image_file();
    let dev = FileDevice::open(f.path()).unwrap();
    let e = FileDevice::open(f.path()).unwrap_err();
    assert!(matches!(e, OpenError::Busy { .. }), "{e}");
    assert!(e.to_string().contains("locked by another process"));
    drop(dev);
    open_when_free(f.path());
}

#[test]
fn writes_past_the_end_are_refused_and_the_file_does_not_grow() {
    let f = image_file();
    let mut dev = FileDevice::open(f.path()).unwrap();
    assert!(dev.write_at(DEVICE as u64 - 1, &[1, 2]).is_err());
    assert!(dev.read_back_at(DEVICE as u64, &mut [0]).is_err());
    drop(dev);
    assert_eq!(std::fs::metadata(f.path()).unwrap().len(), DEVICE as u64);
}

#[test]
fn what_is_not_a_file_or_block_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        FileDevice::open(dir.path()),
        Err(OpenError::Io { what: "open", .. })
    ));
    assert!(matches!(
        FileDevice::open(Path::new("/dev/null")),
        Err(OpenError::NotADevice { .. })
    ));
    let e = FileDevice::open(&dir.path().join("missing")).unwrap_err();
    assert!(e.to_string().contains("cannot open"), "{e}");
}

#[test]
fn update_on_a_loop_device() {
    let f = image_file();
    let lo = match medium::Loop::attach(f.path()) {
        Ok(l) => l,
        Err(why) => {
            println!("SKIPPED update_on_a_loop_device: {why}");
            return;
        }
    };
    let mut dev = match FileDevice::open(Path::new(&lo.0)) {
        Ok(d) => d,
        Err(e) => {
            println!("SKIPPED update_on_a_loop_device: {e}");
            return;
        }
    };
    assert_eq!(dev.kind(), DeviceKind::BlockDevice);
    assert_eq!(dev.size(), DEVICE as u64, "BLKGETSIZE64");
    assert_eq!(dev.logical_block_size(), 512, "BLKSSZGET");
    println!("{}: I/O {:?}", lo.0, dev.io_mode());
    update_and_check(&mut dev);
    drop(dev);
    drop(lo);
    let bytes = std::fs::read(f.path()).unwrap();
    assert_eq!(&bytes[PRIMARY as usize..][..image(2).len()], image(2));
}

#[test]
fn update_on_a_regular_file_with_buffered_io() {
    // The discipline where the file system refuses O_DIRECT: buffered writes made durable by
    // the plan's fdatasync flushes, read-back after dropping the cached pages.
    let f = image_file();
    let mut dev = FileDevice::open_buffered(f.path()).unwrap();
    assert_eq!(dev.io_mode(), IoMode::Buffered);
    update_and_check(&mut dev);
    drop(dev);
    let bytes = std::fs::read(f.path()).unwrap();
    assert_eq!(&bytes[PRIMARY as usize..][..image(2).len()], image(2));
}

#[test]
fn unaligned_writes_go_through_the_page_cache_and_are_read_back() {
    // A write that is not whole logical blocks cannot be O_DIRECT; it must still land.
    let f = image_file();
    let mut dev = FileDevice::open(f.path()).unwrap();
    dev.write_at(0x1001, &[7; 100]).unwrap();
    dev.write_at(0x2000, &[9; 1024]).unwrap();
    dev.flush().unwrap();
    let mut back = [0u8; 1124];
    dev.read_back_at(0x1001, &mut back[..100]).unwrap();
    dev.read_back_at(0x2000, &mut back[100..]).unwrap();
    assert!(back[..100].iter().all(|&b| b == 7));
    assert!(back[100..].iter().all(|&b| b == 9));
}
