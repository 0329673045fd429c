//! `berth pair` end to end: real repositories, a real daemon, the CLI.
