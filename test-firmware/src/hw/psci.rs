//! A minimal PSCI 1.1 for a single-core Non-secure OS, reached through `smc #0` (the Linux
//! stand-in's EL3 vector, `bin/linux-stand-in.rs`): enough for Linux to probe PSCI, power off
//! and reboot. What TF-A's BL31 provides on a real i.MX 8M, reduced to one core.
//!
//! Function IDs and return codes: Arm *Power State Coordination Interface* (DEN0022, PSCI 1.1)
//! §5.1 and Table 6 (SMC32 IDs 0x8400_00xx, SMC64 0xC400_00xx); calling convention: Arm *SMC
//! Calling Convention* (DEN0028): function ID in W0, arguments in X1..X3, results in X0..X3;
//! an unknown function returns NOT_SUPPORTED (-1) in X0 (DEN0028 §5.2).
//!
//! | Function | ID | Result here |
//! |---|---|---|
//! | PSCI_VERSION | 0x8400_0000 | 0x0001_0001 (1.1) |
//! | MIGRATE_INFO_TYPE | 0x8400_0006 | 2: no Trusted OS to migrate (DEN0022 §5.7) |
//! | SYSTEM_OFF | 0x8400_0008 | SNVS_LPCR power-off, never returns |
//! | SYSTEM_RESET | 0x8400_0009 | WDOG1 immediate reset, never returns |
//! | PSCI_FEATURES | 0x8400_000A | 0 for the functions in this table, else NOT_SUPPORTED |
//! | CPU_ON | 0x8400_0003 / 0xC400_0003 | ALREADY_ON for this core, INVALID_PARAMETERS for others |
//! | anything else (CPU_SUSPEND, SMCCC_VERSION, …) | | NOT_SUPPORTED (-1) |
//!
//! CPU_ON: the stand-in runs the OS on the boot core only (the simulation uses `-smp 1`; the
//! EVK device tree still lists four cores). DEN0022 §5.6 lists no NOT_SUPPORTED for CPU_ON
//! (the function is mandatory); a core that cannot be started is answered with
//! INVALID_PARAMETERS, which Linux reports as "failed to boot CPUn (-22)" and carries on.

use tock_registers::interfaces::Writeable;
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

/// PSCI function IDs (DEN0022 Table 6).
pub mod function {
    /// PSCI_VERSION.
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    /// CPU_SUSPEND, SMC32.
    pub const CPU_SUSPEND: u32 = 0x8400_0001;
    /// CPU_OFF.
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// CPU_ON, SMC32.
    pub const CPU_ON_32: u32 = 0x8400_0003;
    /// CPU_ON, SMC64 (Linux's `psci_0_2_cpu_on` on arm64).
    pub const CPU_ON_64: u32 = 0xC400_0003;
    /// MIGRATE_INFO_TYPE.
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    /// SYSTEM_OFF.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// SYSTEM_RESET.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// PSCI_FEATURES.
    pub const PSCI_FEATURES: u32 = 0x8400_000A;
}

/// PSCI return codes (DEN0022 §5.2.2).
pub mod status {
    /// SUCCESS.
    pub const SUCCESS: i64 = 0;
    /// NOT_SUPPORTED (also SMCCC's "unknown function", DEN0028 §5.2).
    pub const NOT_SUPPORTED: i64 = -1;
    /// INVALID_PARAMETERS.
    pub const INVALID_PARAMETERS: i64 = -2;
    /// ALREADY_ON.
    pub const ALREADY_ON: i64 = -4;
}

/// PSCI_VERSION's answer: major 1 (bits 31:16), minor 1 (bits 15:0) (DEN0022 §5.1.1).
pub const VERSION_1_1: u64 = 0x0001_0001;

/// MIGRATE_INFO_TYPE's answer: 2 = "Trusted OS is either not present or does not require
/// migration" (DEN0022 §5.7.2).
pub const MIGRATE_NOT_REQUIRED: u64 = 2;

/// What the caller of [`dispatch`] must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Return to the caller with this value in X0 (X1..X3 unchanged).
    Return(u64),
    /// Power the system off ([`system_off`]).
    SystemOff,
    /// Reset the system ([`system_reset`]).
    SystemReset,
}

/// Functions PSCI_FEATURES reports as implemented.
const IMPLEMENTED: [u32; 7] = [
    function::PSCI_VERSION,
    function::CPU_ON_32,
    function::CPU_ON_64,
    function::MIGRATE_INFO_TYPE,
    function::SYSTEM_OFF,
    function::SYSTEM_RESET,
    function::PSCI_FEATURES,
];

const fn ret(code: i64) -> Action {
    Action::Return(code as u64)
}

/// MPIDR affinity fields Aff3..Aff0 (Arm ARM D23.2: bits 39:32, 23:0), as CPU_ON's target.
const MPIDR_AFFINITY_MASK: u64 = 0xFF_00FF_FFFF;

/// The PSCI call in `x0` (function ID in W0) with arguments `x1`, `x2`, `x3`, made by the core
/// whose MPIDR_EL1 is `self_mpidr`.
pub fn dispatch(x0: u64, x1: u64, _x2: u64, _x3: u64, self_mpidr: u64) -> Action {
    match x0 as u32 {
        function::PSCI_VERSION => Action::Return(VERSION_1_1),
        function::PSCI_FEATURES => {
            if IMPLEMENTED.contains(&(x1 as u32)) && x1 >> 32 == 0 {
                ret(status::SUCCESS)
            } else {
                ret(status::NOT_SUPPORTED)
            }
        }
        function::CPU_ON_32 | function::CPU_ON_64 => {
            if x1 & MPIDR_AFFINITY_MASK == self_mpidr & MPIDR_AFFINITY_MASK {
                ret(status::ALREADY_ON)
            } else {
                ret(status::INVALID_PARAMETERS)
            }
        }
        function::MIGRATE_INFO_TYPE => Action::Return(MIGRATE_NOT_REQUIRED),
        function::SYSTEM_OFF => Action::SystemOff,
        function::SYSTEM_RESET => Action::SystemReset,
        _ => ret(status::NOT_SUPPORTED),
    }
}

register_bitfields! {u32,
    /// SNVS_LPCR, low-power control (i.MX 8M RM, SNVS chapter).
    LPCR [
        /// DP_EN: dumb PMIC enabled.
        DP_EN OFFSET(5) NUMBITS(1) [],
        /// TOP: turn off system power (with DP_EN).
        TOP OFFSET(6) NUMBITS(1) []
    ]
}

register_structs! {
    /// The one SNVS register used: LPCR at +0x38.
    SnvsRegisters {
        (0x00 => _reserved),
        (0x38 => lpcr: ReadWrite<u32, LPCR::Register>),
        (0x3C => @END),
    }
}

/// SNVS base on i.MX 8M Plus and Mini (Linux `imx8mp.dtsi` / `imx8mm.dtsi` `snvs@30370000`;
/// QEMU `imx7.snvs`, `docs/qemu-imx8mp.md` §2).
pub const SNVS_BASE: u64 = 0x3037_0000;

/// SYSTEM_OFF: SNVS_LPCR = TOP | DP_EN (0x60), the value of the EVK device tree's
/// `snvs-poweroff` node (Linux `imx8mp.dtsi`: offset 0x38, value 0x60); QEMU's model powers
/// off at once and ends with status 0 (`docs/qemu-imx8mp.md` §7). Waits for the power to go.
pub fn system_off() -> ! {
    // SAFETY: SNVS_BASE is the SNVS register block (see the constant), device memory mapped
    // flat at EL3; LPCR is written through its volatile cell.
    let snvs = unsafe { &*(SNVS_BASE as *const SnvsRegisters) };
    snvs.lpcr.write(LPCR::TOP::SET + LPCR::DP_EN::SET);
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// SYSTEM_RESET: WDOG1 immediate reset (WCR = 0x0004,
/// [`spl_shim::hw::watchdog::Watchdog::reset_now`], `docs/qemu-imx8mp.md` §9).
pub fn system_reset() -> ! {
    spl_shim::hw::watchdog::Watchdog::board().reset_now()
}
