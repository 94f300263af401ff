//! Consents (per user and client) and login sessions, both server-side and in this process.
//!
//! Consent is keyed by the client id, so approving one client never approves another (a
//! dynamically registered client is an unknown party). The login-session cookie holds only a
//! random id; the server keeps its SHA-256, so a leaked session table holds no usable cookie.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{random_token, secret_key};

/// Most login sessions kept at once; the oldest is dropped beyond it (its user signs in again).
const MAX_LOGIN_SESSIONS: usize = 10_000;
/// Most consents kept at once; beyond it, an arbitrary consent is dropped (the user is asked again).
const MAX_CONSENTS: usize = 100_000;

/// Scopes each user approved for each client.
#[derive(Debug, Default)]
pub(crate) struct Consents {
    granted: Mutex<HashMap<(String, String), HashSet<String>>>,
}

impl Consents {
    /// Whether `user` already approved every scope in `scopes` for `client_id`.
    pub(crate) fn covers(&self, user: &str, client_id: &str, scopes: &[String]) -> bool {
        let granted = self.granted.lock();
        granted.get(&(user.to_owned(), client_id.to_owned())).is_some_and(|set| scopes.iter().all(|s| set.contains(s)))
    }

    pub(crate) fn record(&self, user: &str, client_id: &str, scopes: &[String]) {
        let mut granted = self.granted.lock();
        let key = (user.to_owned(), client_id.to_owned());
        if !granted.contains_key(&key)
            && granted.len() >= MAX_CONSENTS
            && let Some(victim) = granted.keys().next().cloned()
        {
            granted.remove(&victim);
        }
        granted.entry(key).or_default().extend(scopes.iter().cloned());
    }
}

/// Who is signed in, by session-id hash.
#[derive(Debug)]
pub(crate) struct LoginSessions {
    ttl: Duration,
    sessions: Mutex<HashMap<String, (String, Instant)>>,
}

impl LoginSessions {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, sessions: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session for `user`; returns the cookie value, or `None` without randomness.
    pub(crate) fn start(&self, user: &str) -> Option<String> {
        let id = random_token(32).ok()?;
        let now = Instant::now();
        let mut sessions = self.sessions.lock();
        sessions.retain(|_, (_, deadline)| *deadline > now);
        if sessions.len() >= MAX_LOGIN_SESSIONS {
            let oldest = sessions.iter().min_by_key(|(_, (_, deadline))| *deadline).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(secret_key(&id), (user.to_owned(), now + self.ttl));
        Some(id)
    }

    /// The signed-in user of a session cookie, if the session is live.
    pub(crate) fn user(&self, cookie: &str) -> Option<String> {
        let key = secret_key(cookie);
        let mut sessions = self.sessions.lock();
        match sessions.get(&key) {
            Some((user, deadline)) if *deadline > Instant::now() => Some(user.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn consent_is_per_user_and_client_and_covers_subsets() {
        let c = Consents::default();
        c.record("alice", "client-a", &s(&["mcp:read", "mcp:write"]));
        assert!(c.covers("alice", "client-a", &s(&["mcp:read"])));
        assert!(c.covers("alice", "client-a", &s(&["mcp:read", "mcp:write"])));
        assert!(!c.covers("alice", "client-a", &s(&["mcp:admin"])));
        assert!(!c.covers("alice", "client-b", &s(&["mcp:read"])));
        assert!(!c.covers("bob", "client-a", &s(&["mcp:read"])));
    }

    #[test]
    fn login_sessions_expire_and_are_unguessable() {
        let sessions = LoginSessions::new(Duration::from_millis(50));
        let id = sessions.start("alice").expect("session");
        assert_eq!(id.len(), 43);
        assert_eq!(sessions.user(&id).as_deref(), Some("alice"));
        assert_eq!(sessions.user("forged"), None);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(sessions.user(&id), None);
    }
}
