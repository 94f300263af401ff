//! API keys for machine clients: `mcp_sk_` + 43 base64url characters (32 bytes from the
//! operating system's CSPRNG).
//!
//! The prefix lets secret scanners and people recognise a leaked key; the 256 random bits make
//! guessing hopeless, which is also why a plain SHA-256 (not a slow password hash) is the right
//! thing to store: there is nothing to brute-force. Only that hash is kept, so a stolen store
//! file grants nothing. A key's public id is derived from the hash, never from key material.
//!
//! Rotation keeps the previous key working for a grace period (48 hours by default) so clients
//! can switch without downtime; revocation is immediate. Keys are read only from
//! `Authorization: Bearer` or `X-API-Key`; a key in a query string is refused (URLs end up in
//! logs, history and `Referer`).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, Uri};
use rand::TryRngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::Principal;
use super::policy::{self, Credential, CredentialError, SCOPE_ADMIN};
use super::www_authenticate::InvalidTokenReason;

/// Every key starts with this.
pub const KEY_PREFIX: &str = "mcp_sk_";
/// Random bytes in a key.
const SECRET_BYTES: usize = 32;
/// Their unpadded base64url length.
const SECRET_CHARS: usize = 43;
/// The length of a whole key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + SECRET_CHARS;
/// How long a rotated key keeps working.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(48 * 60 * 60);
/// Bytes of the hash that form a key's public id (12 hex digits).
const ID_BYTES: usize = 6;
/// The store file's format version.
const STORE_VERSION: u32 = 1;
const MAX_PRINCIPAL_LEN: usize = 128;

/// What a key may be: an ordinary authenticated principal, or an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyTier {
    /// Holds the scopes it was given; never `mcp:admin`.
    Authenticated,
    /// Always holds `mcp:admin`.
    Admin,
}

impl KeyTier {
    fn as_str(self) -> &'static str {
        match self {
            Self::Authenticated => "authenticated",
            Self::Admin => "admin",
        }
    }
}

/// A plaintext API key. It exists only between creation and being shown once, or while a
/// presented key is verified; `Debug` never prints it and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key itself, for the one place that must show or check it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

/// One stored key. Times are Unix seconds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Public id: hex of the first 6 bytes of the hash (safe to log and show).
    pub id: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    /// The principal the key authenticates as.
    pub principal: String,
    /// Granted scopes, least privileged first.
    pub scopes: Vec<String>,
    /// The key's tier.
    pub tier: KeyTier,
    /// When it was made.
    pub created_at: u64,
    /// When it was revoked; a revoked key is refused at once.
    #[serde(default)]
    pub revoked_at: Option<u64>,
    /// Set on a rotated key: the end of its grace period.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Set on a rotated key: the id of its successor.
    #[serde(default)]
    pub replaced_by: Option<String>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is not the key, but there is no reason to spread it either.
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("sha256", &"[REDACTED]")
            .field("principal", &self.principal)
            .field("scopes", &self.scopes)
            .field("tier", &self.tier)
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .field("expires_at", &self.expires_at)
            .field("replaced_by", &self.replaced_by)
            .finish()
    }
}

/// Where a key stands at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Valid.
    Active,
    /// Rotated; valid until `until` (Unix seconds).
    Grace {
        /// End of the grace period.
        until: u64,
    },
    /// Rotated, and the grace period is over.
    Expired,
    /// Revoked.
    Revoked,
}

impl KeyRecord {
    /// The key's state at `now`.
    pub fn state(&self, now: SystemTime) -> KeyState {
        let now = unix(now);
        match (self.revoked_at, self.expires_at) {
            (Some(_), _) => KeyState::Revoked,
            (None, Some(until)) if now >= until => KeyState::Expired,
            (None, Some(until)) => KeyState::Grace { until },
            (None, None) => KeyState::Active,
        }
    }
}

/// What a verified key grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    /// The key's public id (for the audit log).
    pub key_id: String,
    /// The principal id.
    pub principal: String,
    /// The key's scopes.
    pub scopes: Vec<String>,
    /// The key's tier.
    pub tier: KeyTier,
    /// When the key stops working (a rotated key), so no cache outlives it.
    pub expires_at: Option<SystemTime>,
}

impl KeyGrant {
    /// The principal requests run as.
    pub fn principal(&self) -> Principal {
        policy::principal_for(&self.principal, &self.scopes)
    }
}

/// API-key failures. None carries key material: a presented key is never echoed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not shaped like a key (`reason` is one of a fixed set).
    #[error("malformed API key: {0}")]
    Malformed(&'static str),
    /// Well-formed, but no such key.
    #[error("unknown API key")]
    Unknown,
    /// The key was revoked.
    #[error("API key {id} was revoked")]
    Revoked {
        /// Its public id.
        id: String,
    },
    /// The key was rotated and its grace period is over.
    #[error("API key {id} has expired")]
    Expired {
        /// Its public id.
        id: String,
    },
    /// The request's credential could not be read (query string, two credentials, malformed).
    #[error(transparent)]
    Presentation(#[from] CredentialError),
    /// A key id that is not 12 lowercase hex digits.
    #[error("invalid API key id (expected 12 lowercase hex digits)")]
    InvalidId,
    /// No key with that id.
    #[error("no API key with id {0}")]
    UnknownId(String),
    /// The key was already rotated (rotate its successor instead).
    #[error("API key {id} was already rotated; rotate {successor} instead")]
    AlreadyRotated {
        /// Its public id.
        id: String,
        /// The id of the key that replaced it.
        successor: String,
    },
    /// A principal that is empty, too long, or holds characters outside `[A-Za-z0-9._@:+-]`.
    #[error("invalid principal (1-128 characters from A-Z a-z 0-9 . _ @ : + -)")]
    InvalidPrincipal,
    /// A scope this server does not know.
    #[error("unknown scope {0:?} (expected mcp:read, mcp:write or mcp:admin)")]
    UnknownScope(String),
    /// A key without scopes could do nothing.
    #[error("an API key needs at least one scope")]
    NoScopes,
    /// `mcp:admin` was asked for on a key that is not an admin key.
    #[error("the mcp:admin scope is only given to admin keys")]
    AdminScopeNeedsAdminTier,
    /// The OS random generator failed; no key was made.
    #[error("the operating system random generator failed")]
    Random,
    /// Reading or writing the store failed.
    #[error("API key store {}: {source}", path.display())]
    Io {
        /// The store file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The store file is not a valid store.
    #[error("API key store {} is invalid: {reason}", path.display())]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The store file may be changed by other users, who could add keys for themselves.
    #[error("API key store {} is writable by group or others (chmod 600 it)", path.display())]
    InsecurePermissions {
        /// The store file.
        path: PathBuf,
    },
    /// Writing command output failed.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
}

impl KeyError {
    /// The `error_description` for a 401 caused by this error (all verification failures are
    /// 401 `invalid_token`; presentation errors have their own status, see [`CredentialError`]).
    pub fn invalid_token_reason(&self) -> InvalidTokenReason {
        match self {
            Self::Malformed(_) => InvalidTokenReason::Malformed,
            Self::Revoked { .. } | Self::Expired { .. } => InvalidTokenReason::Revoked,
            _ => InvalidTokenReason::Invalid,
        }
    }
}

/// The store file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    version: u32,
    keys: Vec<KeyRecord>,
}

/// Hashes a key id (the first bytes of SHA-256 of a key) without SipHash. The ids of stored
/// keys come from the CSPRNG, and lookups never insert, so an attacker who grinds presented
/// keys can only probe the table's existing layout, not shape it: a keyed hash buys nothing here.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    // Arrays hash their length first; it is the same for every id.
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        // The id fills 48 bits; the multiply spreads them into the top bits the table's tag uses.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

type IdMap = HashMap<[u8; ID_BYTES], usize, BuildHasherDefault<IdHasher>>;

/// The API keys, persisted as a JSON file of hashes (or only in memory, for tests).
///
/// Verification takes `&self`; changes take `&mut self` and are written through to the file
/// atomically before they count, so memory and disk never disagree.
pub struct ApiKeyStore {
    path: Option<PathBuf>,
    records: Vec<KeyRecord>,
    /// Decoded hashes, parallel to `records`.
    digests: Vec<[u8; 32]>,
    /// What each key grants, parallel to `records`: verification lends one out instead of
    /// cloning the principal and scopes.
    grants: Vec<KeyGrant>,
    /// Public id → index. Ids are unique in a store.
    by_id: IdMap,
}

impl fmt::Debug for ApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyStore").field("path", &self.path).field("keys", &self.records.len()).finish()
    }
}

impl ApiKeyStore {
    /// An empty store that lives only in memory.
    pub fn in_memory() -> Self {
        Self { path: None, records: Vec::new(), digests: Vec::new(), grants: Vec::new(), by_id: IdMap::default() }
    }

    /// Loads the store at `path`; a missing file is an empty store that will be created on the
    /// first change. Refuses a file that group or others may write.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| KeyError::Io { path: path.clone(), source };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self { path: Some(path), ..Self::in_memory() });
            }
            Err(e) => return Err(io(e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
            if mode & 0o022 != 0 {
                return Err(KeyError::InsecurePermissions { path });
            }
        }
        let corrupt = |reason: String| KeyError::Corrupt { path: path.clone(), reason };
        let file: StoreFile = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if file.version != STORE_VERSION {
            return Err(corrupt(format!("unsupported version {}", file.version)));
        }
        let mut store = Self { path: Some(path.clone()), ..Self::in_memory() };
        for record in file.keys {
            let id = record.id.clone();
            store.insert(record).map_err(|reason| corrupt(format!("key {id:?}: {reason}")))?;
        }
        Ok(store)
    }

    /// Every key, oldest first.
    pub fn list(&self) -> &[KeyRecord] {
        &self.records
    }

    /// Makes a key for `principal`. Returns the plaintext (show it once; it cannot be recovered)
    /// and the stored record. An admin key always holds `mcp:admin`; other keys never do.
    pub fn create<S: AsRef<str>>(
        &mut self,
        principal: &str,
        scopes: &[S],
        tier: KeyTier,
        now: SystemTime,
    ) -> Result<(ApiKey, KeyRecord), KeyError> {
        validate_principal(principal)?;
        let scopes = normalize_scopes(scopes, tier)?;
        let (key, record) = self.mint(principal, scopes, tier, unix(now))?;
        self.commit(|store| store.insert(record.clone()).map_err(|reason| store.corrupt(reason)))?;
        Ok((key, record))
    }

    /// Replaces key `id` with a new key of the same principal, scopes and tier. The old key keeps
    /// working until `now + grace`, then is refused.
    pub fn rotate(&mut self, id: &str, grace: Duration, now: SystemTime) -> Result<(ApiKey, KeyRecord), KeyError> {
        let index = self.index_of(id)?;
        let old = &self.records[index];
        match old.state(now) {
            KeyState::Revoked => return Err(KeyError::Revoked { id: old.id.clone() }),
            KeyState::Expired => return Err(KeyError::Expired { id: old.id.clone() }),
            KeyState::Grace { .. } | KeyState::Active => {}
        }
        if let Some(successor) = &old.replaced_by {
            return Err(KeyError::AlreadyRotated { id: old.id.clone(), successor: successor.clone() });
        }
        let now = unix(now);
        let (principal, scopes, tier) = (old.principal.clone(), old.scopes.clone(), old.tier);
        let (key, record) = self.mint(&principal, scopes, tier, now)?;
        self.commit(|store| {
            let old = &mut store.records[index];
            old.expires_at = Some(now.saturating_add(grace.as_secs()));
            old.replaced_by = Some(record.id.clone());
            store.grants[index] = grant_of(old);
            store.insert(record.clone()).map_err(|reason| store.corrupt(reason))
        })?;
        Ok((key, record))
    }

    /// Revokes key `id` at once (also a rotated key still in its grace period). Revoking twice
    /// keeps the first time.
    pub fn revoke(&mut self, id: &str, now: SystemTime) -> Result<KeyRecord, KeyError> {
        let index = self.index_of(id)?;
        if self.records[index].revoked_at.is_none() {
            self.commit(|store| {
                store.records[index].revoked_at = Some(unix(now));
                Ok(())
            })?;
        }
        Ok(self.records[index].clone())
    }

    /// Verifies a presented key.
    ///
    /// Constant time with respect to the secrets: the format check looks only at the presented
    /// value; the key is then hashed, and the lookup goes by the first 6 bytes of that hash, which
    /// is the key's *public* id (an attacker who learns from timing whether an id exists learns
    /// nothing `keys list` does not print). The full 32-byte stored hash, the only secret-bearing
    /// value, is compared with `subtle::ConstantTimeEq`. Timing can at most reveal bits of
    /// SHA-256 of the attacker's own input, and turning those into a key would need a preimage.
    ///
    /// The grant is lent from the store: verifying allocates nothing.
    pub fn verify(&self, presented: &str, now: SystemTime) -> Result<&KeyGrant, KeyError> {
        check_format(presented)?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let Some(&index) = self.by_id.get(&id_bytes(&digest)) else { return Err(KeyError::Unknown) };
        if !digests_equal(&self.digests[index], &digest) {
            return Err(KeyError::Unknown);
        }
        let record = &self.records[index];
        match record.state(now) {
            KeyState::Revoked => Err(KeyError::Revoked { id: record.id.clone() }),
            KeyState::Expired => Err(KeyError::Expired { id: record.id.clone() }),
            KeyState::Active | KeyState::Grace { .. } => Ok(&self.grants[index]),
        }
    }

    /// Generates a fresh key whose id is not taken (a 48-bit id collision is astronomically rare;
    /// drawing again keeps ids unique regardless).
    fn mint(
        &self,
        principal: &str,
        scopes: Vec<String>,
        tier: KeyTier,
        now: u64,
    ) -> Result<(ApiKey, KeyRecord), KeyError> {
        for _ in 0..4 {
            let mut secret = [0u8; SECRET_BYTES];
            rand::rngs::OsRng.try_fill_bytes(&mut secret).map_err(|_| KeyError::Random)?;
            let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
            let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
            if self.by_id.contains_key(&id_bytes(&digest)) {
                continue;
            }
            let record = KeyRecord {
                id: hex::encode(id_bytes(&digest)),
                sha256: hex::encode(digest),
                principal: principal.to_owned(),
                scopes,
                tier,
                created_at: now,
                revoked_at: None,
                expires_at: None,
                replaced_by: None,
            };
            return Ok((ApiKey(key), record));
        }
        Err(KeyError::Random)
    }

    /// Applies `change`, saves, and undoes the change if saving fails.
    fn commit(&mut self, change: impl FnOnce(&mut Self) -> Result<(), KeyError>) -> Result<(), KeyError> {
        let before = (self.records.clone(), self.digests.clone(), self.grants.clone(), self.by_id.clone());
        let result = change(self).and_then(|()| self.save());
        if result.is_err() {
            (self.records, self.digests, self.grants, self.by_id) = before;
        }
        result
    }

    /// Checks `record` and adds it to the indexes.
    fn insert(&mut self, record: KeyRecord) -> Result<(), String> {
        let digest: [u8; 32] = hex::decode(&record.sha256)
            .ok()
            .filter(|_| record.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .and_then(|d| d.try_into().ok())
            .ok_or("sha256 is not 64 lowercase hex digits")?;
        let id = id_bytes(&digest);
        if record.id != hex::encode(id) {
            return Err("id does not match its hash".into());
        }
        if self.by_id.contains_key(&id) {
            return Err("duplicate id".into());
        }
        validate_principal(&record.principal).map_err(|e| e.to_string())?;
        if normalize_scopes(&record.scopes, record.tier).map_err(|e| e.to_string())? != record.scopes {
            return Err("scopes are not in canonical form".into());
        }
        if let Some(successor) = &record.replaced_by {
            parse_id(successor).map_err(|e| e.to_string())?;
        }
        self.by_id.insert(id, self.records.len());
        self.digests.push(digest);
        self.grants.push(grant_of(&record));
        self.records.push(record);
        Ok(())
    }

    /// An internal inconsistency (unreachable: new records are valid by construction).
    fn corrupt(&self, reason: String) -> KeyError {
        KeyError::Corrupt { path: self.path.clone().unwrap_or_default(), reason }
    }

    fn index_of(&self, id: &str) -> Result<usize, KeyError> {
        self.by_id.get(&parse_id(id)?).copied().ok_or_else(|| KeyError::UnknownId(id.to_owned()))
    }

    /// Writes the store: a temporary file in the same directory (mode 0600), fsynced, then
    /// renamed over the old one, so a crash leaves either the old or the new store, never half.
    fn save(&self) -> Result<(), KeyError> {
        let Some(path) = &self.path else { return Ok(()) };
        let io = |source| KeyError::Io { path: path.clone(), source };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let file = StoreFile { version: STORE_VERSION, keys: self.records.clone() };
        let mut json = serde_json::to_vec_pretty(&file).map_err(|e| io(e.into()))?;
        json.push(b'\n');
        let mut tmp = tempfile::Builder::new().prefix(".api-keys").suffix(".tmp").tempfile_in(dir).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        tmp.write_all(&json).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        // Make the rename itself durable; not every platform can open a directory, so best effort.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// The API key a request presents, if any: from `Authorization: Bearer mcp_sk_…` or
/// `X-API-Key`. A credential in the query string is an error, so the HTTP layer can refuse it
/// with 400 (and must not log that URL). A bearer token that is not an API key yields `None`.
pub fn presented_key(headers: &HeaderMap, uri: &Uri) -> Result<Option<ApiKey>, KeyError> {
    match Credential::from_request(headers, uri)? {
        Credential::ApiKey(key) => Ok(Some(ApiKey(key))),
        Credential::Bearer(_) | Credential::None => Ok(None),
    }
}

/// Whether two digests are equal, in constant time: the words' differences are OR-ed together
/// without branches and only the result is tested, by `subtle` (one barrier instead of the 32 a
/// byte-wise `ct_eq` of the arrays costs).
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u64;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let mut wx = [0u8; 8];
        let mut wy = [0u8; 8];
        wx.copy_from_slice(x);
        wy.copy_from_slice(y);
        diff |= u64::from_ne_bytes(wx) ^ u64::from_ne_bytes(wy);
    }
    bool::from(diff.ct_eq(&0))
}

/// What `record` grants while it is valid.
fn grant_of(record: &KeyRecord) -> KeyGrant {
    KeyGrant {
        key_id: record.id.clone(),
        principal: record.principal.clone(),
        scopes: record.scopes.clone(),
        tier: record.tier,
        expires_at: record.expires_at.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
    }
}

/// Prefix, length, alphabet, and that the 43 characters decode to exactly 32 bytes (canonical
/// base64url: the two spare bits of the last character are zero). Decodes onto the stack.
fn check_format(presented: &str) -> Result<(), KeyError> {
    let secret = presented.strip_prefix(KEY_PREFIX).ok_or(KeyError::Malformed("wrong prefix"))?;
    if secret.len() != SECRET_CHARS {
        return Err(KeyError::Malformed("wrong length"));
    }
    // 43 characters may decode to up to 33 bytes as far as the decoder's size check knows.
    let mut buf = [0u8; SECRET_BYTES + 1];
    match URL_SAFE_NO_PAD.decode_slice(secret, &mut buf) {
        Ok(SECRET_BYTES) => Ok(()),
        _ => Err(KeyError::Malformed("not base64url")),
    }
}

fn id_bytes(digest: &[u8; 32]) -> [u8; ID_BYTES] {
    let mut id = [0u8; ID_BYTES];
    id.copy_from_slice(&digest[..ID_BYTES]);
    id
}

fn parse_id(id: &str) -> Result<[u8; ID_BYTES], KeyError> {
    if id.len() != 2 * ID_BYTES || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(KeyError::InvalidId);
    }
    hex::decode(id).ok().and_then(|v| v.try_into().ok()).ok_or(KeyError::InvalidId)
}

fn validate_principal(principal: &str) -> Result<(), KeyError> {
    let ok = !principal.is_empty()
        && principal.len() <= MAX_PRINCIPAL_LEN
        && principal.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@:+-".contains(&b));
    if ok { Ok(()) } else { Err(KeyError::InvalidPrincipal) }
}

/// Known scopes only, deduplicated, least privileged first; items may themselves be
/// comma- or space-separated lists (`--scopes mcp:read,mcp:write`). Admin keys get `mcp:admin`.
fn normalize_scopes<S: AsRef<str>>(scopes: &[S], tier: KeyTier) -> Result<Vec<String>, KeyError> {
    let mut wanted = [false; policy::SCOPES.len()];
    for item in scopes {
        for scope in item.as_ref().split([',', ' ']).filter(|s| !s.is_empty()) {
            let Some(i) = policy::SCOPES.iter().position(|s| *s == scope) else {
                return Err(KeyError::UnknownScope(scope.chars().take(64).collect()));
            };
            wanted[i] = true;
        }
    }
    let admin = policy::SCOPES.iter().position(|s| *s == SCOPE_ADMIN).unwrap_or(policy::SCOPES.len() - 1);
    match tier {
        KeyTier::Admin => wanted[admin] = true,
        KeyTier::Authenticated if wanted[admin] => return Err(KeyError::AdminScopeNeedsAdminTier),
        KeyTier::Authenticated => {}
    }
    let out: Vec<String> =
        policy::SCOPES.iter().zip(wanted).filter(|(_, w)| *w).map(|(s, _)| (*s).to_owned()).collect();
    if out.is_empty() { Err(KeyError::NoScopes) } else { Ok(out) }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The `mcproof-server keys …` subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysCommand {
    /// Make a key and print it once.
    Create {
        /// The store file.
        store: PathBuf,
        /// The principal the key authenticates as.
        principal: String,
        /// Scopes (each item may be a comma-separated list).
        scopes: Vec<String>,
        /// An admin key (adds `mcp:admin`).
        admin: bool,
    },
    /// Replace a key; the old one works for the grace period.
    Rotate {
        /// The store file.
        store: PathBuf,
        /// The key's public id.
        id: String,
        /// Grace period in hours (default 48).
        grace_hours: Option<u64>,
    },
    /// Revoke a key at once.
    Revoke {
        /// The store file.
        store: PathBuf,
        /// The key's public id.
        id: String,
    },
    /// List keys (ids, principals, scopes, states; never keys or hashes).
    List {
        /// The store file.
        store: PathBuf,
    },
}

/// Runs a keys subcommand. A new key goes alone on a line to `out` (so scripts can capture it);
/// everything for the operator, including the warning that the key is shown only this once,
/// goes to `err`.
pub fn execute(cmd: KeysCommand, out: &mut impl Write, err: &mut impl Write) -> Result<(), KeyError> {
    execute_at(cmd, out, err, SystemTime::now())
}

fn execute_at(cmd: KeysCommand, out: &mut impl Write, err: &mut impl Write, now: SystemTime) -> Result<(), KeyError> {
    let o = KeyError::Output;
    match cmd {
        KeysCommand::Create { store, principal, scopes, admin } => {
            let mut keys = ApiKeyStore::load(&store)?;
            let tier = if admin { KeyTier::Admin } else { KeyTier::Authenticated };
            let (key, record) = keys.create(&principal, &scopes, tier, now)?;
            writeln!(out, "{}", key.expose_secret()).map_err(o)?;
            writeln!(
                err,
                "Created API key {} for {} ({}, scopes: {}).\n\
                 This key is shown only once and cannot be recovered: store it in a secret manager now.",
                record.id,
                record.principal,
                record.tier.as_str(),
                record.scopes.join(" ")
            )
            .map_err(o)?;
        }
        KeysCommand::Rotate { store, id, grace_hours } => {
            let mut keys = ApiKeyStore::load(&store)?;
            let grace = grace_hours.map_or(DEFAULT_GRACE, |h| Duration::from_secs(h.saturating_mul(3600)));
            let (key, record) = keys.rotate(&id, grace, now)?;
            let until = unix(now).saturating_add(grace.as_secs());
            writeln!(out, "{}", key.expose_secret()).map_err(o)?;
            writeln!(
                err,
                "Rotated API key {id} to {}. The old key keeps working until {}.\n\
                 This key is shown only once and cannot be recovered: store it in a secret manager now.",
                record.id,
                rfc3339(until)
            )
            .map_err(o)?;
        }
        KeysCommand::Revoke { store, id } => {
            let mut keys = ApiKeyStore::load(&store)?;
            let record = keys.revoke(&id, now)?;
            writeln!(out, "Revoked API key {} of {}.", record.id, record.principal).map_err(o)?;
        }
        KeysCommand::List { store } => {
            let keys = ApiKeyStore::load(&store)?;
            writeln!(
                out,
                "{:<12}  {:<24}  {:<13}  {:<30}  {:<20}  STATE",
                "ID", "PRINCIPAL", "TIER", "SCOPES", "CREATED"
            )
            .map_err(o)?;
            for r in keys.list() {
                let state = match r.state(now) {
                    KeyState::Active => "active".to_owned(),
                    KeyState::Grace { until } => format!("valid until {}", rfc3339(until)),
                    KeyState::Expired => "expired".to_owned(),
                    KeyState::Revoked => format!("revoked {}", rfc3339(r.revoked_at.unwrap_or_default())),
                };
                writeln!(
                    out,
                    "{:<12}  {:<24}  {:<13}  {:<30}  {:<20}  {state}",
                    r.id,
                    r.principal,
                    r.tier.as_str(),
                    r.scopes.join(","),
                    rfc3339(r.created_at)
                )
                .map_err(o)?;
            }
        }
    }
    Ok(())
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn digest_comparison_sees_every_byte() {
        let a: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert!(digests_equal(&a, &a));
        for i in 0..32 {
            for bit in 0..8 {
                let mut b = a;
                b[i] ^= 1 << bit;
                assert!(!digests_equal(&a, &b), "byte {i} bit {bit}");
            }
        }
    }

    const T0: u64 = 1_750_000_000;

    fn ok<T, E: fmt::Display>(r: Result<T, E>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    fn store_with_key() -> (ApiKeyStore, ApiKey, KeyRecord) {
        let mut s = ApiKeyStore::in_memory();
        let (k, r) = ok(s.create("alice", &["mcp:read", "mcp:write"], KeyTier::Authenticated, t(T0)));
        (s, k, r)
    }

    #[test]
    fn keys_have_the_documented_shape() {
        let (_, key, record) = store_with_key();
        let k = key.expose_secret();
        assert_eq!(k.len(), KEY_LEN);
        assert_eq!(KEY_LEN, 50);
        assert!(k.starts_with("mcp_sk_"));
        assert!(k[7..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(ok(URL_SAFE_NO_PAD.decode(&k[7..])).len(), 32);
        // Only the hash is kept, and the id comes from it.
        let digest = Sha256::digest(k.as_bytes());
        assert_eq!(record.sha256, hex::encode(digest));
        assert_eq!(record.id, hex::encode(&digest[..6]));
        assert!(!k.contains(&record.id));
        assert_eq!(record.scopes, ["mcp:read", "mcp:write"]);
        assert_eq!(record.created_at, T0);
    }

    #[test]
    fn keys_are_random() {
        let mut s = ApiKeyStore::in_memory();
        let (a, _) = ok(s.create("alice", &["mcp:read"], KeyTier::Authenticated, t(T0)));
        let (b, _) = ok(s.create("alice", &["mcp:read"], KeyTier::Authenticated, t(T0)));
        assert_ne!(a, b);
        assert_eq!(s.list().len(), 2);
    }

    #[test]
    fn a_valid_key_verifies() {
        let (s, key, record) = store_with_key();
        let grant = ok(s.verify(key.expose_secret(), t(T0 + 10)));
        assert_eq!(grant.key_id, record.id);
        assert_eq!(grant.principal, "alice");
        assert_eq!(grant.scopes, ["mcp:read", "mcp:write"]);
        assert_eq!(grant.tier, KeyTier::Authenticated);
        assert_eq!(grant.expires_at, None);
        assert_eq!(grant.principal(), Principal { id: "alice".into(), tier: crate::auth::Tier::Owner });
    }

    #[test]
    fn malformed_keys_are_refused_before_lookup() {
        let (s, key, _) = store_with_key();
        let k = key.expose_secret();
        let cases = [
            (format!("mcp_pk_{}", &k[7..]), "wrong prefix"),
            (format!("MCP_SK_{}", &k[7..]), "wrong prefix"),
            (k[7..].to_owned(), "wrong prefix"),
            (String::new(), "wrong prefix"),
            (k[..KEY_LEN - 1].to_owned(), "wrong length"),
            (format!("{k}A"), "wrong length"),
            ("mcp_sk_".to_owned(), "wrong length"),
            (format!("{}+", &k[..KEY_LEN - 1]), "not base64url"),
            (format!("{}/", &k[..KEY_LEN - 1]), "not base64url"),
            (format!("{}=", &k[..KEY_LEN - 1]), "not base64url"),
            (format!("mcp_sk_{}", "é".repeat(21) + "A"), "not base64url"),
            // 43 chars carry 258 bits: the last character's 2 spare bits must be zero.
            (format!("mcp_sk_{}B", "A".repeat(42)), "not base64url"),
        ];
        for (bad, reason) in cases {
            match s.verify(&bad, t(T0)) {
                Err(KeyError::Malformed(r)) => assert_eq!(r, reason, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(KeyError::Malformed("wrong length").invalid_token_reason(), InvalidTokenReason::Malformed);
    }

    #[test]
    fn a_key_that_differs_in_one_character_is_unknown() {
        let (s, key, _) = store_with_key();
        let k = key.expose_secret();
        for pos in [7, 20, KEY_LEN - 2] {
            let mut bytes = k.as_bytes().to_vec();
            bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
            let changed = ok(String::from_utf8(bytes));
            assert!(matches!(s.verify(&changed, t(T0)), Err(KeyError::Unknown)), "{pos}");
        }
        // A well-formed key that was never issued.
        let other = format!("mcp_sk_{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
        let err = s.verify(&other, t(T0));
        assert!(matches!(err, Err(KeyError::Unknown)));
        assert_eq!(err.err().map(|e| e.invalid_token_reason()), Some(InvalidTokenReason::Invalid));
    }

    #[test]
    fn revoked_keys_are_refused() {
        let (mut s, key, record) = store_with_key();
        let revoked = ok(s.revoke(&record.id, t(T0 + 5)));
        assert_eq!(revoked.revoked_at, Some(T0 + 5));
        assert!(matches!(s.verify(key.expose_secret(), t(T0 + 6)), Err(KeyError::Revoked { id }) if id == record.id));
        // Idempotent: the first revocation time stays.
        assert_eq!(ok(s.revoke(&record.id, t(T0 + 50))).revoked_at, Some(T0 + 5));
        assert!(matches!(s.rotate(&record.id, DEFAULT_GRACE, t(T0 + 60)), Err(KeyError::Revoked { .. })));
    }

    #[test]
    fn rotation_keeps_the_old_key_for_the_grace_period() {
        let (mut s, old_key, old) = store_with_key();
        let grace = Duration::from_secs(3600);
        let (new_key, new) = ok(s.rotate(&old.id, grace, t(T0 + 100)));
        assert_ne!(new.id, old.id);
        assert_eq!((new.principal.as_str(), &new.scopes, new.tier), ("alice", &old.scopes, old.tier));
        let old_now = &s.list()[0];
        assert_eq!(old_now.expires_at, Some(T0 + 100 + 3600));
        assert_eq!(old_now.replaced_by.as_deref(), Some(new.id.as_str()));

        // Both work during the grace period; the old one reports when it stops.
        let g = ok(s.verify(old_key.expose_secret(), t(T0 + 100 + 3599)));
        assert_eq!(g.expires_at, Some(t(T0 + 100 + 3600)));
        assert!(s.verify(new_key.expose_secret(), t(T0 + 101)).is_ok());
        // Then only the new one.
        assert!(matches!(s.verify(old_key.expose_secret(), t(T0 + 100 + 3600)), Err(KeyError::Expired { .. })));
        assert!(s.verify(new_key.expose_secret(), t(T0 + 100 + 3600)).is_ok());
        assert_eq!(
            s.verify(old_key.expose_secret(), t(T0 + 100_000)).err().map(|e| e.invalid_token_reason()),
            Some(InvalidTokenReason::Revoked)
        );

        // The old key cannot be rotated again (no second successor), nor once it has expired.
        assert!(matches!(s.rotate(&old.id, grace, t(T0 + 200)), Err(KeyError::AlreadyRotated { .. })));
        assert!(matches!(s.rotate(&old.id, grace, t(T0 + 100_000)), Err(KeyError::Expired { .. })));
        // Revoking during grace ends it at once.
        let (mut s2, k2, r2) = store_with_key();
        ok(s2.rotate(&r2.id, DEFAULT_GRACE, t(T0)));
        ok(s2.revoke(&r2.id, t(T0 + 1)));
        assert!(matches!(s2.verify(k2.expose_secret(), t(T0 + 2)), Err(KeyError::Revoked { .. })));
    }

    #[test]
    fn default_grace_is_48_hours() {
        assert_eq!(DEFAULT_GRACE, Duration::from_secs(172_800));
        let (mut s, old_key, old) = store_with_key();
        ok(s.rotate(&old.id, DEFAULT_GRACE, t(T0)));
        assert!(s.verify(old_key.expose_secret(), t(T0 + 48 * 3600 - 1)).is_ok());
        assert!(matches!(s.verify(old_key.expose_secret(), t(T0 + 48 * 3600)), Err(KeyError::Expired { .. })));
    }

    #[test]
    fn key_ids_are_checked() {
        let (mut s, _, _) = store_with_key();
        assert!(matches!(s.revoke("nope", t(T0)), Err(KeyError::InvalidId)));
        assert!(matches!(s.revoke("ABCDEF012345", t(T0)), Err(KeyError::InvalidId)));
        assert!(matches!(s.revoke("000000000000", t(T0)), Err(KeyError::UnknownId(_))));
        assert!(matches!(s.rotate("0000000000001", DEFAULT_GRACE, t(T0)), Err(KeyError::InvalidId)));
    }

    #[test]
    fn principals_and_scopes_are_validated() {
        let mut s = ApiKeyStore::in_memory();
        let at = t(T0);
        for p in ["", "a b", "a\nb", "ä", &"a".repeat(129)] {
            assert!(matches!(s.create(p, &["mcp:read"], KeyTier::Authenticated, at), Err(KeyError::InvalidPrincipal)));
        }
        assert!(
            matches!(s.create("a", &["mcp:read", "openid"], KeyTier::Authenticated, at), Err(KeyError::UnknownScope(x)) if x == "openid")
        );
        assert!(matches!(s.create::<&str>("a", &[], KeyTier::Authenticated, at), Err(KeyError::NoScopes)));
        assert!(matches!(s.create("a", &[","], KeyTier::Authenticated, at), Err(KeyError::NoScopes)));
        assert!(matches!(
            s.create("a", &["mcp:admin"], KeyTier::Authenticated, at),
            Err(KeyError::AdminScopeNeedsAdminTier)
        ));
        // Lists are split, deduplicated and put in order.
        let (_, r) = ok(s.create("svc.bot@x", &["mcp:write,mcp:read", "mcp:read"], KeyTier::Authenticated, at));
        assert_eq!(r.scopes, ["mcp:read", "mcp:write"]);
        // Admin keys always hold mcp:admin.
        let (k, r) = ok(s.create::<&str>("ops", &[], KeyTier::Admin, at));
        assert_eq!(r.scopes, ["mcp:admin"]);
        let g = ok(s.verify(k.expose_secret(), at));
        assert_eq!(g.principal().tier, crate::auth::Tier::Admin);
        assert!(s.list().len() == 2);
    }

    #[test]
    fn debug_output_is_redacted() {
        let (s, key, record) = store_with_key();
        let dbg = format!("{key:?} {record:?} {s:?}");
        assert!(!dbg.contains(key.expose_secret()), "{dbg}");
        assert!(!dbg.contains(&record.sha256), "{dbg}");
        assert!(dbg.contains(&record.id));
        // Errors never carry a presented key.
        let bad = format!("{}x", key.expose_secret());
        let e = s.verify(&bad, t(T0)).err().map(|e| format!("{e} {e:?}")).unwrap_or_default();
        assert!(!e.contains(&bad[7..20]), "{e}");
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            let name = ok(http::HeaderName::from_bytes(n.as_bytes()));
            h.append(name, ok(HeaderValue::from_str(v)));
        }
        h
    }

    #[test]
    fn keys_are_taken_from_headers_only() {
        let (_, key, _) = store_with_key();
        let k = key.expose_secret();
        let uri: Uri = ok("/mcp".parse());
        let bearer = format!("Bearer {k}");
        assert_eq!(ok(presented_key(&headers(&[("authorization", &bearer)]), &uri)), Some(key.clone()));
        assert_eq!(ok(presented_key(&headers(&[("x-api-key", k)]), &uri)), Some(key.clone()));
        assert_eq!(ok(presented_key(&headers(&[("authorization", "Bearer eyJ.a.b")]), &uri)), None);
        assert_eq!(ok(presented_key(&headers(&[]), &uri)), None);
        for q in [format!("/mcp?api_key={k}"), format!("/mcp?key={k}"), "/mcp?access_token=x".to_owned()] {
            let uri: Uri = ok(q.parse());
            let r = presented_key(&headers(&[("x-api-key", k)]), &uri);
            assert!(matches!(r, Err(KeyError::Presentation(CredentialError::InQueryString))), "{q}");
            let r = presented_key(&headers(&[]), &uri);
            assert!(matches!(r, Err(KeyError::Presentation(CredentialError::InQueryString))), "{q}");
        }
        let r = presented_key(&headers(&[("x-api-key", k), ("authorization", &bearer)]), &uri);
        assert!(matches!(r, Err(KeyError::Presentation(CredentialError::MultipleCredentials))));
    }

    #[test]
    fn the_store_persists_atomically_with_mode_0600() {
        let dir = ok(tempfile::tempdir());
        let path = dir.path().join("keys.json");
        let mut s = ok(ApiKeyStore::load(&path));
        assert!(s.list().is_empty());
        assert!(!path.exists(), "loading a missing store creates nothing");
        let (key, rec) = ok(s.create("alice", &["mcp:read"], KeyTier::Authenticated, t(T0)));
        let (_, rec2) = ok(s.create("bob", &["mcp:write"], KeyTier::Authenticated, t(T0)));
        ok(s.revoke(&rec2.id, t(T0 + 1)));
        let (new_key, _) = ok(s.rotate(&rec.id, DEFAULT_GRACE, t(T0 + 2)));

        let text = ok(std::fs::read_to_string(&path));
        assert!(!text.contains(key.expose_secret()) && !text.contains(&key.expose_secret()[7..]));
        assert!(text.contains(&rec.sha256));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(ok(std::fs::metadata(&path)).permissions().mode() & 0o777, 0o600);
        }
        // No temporary files are left behind.
        assert_eq!(ok(std::fs::read_dir(dir.path())).count(), 1);

        let again = ok(ApiKeyStore::load(&path));
        assert_eq!(again.list(), s.list());
        assert!(again.verify(key.expose_secret(), t(T0 + 3)).is_ok());
        assert!(again.verify(new_key.expose_secret(), t(T0 + 3)).is_ok());
        assert!(matches!(again.verify(key.expose_secret(), t(T0 + 2 + 172_800)), Err(KeyError::Expired { .. })));
    }

    #[test]
    fn failed_saves_change_nothing() {
        let dir = ok(tempfile::tempdir());
        let path = dir.path().join("missing-dir").join("keys.json");
        let mut s = ok(ApiKeyStore::load(&path));
        assert!(matches!(s.create("alice", &["mcp:read"], KeyTier::Authenticated, t(T0)), Err(KeyError::Io { .. })));
        assert!(s.list().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_store_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = ok(tempfile::tempdir());
        let path = dir.path().join("keys.json");
        let mut s = ok(ApiKeyStore::load(&path));
        ok(s.create("alice", &["mcp:read"], KeyTier::Authenticated, t(T0)));
        ok(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)));
        assert!(matches!(ApiKeyStore::load(&path), Err(KeyError::InsecurePermissions { .. })));
    }

    #[test]
    fn corrupt_stores_are_refused() {
        let dir = ok(tempfile::tempdir());
        let path = dir.path().join("keys.json");
        let mut s = ok(ApiKeyStore::load(&path));
        let (_, rec) = ok(s.create("alice", &["mcp:read"], KeyTier::Authenticated, t(T0)));
        let good = ok(std::fs::read_to_string(&path));
        let write = |text: &str| {
            ok(std::fs::write(&path, text));
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                ok(std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)));
            }
        };
        let cases = [
            "not json".to_owned(),
            good.replace("\"version\": 1", "\"version\": 2"),
            good.replace(&format!("\"id\": \"{}\"", rec.id), "\"id\": \"000000000000\""),
            good.replace(&rec.sha256, &rec.sha256.to_uppercase()),
            good.replace("\"alice\"", "\"al ice\""),
            good.replace("\"mcp:read\"", "\"mcp:admin\""),
            good.replace("\"principal\"", "\"extra\": 1, \"principal\""),
            good.replace("\"keys\": [", &format!("\"keys\": [{},", serde_json::to_string(&rec).unwrap_or_default())),
        ];
        for bad in cases {
            write(&bad);
            assert!(matches!(ApiKeyStore::load(&path), Err(KeyError::Corrupt { .. })), "{bad}");
        }
        write(&good);
        assert!(ApiKeyStore::load(&path).is_ok());
    }

    #[test]
    fn cli_commands_print_the_key_once_and_never_again() {
        let dir = ok(tempfile::tempdir());
        let store = dir.path().join("keys.json");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let create = KeysCommand::Create {
            store: store.clone(),
            principal: "ci-bot".into(),
            scopes: vec!["mcp:read,mcp:write".into()],
            admin: false,
        };
        ok(execute_at(create, &mut out, &mut err, t(T0)));
        let key = ok(String::from_utf8(out)).trim_end().to_owned();
        let err = ok(String::from_utf8(err));
        assert_eq!(key.len(), KEY_LEN);
        assert!(err.contains("shown only once") && !err.contains(&key), "{err}");
        let keys = ok(ApiKeyStore::load(&store));
        let id = keys.list()[0].id.clone();
        assert!(keys.verify(&key, t(T0)).is_ok());

        let (mut out, mut err) = (Vec::new(), Vec::new());
        let rotate = KeysCommand::Rotate { store: store.clone(), id: id.clone(), grace_hours: Some(1) };
        ok(execute_at(rotate, &mut out, &mut err, t(T0)));
        let new_key = ok(String::from_utf8(out)).trim_end().to_owned();
        assert_ne!(new_key, key);
        assert!(ok(String::from_utf8(err)).contains("until 2025-06-15T16:06:40Z"));

        let mut out = Vec::new();
        ok(execute_at(KeysCommand::Revoke { store: store.clone(), id: id.clone() }, &mut out, &mut Vec::new(), t(T0)));
        assert_eq!(ok(String::from_utf8(out)), format!("Revoked API key {id} of ci-bot.\n"));

        let mut out = Vec::new();
        ok(execute_at(KeysCommand::List { store: store.clone() }, &mut out, &mut Vec::new(), t(T0)));
        let listing = ok(String::from_utf8(out));
        assert!(listing.contains(&id) && listing.contains("revoked 2025-06-15T15:06:40Z"), "{listing}");
        assert!(listing.contains("active") && listing.contains("mcp:read,mcp:write"), "{listing}");
        assert!(!listing.contains(&key[7..]) && !listing.contains(&new_key[7..]));
        let hashes = ok(ApiKeyStore::load(&store)).list().iter().map(|r| r.sha256.clone()).collect::<Vec<_>>();
        assert!(hashes.iter().all(|h| !listing.contains(h.as_str())));

        let bad = KeysCommand::Create { store, principal: "x".into(), scopes: vec!["root".into()], admin: false };
        assert!(matches!(execute_at(bad, &mut Vec::new(), &mut Vec::new(), t(T0)), Err(KeyError::UnknownScope(_))));
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(T0), "2025-06-15T15:06:40Z");
    }
}
