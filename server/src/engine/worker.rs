//! Each conversation's worker: runs queued turns one after another and closes each
//! with exactly one `end_of_turn` message.

use std::sync::Arc;

use app::protocol::{Message, MessageType, RunStatus};
use tokio_util::sync::CancellationToken;

use super::conversation::{Conversation, TurnControl};

impl Conversation {
    /// Runs queued turns one after another, for as long as the server runs.
    pub(super) async fn worker(self: Arc<Self>) {
        let shutdown = self.shared.shutdown.clone();
        loop {
            let next = {
                let mut rt = self.runtime();
                match rt.queue.pop_front() {
                    Some(text) => {
                        // Not a child of `shutdown`: stopping a turn is always explicit,
                        // so its tool calls get the right status.
                        let cancel = CancellationToken::new();
                        // Under the runtime lock, so no stop can slip in between.
                        self.session.begin_turn();
                        let stop = rt.pending_stop.take();
                        if let Some(stop) = &stop {
                            cancel.cancel();
                            self.session.stop_tools(stop.status);
                        }
                        rt.turn = Some(TurnControl {
                            cancel: cancel.clone(),
                            stop,
                        });
                        rt.status = RunStatus::Running;
                        Some((text, cancel))
                    }
                    None => {
                        // A chat still being appended wakes the worker when queued.
                        if rt.appending == 0 {
                            rt.status = RunStatus::Idle;
                        }
                        None
                    }
                }
            };
            self.notify_changed();
            match next {
                Some((text, cancel)) => self.run_turn(text, cancel).await,
                None => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn run_turn(&self, text: String, cancel: CancellationToken) {
        let tree = self.tree.lock().await;
        let result = match self.ensure_closed().await {
            Ok(()) => {
                let start = self.changes_begin().await;
                let result = self
                    .session
                    .run_turn(self.cwd(), self.first_message_index(), cancel, &text)
                    .await;
                // Its changes belong to the turn, so they come before its closing
                // message; a turn whose log failed gets none.
                if result.is_ok() {
                    self.changes_end(start).await;
                }
                result
            }
            Err(err) => Err(err.into()),
        };
        drop(tree);
        let stop = self.runtime().turn.take().and_then(|t| t.stop);
        let end = match result {
            Ok(end) => end,
            Err(err) => {
                // A storage failure: this turn's tool result may be missing, so it is
                // closed from what the log really holds, never by a bare closing message.
                tracing::error!(conversation = %self.id, %err, "the turn failed");
                self.runtime().unclosed = Some(err.to_string());
                if let Err(err) = self.ensure_closed().await {
                    tracing::error!(conversation = %self.id, %err, "cannot close the turn; retrying before anything else is appended");
                }
                self.touch(|_| {}).await;
                return;
            }
        };
        let mut closing = Message::new(MessageType::Agent, end.text);
        closing.end_of_turn = true;
        closing.usage = end.usage;
        if let Some(stop) = stop {
            closing.content = format!("Turn stopped: {}.", stop.reason);
            if stop.dropped > 0 {
                closing.content.push_str(&format!(
                    " {} queued message(s) were not run.",
                    stop.dropped
                ));
            }
        }
        if let Err(err) = self.append(closing).await {
            tracing::error!(conversation = %self.id, %err, "cannot close the turn; retrying before anything else is appended");
            self.runtime().unclosed = Some(err.to_string());
        }
        self.touch(|_| {}).await;
    }
}
