//! One module per page.

pub mod pipe_check;
