//! Pieces of the conversation page.

pub mod agent_card;
pub mod approval;
pub mod diff;
pub mod indicator;
pub mod key_bar;
pub mod notify_toggle;
pub mod plan;
pub mod terminal;
pub mod tool_card;
