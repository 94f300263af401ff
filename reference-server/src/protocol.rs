//! The MCP core shared by every transport: lifecycle, version negotiation and method dispatch.

use std::fmt;

/// Protocol revisions this server speaks, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
}

impl ProtocolVersion {
    pub const LATEST: Self = Self::V2025_11_25;
    pub const ALL: [Self; 3] = [Self::V2025_03_26, Self::V2025_06_18, Self::V2025_11_25];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
        }
    }

    /// JSON-RPC batches were removed in 2025-06-18.
    pub fn allows_batches(self) -> bool {
        self == Self::V2025_03_26
    }

    /// From 2025-11-25 (SEP-1303) argument-validation failures are tool errors (`isError`),
    /// not JSON-RPC -32602.
    pub fn validation_errors_are_tool_errors(self) -> bool {
        self >= Self::V2025_11_25
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
