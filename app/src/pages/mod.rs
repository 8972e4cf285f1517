//! One module per page.

pub mod conversation;
pub mod list;
