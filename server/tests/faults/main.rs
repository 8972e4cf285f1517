//! Fault injection: clients that drop and resume at random during a flood, kill -9 of
//! the server mid-flood (several times), a reader that stops reading for 30 s, a data
//! directory that cannot be written, a disk that fills up during a flood, and 200
//! conversations running at once.
//!
//! Every test is bounded in count and time, talks to loopback only, and prints its
//! figures (`cargo test -p server --test faults -- --nocapture` shows them). The heavy
//! ones run one at a time (see `SERIAL`) so their timings and memory figures are not
//! skewed by each other on a small machine. `docs/faults.md` describes them.
//!
//! One module a kind of fault; `support` holds what they share.

#[path = "../common/mod.rs"]
mod common;

mod chaos;
mod disk;
mod kill;
mod scale;
mod stall;
mod support;
