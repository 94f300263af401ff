//! Cross-crate checks that the workspace's pieces agree with each other.

use mcproof_server::protocol::ProtocolVersion;

/// Every revision the reference server negotiates is one the harness knows about.
#[test]
fn harness_knows_every_revision_the_server_speaks() {
    for version in ProtocolVersion::ALL {
        assert!(mcproof::KNOWN_REVISIONS.contains(&version.as_str()), "{version} unknown to the harness");
    }
}
