//! HAB status, reason, context, configuration and state codes (imx8m-facts.md §4.2, from
//! U-Boot `asm/mach-imx/hab.h`, TF-A `imx_hab.c` and the HAB4 API RM).

/// Status values.
pub mod status {
    /// Match any status in `report_event`.
    pub const ANY: u8 = 0x00;
    /// Operation failed.
    pub const FAILURE: u8 = 0x33;
    /// Operation completed with a warning.
    pub const WARNING: u8 = 0x69;
    /// Operation completed successfully.
    pub const SUCCESS: u8 = 0xF0;
}

/// Reason values.
pub mod reason {
    /// Match any reason.
    pub const ANY: u8 = 0x00;
    /// Unsupported command.
    pub const UNS_COMMAND: u8 = 0x03;
    /// Invalid IVT.
    pub const INV_IVT: u8 = 0x05;
    /// Invalid command.
    pub const INV_COMMAND: u8 = 0x06;
    /// Unsuitable state.
    pub const UNS_STATE: u8 = 0x09;
    /// Unsupported engine.
    pub const UNS_ENGINE: u8 = 0x0A;
    /// Invalid assertion.
    pub const INV_ASSERTION: u8 = 0x0C;
    /// Invalid index.
    pub const INV_INDEX: u8 = 0x0F;
    /// Invalid CSF.
    pub const INV_CSF: u8 = 0x11;
    /// Unsupported algorithm.
    pub const UNS_ALGORITHM: u8 = 0x12;
    /// Unsupported protocol.
    pub const UNS_PROTOCOL: u8 = 0x14;
    /// Invalid size.
    pub const INV_SIZE: u8 = 0x17;
    /// Invalid signature.
    pub const INV_SIGNATURE: u8 = 0x18;
    /// Unsupported key type or parameters.
    pub const UNS_KEY: u8 = 0x1B;
    /// Invalid key.
    pub const INV_KEY: u8 = 0x1D;
    /// Failed callback function.
    pub const INV_RETURN: u8 = 0x1E;
    /// Invalid certificate.
    pub const INV_CERTIFICATE: u8 = 0x21;
    /// Invalid address: access denied.
    pub const INV_ADDRESS: u8 = 0x22;
    /// Unsupported configuration item.
    pub const UNS_ITEM: u8 = 0x24;
    /// Invalid DCD.
    pub const INV_DCD: u8 = 0x27;
    /// Function called out of sequence.
    pub const INV_CALL: u8 = 0x28;
    /// Expired poll count.
    pub const OVR_COUNT: u8 = 0x2B;
    /// Exhausted storage region.
    pub const OVR_STORAGE: u8 = 0x2D;
    /// Memory failure.
    pub const MEM_FAIL: u8 = 0x2E;
    /// Engine failure.
    pub const ENG_FAIL: u8 = 0x30;
}

/// Context values.
pub mod context {
    /// Event logged in any context.
    pub const ANY: u8 = 0x00;
    /// Event logged by `entry`.
    pub const ENTRY: u8 = 0xE1;
    /// Event logged by `check_target`.
    pub const TARGET: u8 = 0x33;
    /// Event logged by `authenticate_image`.
    pub const AUTHENTICATE: u8 = 0x0A;
    /// Event logged by `run_dcd`.
    pub const DCD: u8 = 0xDD;
    /// Event logged by `run_csf`.
    pub const CSF: u8 = 0xCF;
    /// Event logged by a CSF command.
    pub const COMMAND: u8 = 0xC0;
    /// Event logged by Authenticate Data.
    pub const AUT_DAT: u8 = 0xDB;
    /// Event logged by `assert`.
    pub const ASSERT: u8 = 0xA0;
    /// Event logged by `exit`.
    pub const EXIT: u8 = 0xEE;
    /// Fabrication (U-Boot's name).
    pub const FAB: u8 = 0xFF;
}

/// Security configuration values (`report_status`).
pub mod config {
    /// Open: HAB logs but does not enforce.
    pub const OPEN: u8 = 0xF0;
    /// Closed: HAB enforces.
    pub const CLOSED: u8 = 0xCC;
    /// Field return.
    pub const RETURN: u8 = 0x33;
}

/// Security state values (`report_status`).
pub mod state {
    /// Initialising.
    pub const INITIAL: u8 = 0x33;
    /// Check.
    pub const CHECK: u8 = 0x55;
    /// Non-secure.
    pub const NONSECURE: u8 = 0x66;
    /// Trusted.
    pub const TRUSTED: u8 = 0x99;
    /// Secure.
    pub const SECURE: u8 = 0xAA;
    /// Soft fail.
    pub const FAIL_SOFT: u8 = 0xCC;
    /// Hard fail.
    pub const FAIL_HARD: u8 = 0xFF;
    /// No security state machine.
    pub const NONE: u8 = 0xF0;
}

/// `hab.h` name of a status.
pub const fn status_name(v: u8) -> Option<&'static str> {
    Some(match v {
        status::ANY => "HAB_STS_ANY",
        status::FAILURE => "HAB_FAILURE",
        status::WARNING => "HAB_WARNING",
        status::SUCCESS => "HAB_SUCCESS",
        _ => return None,
    })
}

/// `hab.h` name of a reason.
pub const fn reason_name(v: u8) -> Option<&'static str> {
    use reason::*;
    Some(match v {
        ANY => "HAB_RSN_ANY",
        UNS_COMMAND => "HAB_UNS_COMMAND",
        INV_IVT => "HAB_INV_IVT",
        INV_COMMAND => "HAB_INV_COMMAND",
        UNS_STATE => "HAB_UNS_STATE",
        UNS_ENGINE => "HAB_UNS_ENGINE",
        INV_ASSERTION => "HAB_INV_ASSERTION",
        INV_INDEX => "HAB_INV_INDEX",
        INV_CSF => "HAB_INV_CSF",
        UNS_ALGORITHM => "HAB_UNS_ALGORITHM",
        UNS_PROTOCOL => "HAB_UNS_PROTOCOL",
        INV_SIZE => "HAB_INV_SIZE",
        INV_SIGNATURE => "HAB_INV_SIGNATURE",
        UNS_KEY => "HAB_UNS_KEY",
        INV_KEY => "HAB_INV_KEY",
        INV_RETURN => "HAB_INV_RETURN",
        INV_CERTIFICATE => "HAB_INV_CERTIFICATE",
        INV_ADDRESS => "HAB_INV_ADDRESS",
        UNS_ITEM => "HAB_UNS_ITEM",
        INV_DCD => "HAB_INV_DCD",
        INV_CALL => "HAB_INV_CALL",
        OVR_COUNT => "HAB_OVR_COUNT",
        OVR_STORAGE => "HAB_OVR_STORAGE",
        MEM_FAIL => "HAB_MEM_FAIL",
        ENG_FAIL => "HAB_ENG_FAIL",
        _ => return None,
    })
}

/// `hab.h` name of a context.
pub const fn context_name(v: u8) -> Option<&'static str> {
    use context::*;
    Some(match v {
        ANY => "HAB_CTX_ANY",
        ENTRY => "HAB_CTX_ENTRY",
        TARGET => "HAB_CTX_TARGET",
        AUTHENTICATE => "HAB_CTX_AUTHENTICATE",
        DCD => "HAB_CTX_DCD",
        CSF => "HAB_CTX_CSF",
        COMMAND => "HAB_CTX_COMMAND",
        AUT_DAT => "HAB_CTX_AUT_DAT",
        ASSERT => "HAB_CTX_ASSERT",
        EXIT => "HAB_CTX_EXIT",
        FAB => "HAB_CTX_FAB",
        _ => return None,
    })
}
