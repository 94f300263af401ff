//! The people who can sign in to the built-in authorization server, from configuration.
//!
//! Passwords are kept only as Argon2id PHC strings. Verification always runs one Argon2
//! computation, also for unknown user names (against a dummy hash with the same cost as the
//! configured users), so the response time does not reveal which names exist.

use std::collections::HashMap;
use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::SUPPORTED_SCOPES;

/// Longest accepted user name, in bytes.
pub const MAX_USERNAME_BYTES: usize = 64;
/// Longest accepted password, in bytes: bounds the work one login attempt can cause.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A configured user. `password_hash` is an Argon2id PHC string (see [`hash_password`]).
#[derive(Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct User {
    pub name: String,
    pub password_hash: String,
    /// The most this user can grant a client; a request for more is narrowed to these.
    pub scopes: Vec<String>,
}

impl User {
    pub fn new(name: impl Into<String>, password_hash: impl Into<String>, scopes: &[&str]) -> Self {
        Self {
            name: name.into(),
            password_hash: password_hash.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The hash is not a secret in the strict sense, but it enables offline guessing: keep it out of logs.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Why a password could not be hashed or a user not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("no randomness available for a salt")]
    Random,
    #[error("invalid user {name:?}: {reason}")]
    InvalidUser { name: String, reason: String },
}

/// Hashes a password with Argon2id and the crate's default cost (19 MiB, 2 passes), the OWASP
/// minimum. For the CLI that writes configuration.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    hash_password_with(password, Params::DEFAULT)
}

/// Hashes with explicit Argon2id parameters (tests use the minimum cost to stay fast).
pub fn hash_password_with(password: &str, params: Params) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// The cheapest parameters Argon2 accepts; for tests only.
pub fn test_params() -> Params {
    Params::new(Params::MIN_M_COST, 1, 1, None).unwrap_or(Params::DEFAULT)
}

/// Configured users by name, plus the dummy hash that equalizes timing for unknown names.
pub struct UserDirectory {
    users: HashMap<String, User>,
    dummy_hash: String,
}

impl fmt::Debug for UserDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.users.keys().collect();
        names.sort();
        f.debug_struct("UserDirectory").field("users", &names).finish()
    }
}

impl UserDirectory {
    /// Validates every user: a unique, non-empty name of at most [`MAX_USERNAME_BYTES`] without
    /// control characters; an Argon2id PHC hash; scopes the server supports.
    pub fn new(users: &[User]) -> Result<Self, PasswordError> {
        let mut map = HashMap::new();
        let mut dummy_params = None;
        for user in users {
            let invalid =
                |reason: &str| PasswordError::InvalidUser { name: user.name.clone(), reason: reason.to_owned() };
            if user.name.is_empty() || user.name.len() > MAX_USERNAME_BYTES || user.name.chars().any(char::is_control) {
                return Err(invalid("name must be 1-64 bytes without control characters"));
            }
            let parsed =
                PasswordHash::new(&user.password_hash).map_err(|_| invalid("password_hash is not a PHC string"))?;
            if parsed.algorithm != Algorithm::Argon2id.ident() {
                return Err(invalid("password_hash must be Argon2id"));
            }
            let params =
                Params::try_from(&parsed).map_err(|_| invalid("password_hash has invalid Argon2 parameters"))?;
            if let Some(bad) = user.scopes.iter().find(|s| !SUPPORTED_SCOPES.contains(&s.as_str())) {
                return Err(invalid(&format!("unsupported scope {bad:?}")));
            }
            dummy_params.get_or_insert(params);
            if map.insert(user.name.clone(), user.clone()).is_some() {
                return Err(invalid("duplicate user name"));
            }
        }
        let dummy_hash = hash_password_with("not a real password", dummy_params.unwrap_or(Params::DEFAULT))?;
        Ok(Self { users: map, dummy_hash })
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks a name and password. CPU-heavy (one Argon2 run): call it from a blocking task.
    /// Returns the user only when both match.
    pub fn verify(&self, name: &str, password: &str) -> Option<&User> {
        if password.len() > MAX_PASSWORD_BYTES {
            return None;
        }
        let user = self.users.get(name);
        let phc = user.map_or(self.dummy_hash.as_str(), |u| u.password_hash.as_str());
        let ok = PasswordHash::new(phc)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        if ok { user } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> User {
        let hash = hash_password_with("correct horse", test_params()).expect("hash");
        User::new("alice", hash, &["mcp:read", "mcp:write"])
    }

    #[test]
    fn hashes_are_argon2id_phc_and_salted() {
        let a = hash_password_with("pw", test_params()).expect("hash");
        let b = hash_password_with("pw", test_params()).expect("hash");
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "salts differ");
    }

    #[test]
    fn default_hash_uses_default_cost() {
        let h = hash_password("pw").expect("hash");
        assert!(h.contains("m=19456,t=2,p=1"), "{h}");
    }

    #[test]
    fn verify_accepts_only_the_right_password() {
        let dir = UserDirectory::new(&[alice()]).expect("dir");
        assert_eq!(dir.verify("alice", "correct horse").map(|u| u.name.as_str()), Some("alice"));
        assert!(dir.verify("alice", "wrong").is_none());
        assert!(dir.verify("bob", "correct horse").is_none());
        assert!(dir.verify("alice", &"x".repeat(MAX_PASSWORD_BYTES + 1)).is_none());
    }

    #[test]
    fn rejects_bad_users() {
        let mut u = alice();
        u.password_hash = "plaintext".into();
        assert!(UserDirectory::new(&[u]).is_err());
        let mut u = alice();
        u.scopes = vec!["root".into()];
        assert!(UserDirectory::new(&[u]).is_err());
        assert!(UserDirectory::new(&[alice(), alice()]).is_err());
        let mut u = alice();
        u.name = String::new();
        assert!(UserDirectory::new(&[u]).is_err());
        // Argon2i is not accepted.
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("salt");
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, test_params())
            .hash_password(b"pw", &salt)
            .expect("hash")
            .to_string();
        assert!(UserDirectory::new(&[User::new("x", argon2i, &[])]).is_err());
    }

    #[test]
    fn debug_redacts_the_hash() {
        let u = alice();
        let text = format!("{u:?}");
        assert!(!text.contains("argon2id"), "{text}");
    }
}
