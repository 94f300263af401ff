//! Baselines of accepted findings (being written).
