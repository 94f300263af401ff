//! Who is calling, and what they may do.
//!
//! Authentication and authorization arrive as layers in a later issue; this module holds the
//! types every layer shares (principals, tiers, scopes) and the `public` policy in force until then.

use serde::{Deserialize, Serialize};

pub mod api_keys;
pub mod authenticator;
pub mod jwks;
pub mod jwt;
pub mod pkce;
pub mod policy;
pub mod www_authenticate;

/// Permission tiers, ordered from least to most privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Anyone, authenticated or not.
    Public,
    /// Any authenticated principal.
    Authenticated,
    /// The principal that owns the object the call touches (checked by the tool itself).
    Owner,
    /// Operators.
    Admin,
}

/// The identity a request is made under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// Stable identifier (`sub` of a token, owner of an API key, or `anonymous`).
    pub id: String,
    /// The highest tier this principal holds.
    pub tier: Tier,
}

impl Principal {
    /// The principal of every caller under the `public` policy.
    pub fn anonymous() -> Self {
        Self { id: "anonymous".to_owned(), tier: Tier::Owner }
    }

    /// A principal with operator rights (used by tests and, later, admin tokens).
    pub fn admin(id: &str) -> Self {
        Self { id: id.to_owned(), tier: Tier::Admin }
    }

    /// Whether this principal may use something that requires `tier`.
    pub fn may(&self, tier: Tier) -> bool {
        self.tier >= tier
    }
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthPolicy {
    /// Authentication off: every caller is [`Principal::anonymous`], which holds the public,
    /// authenticated and owner tiers but never admin. For local development only.
    Public,
    /// Every MCP request needs a valid bearer token or API key (the default).
    #[default]
    Required,
    /// Callers without a credential see and call only public tools; a presented credential must
    /// be valid. The conformance profile uses it.
    PublicTier,
}
