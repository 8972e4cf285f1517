//! Pieces of the conversation page.

pub mod indicator;
pub mod terminal;
pub mod tool_card;
