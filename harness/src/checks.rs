//! The check catalogue: one module per area, each a list of checks (data plus a run function).

use crate::check::Check;

pub mod auth;
pub mod errors;
pub mod jsonrpc;
pub mod lifecycle;
pub mod posture;
pub mod sessions;
pub mod stdio;
pub mod tools;
pub mod transport;

/// Every check, in catalogue order (area by area).
pub fn catalogue() -> Vec<Check> {
    let mut all = Vec::new();
    all.extend(jsonrpc::checks());
    all.extend(lifecycle::checks());
    all.extend(transport::checks());
    all.extend(sessions::checks());
    all.extend(auth::checks());
    all.extend(stdio::checks());
    all.extend(tools::checks());
    all.extend(errors::checks());
    all.extend(posture::checks());
    all
}

/// One check by id.
pub fn find(id: &str) -> Option<Check> {
    catalogue().into_iter().find(|c| c.info.id == id)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_unique_well_formed_and_documented() {
        let all = catalogue();
        let mut seen = HashSet::new();
        for c in &all {
            let i = &c.info;
            assert!(seen.insert(i.id), "duplicate id {}", i.id);
            let (area, name) = i.id.split_once('/').unwrap_or_else(|| panic!("{} has no area", i.id));
            for part in [area, name] {
                assert!(
                    !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                    "{} is not kebab-case area/name",
                    i.id
                );
            }
            assert!(
                !i.title.is_empty() && !i.source.is_empty() && !i.remediation.is_empty() && !i.description.is_empty(),
                "{} lacks text",
                i.id
            );
            assert!(i.weight > 0, "{} has no weight", i.id);
            assert!(!i.transports.is_empty() && !i.revisions.is_empty(), "{} applies to nothing", i.id);
        }
    }
}
