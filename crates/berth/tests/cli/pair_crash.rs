//! The crash matrix: the daemon killed at every step of pairing start, stop and rollback,
//! and of snapshot capture and restore; started again, it recovers the user's state exactly.
