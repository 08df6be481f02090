//! The Linux stand-in: what U-Boot proper and TF-A's BL31 do for the simulation's Linux, in one
//! small `no_std` program the shim loads from the FIT (linked at 0x4020_0000 like the test
//! payload, `linker/linux-stand-in.ld`) and enters at EL3.
//!
//! 1. Prints `stand-in: version V slot S EL3`: the slot from the boot cell
//!    (`BOARD.cell_addr`, word 0) and the image version patched into [`VERSION`] by xtask's
//!    `patch_payload_version` (same `IRB-PAYLOAD-VERSION:` field as the test payload).
//! 2. Looks for a Linux kernel **that the harness preloaded with QEMU's `-device loader`** (U-Boot
//!    would read it from the SD card; the stand-in has no file system and no loader: it only
//!    checks and starts what it finds). The contract with the harness, in DRAM:
//!
//!    | What | Where | Check |
//!    |---|---|---|
//!    | arm64 `Image` | [`KERNEL_ADDR`] 0x4048_0000 | magic `ARM\x64` at +0x38; after the move below it must end (header `image_size`, BSS included) at or below [`DTB_ADDR`]: image_size ≤ 0x2C0_0000 (44 MiB) |
//!    | flattened device tree | [`DTB_ADDR`] 0x4300_0000 | magic 0xd00dfeed, `totalsize` + 16 ≤ [`DTB_MAX`] |
//!    | initramfs (optional) | 0x4380_0000 ([`INITRD_ADDR`], suggested), ≤ 8 MiB | none: the kernel finds it through the DTB |
//!
//!    The harness owns the device tree's contents: `/chosen/bootargs`, `linux,initrd-start` /
//!    `linux,initrd-end` (if it passes an initramfs), `/memory` matching QEMU's `-m`, and the
//!    `cpu-idle-states` removal of `docs/qemu-imx8mp.md` §10. The initramfs must end at or
//!    below the shim's FIT window (0x4400_0000, `boards::qemu_imx8mp::FIT_WINDOW`): QEMU loads
//!    it before the shim runs, and the shim then reads the FIT into that window.
//!
//!    The stand-in itself changes two things. (a) arm64 `booting.rst`: "The Image must be placed
//!    text_offset bytes from a 2MB aligned base address", and 0x4048_0000 is not 2 MiB aligned:
//!    the stand-in moves the Image **down** to ALIGN_DOWN(0x4048_0000 − text_offset, 2 MiB) +
//!    text_offset = 0x4040_0000 (text_offset is 0 since Linux 3.17). U-Boot's `booti` moves
//!    it *up* instead (to 0x4060_0000 when the header's flags bit 3 allows any placement), but
//!    U-Boot also relocates the DTB; Debian's 6.12 Image (image_size 0x2B3_0000 with BSS)
//!    would then overlap the DTB at 0x4300_0000. The 512 KiB overwritten below 0x4048_0000
//!    held only the sim FIT's 4 KiB version blob (0x4040_0000), which the stand-in does not
//!    use. (b) It adds its own runtime (this image and its stack, where the PSCI handler keeps
//!    running) to the DTB's memory reservation block, so that Linux never allocates it.
//!
//!    No kernel at [`KERNEL_ADDR`] (or a bad DTB): it behaves like the test payload — prints
//!    `stand-in: no kernel …; payload: press a key to exit` (the line contains xtask's
//!    `PAYLOAD_READY`, so `Stop::Boot` works), waits for a key or 20 s, and exits QEMU through
//!    semihosting with the slot as the exit code.
//! 3. Sets up EL3 for a Non-secure EL2 kernel ([`test_firmware::hw::gic`], then [`enter_el2`])
//!    and `eret`s to the kernel at EL2h with x0 = DTB, x1..x3 = 0 (arm64 `booting.rst`).
//! 4. Serves PSCI 1.1 through `smc` ([`test_firmware::hw::psci`]) from its own EL3 vector
//!    table.
//!
//! The watchdog the shim armed (60 s, WDE is write-once) keeps running in Linux: the
//! stand-in services it once before the handoff; Linux's `imx2_wdt` driver takes it over
//! (it sees it running at probe) — without that driver the board resets 60 s after the handoff.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
mod stand_in {
    use core::arch::global_asm;
    use core::fmt::Write;

    use boot_core::platform::WatchdogService;
    use spl_shim::hw::timer::{FALLBACK_FREQUENCY_HZ, GenericTimer};
    use spl_shim::hw::uart::Uart;
    use spl_shim::hw::watchdog::Watchdog;
    use test_firmware::hw::gic;
    use test_firmware::hw::payload;
    use test_firmware::hw::psci::{self, Action};
    use test_firmware::hw::semihosting;

    /// Where the harness preloads the arm64 Image: the i.MX 8M EVK U-Boot environment's kernel
    /// load address (`loadaddr` / `kernel_addr_r`), agreed with the issue-6 harness.
    pub const KERNEL_ADDR: u64 = 0x4048_0000;
    /// Where the harness preloads the device tree: the EVK U-Boot environment's `fdt_addr_r`,
    /// agreed with the issue-6 harness.
    pub const DTB_ADDR: u64 = 0x4300_0000;
    /// Where the harness should preload the initramfs (suggested; the kernel takes the address
    /// from `/chosen`). The DTB may grow up to here.
    pub const INITRD_ADDR: u64 = 0x4380_0000;
    /// Largest DTB (after the stand-in's 16-byte reservation entry): arm64 `booting.rst` "must
    /// not exceed 2 megabytes in size".
    pub const DTB_MAX: u64 = 2 << 20;

    /// arm64 Image header (Linux `Documentation/arch/arm64/booting.rst` §4): `text_offset` at
    /// +0x08, `image_size` at +0x10, `flags` at +0x18, magic 0x644d5241 ("ARM\x64") at +0x38.
    const IMAGE_MAGIC: u32 = 0x644D_5241;
    /// Alignment of the Image's base (booting.rst §4).
    const IMAGE_ALIGN: u64 = 2 << 20;
    /// Flattened device tree magic, big-endian at +0 (Devicetree Specification v0.4 §5.2).
    const FDT_MAGIC: u32 = 0xD00D_FEED;

    /// SCR_EL3 for the handoff (Arm ARM D23.2.150): NS (bit 0) = 1, lower ELs Non-secure;
    /// bits 5:4 RES1 (the reset value 0x30, docs/qemu-imx8mp.md §1); SMD (bit 7) = 0, so SMC
    /// is enabled and traps to EL3 (the PSCI conduit); HCE (bit 8) = 1, HVC enabled (Linux's
    /// hyp stub); RW (bit 10) = 1, EL2 is AArch64. IRQ/FIQ/EA (bits 1..3) = 0: interrupts and
    /// SErrors stay with the Non-secure world.
    pub const SCR_EL3_NS_EL2: u64 = (1 << 10) | (1 << 8) | (0b11 << 4) | 1;
    /// SCTLR_EL2 (Arm ARM D23.2.162, HCR_EL2.E2H = 0): the RES1 bits 4, 5, 11, 16, 18, 22, 23,
    /// 28, 29 only, i.e. MMU, caches and alignment checks off, little-endian — the value Linux
    /// itself writes before its MMU is on (`INIT_SCTLR_EL2_MMU_OFF`).
    pub const SCTLR_EL2_MMU_OFF: u64 = 0x30C5_0830;
    /// HCR_EL2 (Arm ARM D23.2.53): RW (bit 31) = 1, EL1 is AArch64; nothing trapped. Linux
    /// rewrites it at EL2.
    pub const HCR_EL2_RW: u64 = 1 << 31;
    /// CPTR_EL2 (Arm ARM D23.2.30, E2H = 0): RES1 bits 13:12 and 9:0, TFP (bit 10) = 0: FP/SIMD
    /// not trapped.
    pub const CPTR_EL2_NO_TRAPS: u64 = 0x33FF;
    /// CNTHCTL_EL2 (Arm ARM D23.8.2): EL1PCTEN | EL1PCEN, EL1 may use the physical counter and
    /// timer (booting.rst's requirement when entering at EL1; harmless at EL2).
    pub const CNTHCTL_EL2_EL1_ACCESS: u64 = 0b11;
    /// SPSR_EL3 for the `eret` (Arm ARM C5.2.19): D, A, I, F masked (bits 9:6) and M = 0b1001,
    /// EL2h (EL2 with SP_EL2): 0x3C9 (booting.rst: interrupts masked on entry).
    pub const SPSR_EL2H_DAIF_MASKED: u64 = 0x3C9;

    /// Marker + version text; `cargo xtask image` overwrites the bytes after the marker with the
    /// image version (NUL-padded). The same field as the test payload's.
    #[used]
    #[unsafe(link_section = ".rodata.payload_version")]
    static VERSION: [u8; payload::VERSION_FIELD_LEN] = payload::UNPATCHED_VERSION_FIELD;

    /// Without a kernel: longest wait for the harness before exiting anyway.
    const EXIT_AFTER_US: u64 = 20_000_000;

    unsafe extern "C" {
        /// First byte of this image (linker/linux-stand-in.ld).
        static __standin_start: u8;
        /// End of the EL3 stack (sections.ld).
        static __stack_top: u8;
        /// The PSCI vector table below.
        static __standin_vectors: u8;
    }

    fn version() -> &'static str {
        payload::version_text(&VERSION)
    }

    fn read_u32(addr: u64) -> u32 {
        // SAFETY: only called on addresses in the board's DRAM (the constants above and offsets
        // checked against them), 4-byte aligned, mapped flat with the MMU off.
        unsafe { (addr as *const u32).read_volatile() }
    }

    fn write_u32(addr: u64, value: u32) {
        // SAFETY: as `read_u32`; the DTB area belongs to the stand-in until the handoff.
        unsafe { (addr as *mut u32).write_volatile(value) }
    }

    fn read_u64(addr: u64) -> u64 {
        u64::from(read_u32(addr)) | (u64::from(read_u32(addr + 4)) << 32)
    }

    fn be32(addr: u64) -> u32 {
        u32::from_be(read_u32(addr))
    }

    fn cell_slot() -> u32 {
        payload::cell_slot()
    }

    /// First byte of this image (start of the PSCI runtime).
    fn runtime_start() -> u64 {
        core::ptr::addr_of!(__standin_start) as u64
    }

    /// End of the PSCI runtime (the EL3 stack's top), rounded up to 4 KiB.
    fn runtime_end() -> u64 {
        (core::ptr::addr_of!(__stack_top) as u64).next_multiple_of(4096)
    }

    /// An arm64 Image found at [`KERNEL_ADDR`].
    struct Kernel {
        text_offset: u64,
        image_size: u64,
        flags: u64,
        /// Where it runs: 2 MiB-aligned base + text_offset (module docs).
        entry: u64,
    }

    fn probe_kernel() -> Result<Kernel, &'static str> {
        if read_u32(KERNEL_ADDR + 0x38) != IMAGE_MAGIC {
            return Err("no arm64 Image magic at +0x38");
        }
        let text_offset = read_u64(KERNEL_ADDR + 0x08);
        let image_size = read_u64(KERNEL_ADDR + 0x10);
        let flags = read_u64(KERNEL_ADDR + 0x18);
        if image_size == 0 || text_offset >= IMAGE_ALIGN {
            return Err("Image header without image_size (kernel older than 3.17)");
        }
        let base = (KERNEL_ADDR - text_offset) / IMAGE_ALIGN * IMAGE_ALIGN;
        if base < runtime_end() {
            return Err("the 2 MiB-aligned Image base would overlap the stand-in");
        }
        let entry = base + text_offset;
        if entry + image_size > DTB_ADDR {
            return Err("Image (image_size) would overlap the DTB");
        }
        Ok(Kernel {
            text_offset,
            image_size,
            flags,
            entry,
        })
    }

    /// The DTB at [`DTB_ADDR`]: magic and size checked; returns `totalsize`.
    fn probe_dtb() -> Result<u64, &'static str> {
        if be32(DTB_ADDR) != FDT_MAGIC {
            return Err("no FDT magic");
        }
        let total = u64::from(be32(DTB_ADDR + 4));
        if total < 0x28 || total + 16 > DTB_MAX || DTB_ADDR + total + 16 > INITRD_ADDR {
            return Err("FDT totalsize out of range");
        }
        Ok(total)
    }

    /// Adds `[start, start + size)` to the FDT's memory reservation block (Devicetree
    /// Specification v0.4 §5.3: 16-byte big-endian {address, size} entries from
    /// `off_mem_rsvmap` (+0x10), ended by an all-zero entry) unless an entry already covers it.
    /// The blocks after the terminator move up by 16 bytes; `off_dt_struct` (+0x08),
    /// `off_dt_strings` (+0x0C) and `totalsize` (+0x04) follow. Returns whether it added.
    fn reserve_in_dtb(start: u64, size: u64) -> Result<bool, &'static str> {
        let total = u64::from(be32(DTB_ADDR + 4));
        let rsv = u64::from(be32(DTB_ADDR + 0x10));
        let mut at = DTB_ADDR + rsv;
        loop {
            if at + 16 > DTB_ADDR + total {
                return Err("FDT reservation block without terminator");
            }
            let addr = (u64::from(be32(at)) << 32) | u64::from(be32(at + 4));
            let len = (u64::from(be32(at + 8)) << 32) | u64::from(be32(at + 12));
            if addr == 0 && len == 0 {
                break;
            }
            if addr <= start && start + size <= addr + len {
                return Ok(false);
            }
            at += 16;
        }
        let tail = DTB_ADDR + total - at;
        // SAFETY: both ranges lie inside [DTB_ADDR, DTB_ADDR + total + 16), which probe_dtb
        // checked to be below INITRD_ADDR in DRAM; `copy` handles the overlap.
        unsafe { core::ptr::copy(at as *const u8, (at + 16) as *mut u8, tail as usize) };
        write_u32(at, ((start >> 32) as u32).to_be());
        write_u32(at + 4, (start as u32).to_be());
        write_u32(at + 8, ((size >> 32) as u32).to_be());
        write_u32(at + 12, (size as u32).to_be());
        let moved = at - DTB_ADDR;
        for field in [0x08u64, 0x0C] {
            let off = u64::from(be32(DTB_ADDR + field));
            if off >= moved {
                write_u32(DTB_ADDR + field, ((off + 16) as u32).to_be());
            }
        }
        write_u32(DTB_ADDR + 4, ((total + 16) as u32).to_be());
        Ok(true)
    }

    /// Called by the entry code (`spl_shim::arch`).
    // SAFETY: defined once in this binary; only the entry assembly calls it.
    #[unsafe(no_mangle)]
    extern "C" fn shim_main() -> ! {
        let mut console = Uart::console();
        let mut wdog = Watchdog::board();
        let slot = cell_slot();
        let el = payload::current_el();
        let _ = writeln!(
            console,
            "stand-in: version {} slot {slot} EL{el}",
            version()
        );
        let found = probe_kernel().and_then(|k| probe_dtb().map(|_| k));
        let kernel = match found {
            Ok(k) if el == 3 => k,
            Ok(_) => no_kernel(&mut console, &mut wdog, slot, "not entered at EL3"),
            Err(why) => no_kernel(&mut console, &mut wdog, slot, why),
        };
        let _ = writeln!(
            console,
            "stand-in: Image at {KERNEL_ADDR:#x}: text_offset {:#x}, image_size {:#x}, flags {:#x}",
            kernel.text_offset, kernel.image_size, kernel.flags
        );
        if kernel.entry != KERNEL_ADDR {
            let _ = writeln!(
                console,
                "stand-in: moving Image from {KERNEL_ADDR:#x} down to {:#x} (2 MiB aligned)",
                kernel.entry
            );
            // SAFETY: both ranges are in DRAM between the stand-in's end and DTB_ADDR
            // (probe_kernel); `copy` handles the overlap.
            unsafe {
                core::ptr::copy(
                    KERNEL_ADDR as *const u8,
                    kernel.entry as *mut u8,
                    kernel.image_size as usize,
                );
            }
        }
        let (start, end) = (runtime_start(), runtime_end());
        match reserve_in_dtb(start, end - start) {
            Ok(added) => {
                let _ = writeln!(
                    console,
                    "stand-in: DTB at {DTB_ADDR:#x}: /memreserve/ {start:#x}+{:#x} (PSCI runtime){}",
                    end - start,
                    if added { "" } else { ", already present" }
                );
            }
            Err(why) => no_kernel(&mut console, &mut wdog, slot, why),
        }
        match gic::init_for_nonsecure() {
            Ok(r) => {
                let _ = writeln!(
                    console,
                    "stand-in: GICv3: {} INTIDs to Group 1 NS, redistributor {:#x} {}{}",
                    r.lines,
                    r.redistributor,
                    if r.awake { "awake" } else { "NOT awake" },
                    if r.security_disabled { " (DS=1)" } else { "" }
                );
            }
            Err(e) => {
                let _ = writeln!(console, "stand-in: GICv3 set-up failed: {e:?}");
            }
        }
        set_cntfrq_if_zero();
        let _ = writeln!(
            console,
            "stand-in: PSCI 1.1 via SMC; starting Linux at EL2: entry {:#x}, x0 = DTB {DTB_ADDR:#x}",
            kernel.entry
        );
        console.flush();
        wdog.service();
        enter_el2(kernel.entry, DTB_ADDR)
    }

    /// CNTFRQ_EL0 is writable only at the highest EL (Arm ARM D23.8.1) and Linux takes the
    /// timer frequency from it: QEMU presets 8 MHz (docs/qemu-imx8mp.md §1); on silicon the
    /// EL3 firmware programs it (the i.MX 8M system counter's 8 MHz, [`FALLBACK_FREQUENCY_HZ`]).
    fn set_cntfrq_if_zero() {
        use aarch64_cpu::registers::{CNTFRQ_EL0, Readable};
        if CNTFRQ_EL0.get() == 0 {
            // SAFETY: writes the counter-frequency report only; runs at EL3.
            unsafe {
                core::arch::asm!("msr cntfrq_el0, {f}", f = in(reg) FALLBACK_FREQUENCY_HZ, options(nostack));
            }
        }
    }

    /// The test payload's behaviour: say why, wait for a key (or [`EXIT_AFTER_US`]) and exit
    /// QEMU through semihosting with the slot.
    fn no_kernel(console: &mut Uart, wdog: &mut Watchdog, slot: u32, why: &str) -> ! {
        let _ = writeln!(
            console,
            "stand-in: no kernel at {KERNEL_ADDR:#x} / DTB at {DTB_ADDR:#x} ({why}); payload: press a key to exit"
        );
        let timer = GenericTimer::new();
        let mut deadline = timer.deadline_us(EXIT_AFTER_US);
        while console.try_read_byte().is_none() && !deadline.expired() {
            wdog.service();
        }
        let _ = writeln!(console, "stand-in: exit {slot}");
        console.flush();
        semihosting::exit(slot)
    }

    /// Leaves EL3 for the kernel: the EL2 and EL3 registers of the module constants, CNTVOFF_EL2
    /// = 0, VBAR_EL3 = the PSCI vectors, SP_EL3 = the top of this image's stack (for the PSCI
    /// handler), I-cache invalidated (the Image was moved), then `eret` to `entry` at EL2h with
    /// x0 = `dtb`, x1 = x2 = x3 = 0 (booting.rst §4 "Primary CPU general-purpose register
    /// settings"). The MMU and caches are off at EL3 (docs/qemu-imx8mp.md §1), as booting.rst
    /// requires for the kernel's entry.
    fn enter_el2(entry: u64, dtb: u64) -> ! {
        // SAFETY: the hand-off to the kernel: these registers configure only the lower ELs and
        // the exception return; the vector table and stack stay valid (reserved in the DTB).
        // Control never comes back except through the PSCI vector.
        unsafe {
            core::arch::asm!(
                "msr scr_el3, {scr}",
                "msr sctlr_el2, {sctlr}",
                "msr hcr_el2, {hcr}",
                "msr cptr_el2, {cptr}",
                "msr cnthctl_el2, {cnthctl}",
                "msr cntvoff_el2, xzr",
                "msr vbar_el3, {vbar}",
                "msr spsr_el3, {spsr}",
                "msr elr_el3, {entry}",
                "ic iallu",
                "dsb sy",
                "isb",
                "mov sp, {stack}",
                "eret",
                scr = in(reg) SCR_EL3_NS_EL2,
                sctlr = in(reg) SCTLR_EL2_MMU_OFF,
                hcr = in(reg) HCR_EL2_RW,
                cptr = in(reg) CPTR_EL2_NO_TRAPS,
                cnthctl = in(reg) CNTHCTL_EL2_EL1_ACCESS,
                vbar = in(reg) core::ptr::addr_of!(__standin_vectors) as u64,
                spsr = in(reg) SPSR_EL2H_DAIF_MASKED,
                entry = in(reg) entry,
                stack = in(reg) core::ptr::addr_of!(__stack_top) as u64,
                in("x0") dtb,
                in("x1") 0u64,
                in("x2") 0u64,
                in("x3") 0u64,
                options(noreturn)
            )
        }
    }

    /// The registers the PSCI vector saves (layout in the assembly below).
    #[repr(C)]
    pub struct SmcFrame {
        /// x0..x30 of the caller.
        x: [u64; 31],
    }

    /// Called by the PSCI vector for an SMC from a lower EL (ESR_EL3.EC = 0x17): the
    /// function ID and arguments in x0..x3 of the frame, the result goes back into x0.
    // SAFETY: defined once; only `__standin_lower_sync` calls it, with a frame on SP_EL3.
    #[unsafe(no_mangle)]
    extern "C" fn standin_smc(frame: &mut SmcFrame) {
        use aarch64_cpu::registers::{MPIDR_EL1, Readable};
        let [x0, x1, x2, x3, ..] = frame.x;
        match psci::dispatch(x0, x1, x2, x3, MPIDR_EL1.get()) {
            Action::Return(v) => frame.x[0] = v,
            Action::SystemOff => {
                let mut console = Uart::console();
                let _ = writeln!(console, "\nstand-in: PSCI SYSTEM_OFF: SNVS power-off");
                console.flush();
                psci::system_off()
            }
            Action::SystemReset => {
                let mut console = Uart::console();
                let _ = writeln!(console, "\nstand-in: PSCI SYSTEM_RESET: watchdog reset");
                console.flush();
                psci::system_reset()
            }
        }
    }

    // The PSCI vector table (VBAR_EL3 after the handoff; Arm ARM D1.10.2: 16 entries of 0x80
    // bytes, 2 KiB aligned). Entry 8 (+0x400, synchronous from a lower EL in AArch64) handles
    // SMC; every other entry, and a synchronous exception that is not an SMC, goes to the
    // same entry of the fatal table (`__exception_vectors`, `spl_shim::arch`: spl-shim's
    // src/arch/aarch64/vectors.rs), which reports and halts.
    //
    // `__standin_lower_sync` frame on SP_EL3 (784 bytes): x0..x30 at 8 × n, q0..q31 at
    // 256 + 16 × n, FPSR at 768, FPCR at 776. SMCCC (DEN0028 §2.6/§3.1) lets an SMC clobber
    // only x0..x17 for SMC64; everything is restored here except the results, so the caller
    // sees x0 = the result and x1..x30, SP_EL2/SP_EL1 and the FP/SIMD registers unchanged
    // (Rust code may use NEON). ELR_EL3 already points after the `smc` (Arm ARM D1.10.3).
    global_asm!(
        r#"
    .section .text.standin_vectors, "ax"
    .balign 2048
    .global __standin_vectors
__standin_vectors:
    .irp index, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
    .balign 0x80
    .if \index == 8
    b       __standin_lower_sync
    .else
    b       __exception_vectors + (\index * 0x80)
    .endif
    .endr

    .balign 0x80
__standin_lower_sync:
    sub     sp, sp, #784
    stp     x0, x1, [sp, #0]
    mrs     x0, esr_el3
    ubfx    x0, x0, #26, #6
    cmp     x0, #0x17
    b.ne    9f
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    stp     q0, q1, [sp, #256]
    stp     q2, q3, [sp, #288]
    stp     q4, q5, [sp, #320]
    stp     q6, q7, [sp, #352]
    stp     q8, q9, [sp, #384]
    stp     q10, q11, [sp, #416]
    stp     q12, q13, [sp, #448]
    stp     q14, q15, [sp, #480]
    stp     q16, q17, [sp, #512]
    stp     q18, q19, [sp, #544]
    stp     q20, q21, [sp, #576]
    stp     q22, q23, [sp, #608]
    stp     q24, q25, [sp, #640]
    stp     q26, q27, [sp, #672]
    stp     q28, q29, [sp, #704]
    stp     q30, q31, [sp, #736]
    mrs     x0, fpsr
    str     x0, [sp, #768]
    mrs     x0, fpcr
    str     x0, [sp, #776]
    mov     x0, sp
    bl      standin_smc
    ldr     x0, [sp, #768]
    msr     fpsr, x0
    ldr     x0, [sp, #776]
    msr     fpcr, x0
    ldp     q0, q1, [sp, #256]
    ldp     q2, q3, [sp, #288]
    ldp     q4, q5, [sp, #320]
    ldp     q6, q7, [sp, #352]
    ldp     q8, q9, [sp, #384]
    ldp     q10, q11, [sp, #416]
    ldp     q12, q13, [sp, #448]
    ldp     q14, q15, [sp, #480]
    ldp     q16, q17, [sp, #512]
    ldp     q18, q19, [sp, #544]
    ldp     q20, q21, [sp, #576]
    ldp     q22, q23, [sp, #608]
    ldp     q24, q25, [sp, #640]
    ldp     q26, q27, [sp, #672]
    ldp     q28, q29, [sp, #704]
    ldp     q30, q31, [sp, #736]
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    add     sp, sp, #784
    eret
9:  ldp     x0, x1, [sp, #0]
    add     sp, sp, #784
    b       __exception_vectors + 0x400
"#
    );

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        let mut console = Uart::console();
        let _ = writeln!(console, "stand-in: panic");
        console.flush();
        spl_shim::arch::halt()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "linux-stand-in is firmware: `cargo build --profile firmware -p test-firmware --target aarch64-unknown-none --bin linux-stand-in`"
    );
    std::process::exit(2);
}
