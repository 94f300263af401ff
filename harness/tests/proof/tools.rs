//! Proof cases for the checks of this group (being written).

use super::common::Case;

pub fn cases() -> Vec<Case> {
    Vec::new()
}
