//! Cross-crate end-to-end and property tests live in `tests/tests/`.
