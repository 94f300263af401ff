//! mcproof harness
