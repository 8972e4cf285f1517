//! One tool call from start to result: the limit, the output it streams into the
//! log, and exactly one `tool` result message, whatever happens.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use app::protocol::{Message, MessageType, ToolStatus};

use super::chunk::{RESULT_TAIL_CHARS, keep_last_chars};
use super::{Control, EnvPolicy, Tool, ToolContext, ToolOutcome};
use crate::log::now_rfc3339;
use crate::store::StoreError;

/// What a running tool sees of its call.
pub struct Call<'a> {
    id: &'a str,
    ctx: &'a ToolContext,
    /// The end of the output, for the result message.
    tail: OutputTail,
    /// The first storage error; output after it is dropped.
    write_failed: Option<String>,
}

impl Call<'_> {
    pub fn id(&self) -> &str {
        self.id
    }

    pub fn cwd(&self) -> &Path {
        &self.ctx.cwd
    }

    pub fn env(&self) -> &EnvPolicy {
        &self.ctx.toolbox.env
    }

    /// Makes the call cancellable and able to take input. If the turn is being
    /// stopped, it is stopped at once.
    pub fn register(&self, control: Arc<dyn Control>) {
        self.ctx.running.register(self.id, control);
    }

    /// How the call was stopped, if someone stopped it.
    pub fn stop_status(&self) -> Option<ToolStatus> {
        self.ctx.running.stop_status(self.id)
    }

    /// Appends output pieces to the log in one write. Fails once, on the first
    /// storage error (the tool should then stop: output would be lost); output
    /// after that is dropped.
    pub async fn output(&mut self, pieces: Vec<String>) -> Result<(), StoreError> {
        if self.write_failed.is_some() {
            return Ok(());
        }
        let mut batch = Vec::with_capacity(pieces.len());
        for text in pieces {
            self.tail.push(&text);
            let mut chunk = Message::new(MessageType::ToolOutput, text);
            chunk.tool_call_id = Some(self.id.to_string());
            batch.push(chunk);
        }
        if let Err(err) = self.ctx.log.append_all(batch).await {
            self.write_failed = Some(err.to_string());
            return Err(err);
        }
        Ok(())
    }

    /// The storage error that stopped the output, if any.
    pub fn write_failed(&self) -> Option<&str> {
        self.write_failed.as_deref()
    }
}

/// Runs `tool` as call `id` and appends its result message. Errors only when the
/// result itself could not be stored.
pub async fn run(ctx: &ToolContext, id: &str, tool: &dyn Tool) -> Result<ToolOutcome, StoreError> {
    let started = Instant::now();
    let start_time = now_rfc3339();
    let mut call = Call {
        id,
        ctx,
        tail: OutputTail::default(),
        write_failed: None,
    };
    let outcome = if ctx.cancel.is_cancelled() {
        ToolOutcome {
            status: ToolStatus::Cancelled,
            exit_code: None,
            summary: "cancelled before it started".into(),
        }
    } else {
        match ctx.toolbox.slots.take() {
            Ok(_slot) => tool.run(&mut call).await,
            Err(why) => ToolOutcome::error(format!("not started: {why}")),
        }
    };
    let mut result = Message::new(MessageType::Tool, outcome.summary.clone());
    result.tool_call_id = Some(id.to_string());
    result.tool_name = Some(tool.name().to_string());
    result.input = Some(tool.input());
    result.exit_code = outcome.exit_code;
    result.status = Some(outcome.status);
    result.tool_error = Some(outcome.status != ToolStatus::Completed);
    result.tool_result = Some(call.tail.finish());
    result.start_time = Some(start_time);
    result.end_time = Some(now_rfc3339());
    result.elapsed = Some(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
    let emitted = ctx.log.append(result).await;
    // Only now, with the result in the log, does the state stop listing the call:
    // a client never sees it gone from the state before its result.
    ctx.running
        .finish(id, outcome.status != ToolStatus::Completed);
    emitted?;
    Ok(outcome)
}

/// The last `RESULT_TAIL_CHARS` characters of a tool call's output, for its result.
#[derive(Default)]
struct OutputTail {
    text: String,
}

impl OutputTail {
    fn push(&mut self, chunk: &str) {
        // A piece of ASCII at least as long as the tail holds the whole tail by itself
        // (the usual case in a flood), so nothing before it needs keeping or counting.
        if chunk.len() >= RESULT_TAIL_CHARS && chunk.is_ascii() {
            self.text.clear();
        }
        self.text.push_str(chunk);
        // Trim only now and then, so a flood does not re-copy the buffer per chunk.
        if self.text.len() > 8 * RESULT_TAIL_CHARS * 4 {
            self.trim();
        }
    }

    fn trim(&mut self) {
        keep_last_chars(&mut self.text, RESULT_TAIL_CHARS);
    }

    fn finish(mut self) -> String {
        self.trim();
        self.text
    }
}
