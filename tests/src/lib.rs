//! Shared helpers for the workspace tests: fixture loading.
