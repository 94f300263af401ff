//! The resource server's front door: turns a request's credential into a caller, or into the
//! exact refusal (status and `WWW-Authenticate` challenge) the MCP authorization spec requires.

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, StatusCode, Uri};

use super::api_keys::ApiKeyStore;
use super::jwt::{TokenError, TokenVerifier};
use super::policy::{self, Action, Credential, CredentialError, Decision, Policy};
use super::www_authenticate::{self, InvalidTokenReason};
use super::{AuthPolicy, Principal};
use crate::store::SharedStore;

/// Who is calling, as established by [`Authenticator::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    /// The credential's scopes; `None` for a caller without a credential.
    pub scopes: Option<Vec<String>>,
    /// How the caller authenticated, for the audit log: `token`, `api-key` or `none`.
    pub via: &'static str,
    /// The token's `jti` or the key's public id (never the secret), for the audit log.
    pub credential_id: Option<String>,
}

impl Caller {
    /// The caller under the `public` policy (no authentication at all).
    pub fn unauthenticated_owner() -> Self {
        Self { principal: Principal::anonymous(), scopes: None, via: "none", credential_id: None }
    }
}

/// Why a request was refused before it reached the MCP core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the credential was presented in a way that is never accepted.
    BadCredential(CredentialError),
    /// 401 with `error="invalid_token"`.
    InvalidToken(InvalidTokenReason, &'static str),
    /// 401 (no credential) or 403 (insufficient scope).
    Denied(Decision),
    /// 503: revocations could not be checked; fail closed.
    Unavailable,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadCredential(e) => e.status(),
            Refusal::InvalidToken(..) => StatusCode::UNAUTHORIZED,
            Refusal::Denied(d) => d.status(),
            Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The `WWW-Authenticate` value, if the refusal has one.
    pub fn challenge(&self, resource_metadata_url: &str) -> Option<HeaderValue> {
        let value = match self {
            Refusal::BadCredential(e) => e.challenge(resource_metadata_url, policy::SCOPE_READ),
            Refusal::InvalidToken(reason, _) => www_authenticate::invalid_token(resource_metadata_url, Some(*reason)),
            Refusal::Denied(d) => d.challenge(resource_metadata_url)?,
            Refusal::Unavailable => return None,
        };
        value.ok()
    }

    /// A short label for logs and the audit trail (never request data).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::BadCredential(_) => "bad-credential",
            Refusal::InvalidToken(_, why) => why,
            Refusal::Denied(d) => d.label(),
            Refusal::Unavailable => "revocation-store-unavailable",
        }
    }
}

/// Verifies credentials under the configured policy.
pub struct Authenticator {
    policy: AuthPolicy,
    verifier: Option<TokenVerifier>,
    keys: Option<Arc<ApiKeyStore>>,
    store: Arc<dyn SharedStore>,
    /// The RFC 9728 metadata URL named in every challenge.
    pub resource_metadata_url: String,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("policy", &self.policy).finish_non_exhaustive()
    }
}

fn token_reason(e: &TokenError) -> InvalidTokenReason {
    match e {
        TokenError::Expired => InvalidTokenReason::Expired,
        TokenError::Revoked => InvalidTokenReason::Revoked,
        TokenError::WrongAudience => InvalidTokenReason::WrongAudience,
        TokenError::Oversized | TokenError::Malformed(_) => InvalidTokenReason::Malformed,
        _ => InvalidTokenReason::Invalid,
    }
}

impl Authenticator {
    pub fn new(
        policy: AuthPolicy,
        verifier: Option<TokenVerifier>,
        keys: Option<Arc<ApiKeyStore>>,
        store: Arc<dyn SharedStore>,
        resource_metadata_url: String,
    ) -> Self {
        Self { policy, verifier, keys, store, resource_metadata_url }
    }

    pub fn policy(&self) -> AuthPolicy {
        self.policy
    }

    /// Establishes the caller. Under `public` every caller is the anonymous owner; otherwise a
    /// presented credential must verify (a bad one is refused whatever the policy), and a caller
    /// without one is anonymous with the public tier (the scope decision comes later).
    pub async fn authenticate(&self, headers: &HeaderMap, uri: &Uri) -> Result<Caller, Refusal> {
        let Some(_) = self.policy.enforced() else { return Ok(Caller::unauthenticated_owner()) };
        match Credential::from_request(headers, uri).map_err(Refusal::BadCredential)? {
            Credential::None => {
                Ok(Caller { principal: policy::anonymous(), scopes: None, via: "none", credential_id: None })
            }
            Credential::ApiKey(key) => {
                let store = self
                    .keys
                    .as_ref()
                    .ok_or(Refusal::InvalidToken(InvalidTokenReason::Invalid, "api-keys-disabled"))?;
                let grant = store
                    .verify(&key, SystemTime::now())
                    .map_err(|e| Refusal::InvalidToken(e.invalid_token_reason(), "api-key-rejected"))?;
                Ok(Caller {
                    principal: grant.principal(),
                    scopes: Some(grant.scopes.clone()),
                    via: "api-key",
                    credential_id: Some(grant.key_id.clone()),
                })
            }
            Credential::Bearer(token) => {
                let verifier = self
                    .verifier
                    .as_ref()
                    .ok_or(Refusal::InvalidToken(InvalidTokenReason::Invalid, "tokens-disabled"))?;
                let verified = verifier
                    .verify(&token, SystemTime::now())
                    .await
                    .map_err(|e| Refusal::InvalidToken(token_reason(&e), e.code()))?;
                // Revocations made by any replica (a replayed code or refresh token) live in the
                // shared store; if it cannot answer, fail closed.
                match self.store.jti_revoked(verified.jti()).await {
                    Ok(false) => {}
                    Ok(true) => return Err(Refusal::InvalidToken(InvalidTokenReason::Revoked, "revoked")),
                    Err(_) => return Err(Refusal::Unavailable),
                }
                // Sorted and without duplicates, as scope sets are compared and shown.
                let mut scopes: Vec<String> = verified.scopes().map(str::to_owned).collect();
                scopes.sort_unstable();
                scopes.dedup();
                Ok(Caller {
                    principal: policy::principal_for(verified.sub(), &scopes),
                    scopes: Some(scopes),
                    via: "token",
                    credential_id: Some(verified.jti().to_owned()),
                })
            }
        }
    }

    /// Whether `caller` may perform `action`.
    pub fn authorize(&self, caller: &Caller, action: &Action<'_>) -> Decision {
        match self.policy.enforced() {
            None => Decision::Allow,
            Some(policy) => policy::decide(policy, caller.scopes.as_deref(), action),
        }
    }
}

impl AuthPolicy {
    /// The enforced policy, or `None` when authentication is off.
    pub fn enforced(self) -> Option<Policy> {
        match self {
            AuthPolicy::Public => None,
            AuthPolicy::Required => Some(Policy::Required),
            AuthPolicy::PublicTier => Some(Policy::PublicTier),
        }
    }
}
