//! Closing turns the log shows open: after a crash (at start) and after a storage
//! failure (before anything else is appended). No client may wait forever for a
//! result that will not come.

use app::protocol::{Message, MessageType, ToolStatus};

use super::conversation::Conversation;
use crate::log::now_rfc3339;
use crate::store::StoreError;

/// What `close_open_turn` writes.
struct Closing {
    tool_status: ToolStatus,
    tool_content: String,
    /// An `error` message before the closing one.
    error: Option<String>,
    turn_content: String,
    /// Whether the closing text counts the user messages queued behind the turn
    /// (they are dropped after a crash, but still run after a storage failure).
    count_queued: bool,
}

impl Conversation {
    /// Closes the turn a storage failure left open, if any: a result with status
    /// `error` for every tool call without one, an `error` message, then `Turn
    /// failed.`. Fails (and stays pending) while the log still cannot be written.
    pub(super) async fn ensure_closed(&self) -> Result<(), StoreError> {
        let Some(why) = self.runtime().unclosed.clone() else {
            return Ok(());
        };
        self.close_open_turn(&Closing {
            tool_status: ToolStatus::Error,
            tool_content: format!("stopped: the result could not be saved ({why})"),
            error: Some(why),
            turn_content: "Turn failed.".into(),
            count_queued: false,
        })
        .await?;
        self.runtime().unclosed = None;
        self.notify_changed();
        Ok(())
    }

    /// After a crash or kill: closes tool calls and turns that never ended.
    pub(super) async fn recover(&self) -> Result<(), StoreError> {
        let closed = self
            .close_open_turn(&Closing {
                tool_status: ToolStatus::Interrupted,
                tool_content: "Interrupted: the server stopped while this tool call was running."
                    .into(),
                error: None,
                turn_content: "Turn interrupted: the server stopped before it finished.".into(),
                count_queued: true,
            })
            .await?;
        if closed {
            tracing::info!(conversation = %self.id, "closed a turn left open by an earlier run");
        }
        Ok(())
    }

    /// Appends what the log needs to close its last turn, if that turn is open: a
    /// result for every tool call without one, then the `end_of_turn` message.
    /// Returns whether the turn was open.
    async fn close_open_turn(&self, how: &Closing) -> Result<bool, StoreError> {
        let store = &self.shared.store;
        let last_end = store.last_end_of_turn(&self.id).await?;
        let rows = store
            .read_kinds_after(
                &self.id,
                last_end,
                &[MessageType::User, MessageType::Agent, MessageType::Tool],
            )
            .await?;
        if rows.is_empty() {
            return Ok(false);
        }
        // Calls without a result yet, with their tool's name, in call order.
        let mut open: Vec<(String, String)> = Vec::new();
        let mut users: usize = 0;
        for row in rows {
            let message: Message = serde_json::from_str(&row.json)
                .map_err(|e| StoreError::Corrupt(format!("message {}: {e}", row.idx)))?;
            match message.kind {
                MessageType::User => users += 1,
                MessageType::Agent => open.extend(
                    message
                        .tool_calls
                        .into_iter()
                        .map(|c| (c.tool_call_id, c.name)),
                ),
                MessageType::Tool => {
                    open.retain(|(id, _)| Some(id) != message.tool_call_id.as_ref())
                }
                _ => {}
            }
        }
        let interrupted = !open.is_empty();
        for (id, name) in open {
            let mut result = Message::new(MessageType::Tool, how.tool_content.clone());
            result.tool_call_id = Some(id);
            result.tool_name = Some(name);
            result.status = Some(how.tool_status);
            result.tool_error = Some(true);
            result.end_time = Some(now_rfc3339());
            self.log.append(result).await?;
        }
        if let Some(error) = &how.error {
            self.log
                .append(Message::new(MessageType::Error, error.clone()))
                .await?;
        }
        let mut closing = Message::new(MessageType::Agent, how.turn_content.clone());
        // The first user message was this turn's; any others were queued behind it.
        let queued = users.saturating_sub(1);
        if how.count_queued && queued > 0 {
            closing
                .content
                .push_str(&format!(" {queued} queued message(s) were not run."));
        }
        closing.end_of_turn = true;
        self.log.append(closing).await?;
        if interrupted {
            self.session.mark_failed();
        }
        Ok(true)
    }
}
