//! One module per page.

pub mod conversation;
pub mod inbox;
pub mod list;
