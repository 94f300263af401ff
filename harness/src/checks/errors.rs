//! Checks of the `errors` area (being written).

use crate::check::Check;

/// The checks of this area.
pub fn checks() -> Vec<Check> {
    Vec::new()
}
