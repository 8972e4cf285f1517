//! ACP agents (in progress).
