//! Downloads: the whole conversation as JSON, or as a plain-text transcript.

use std::fmt::Write as _;

use app::ansi::Terminal;
use app::protocol::{Message, MessageType, ToolContent};

use super::error::AppError;
use crate::engine::Conversation;
use crate::log::Entry;

const PAGE: usize = 10_000;

/// Calls `each` for every message in order, a page at a time.
async fn for_each_entry(
    conversation: &Conversation,
    mut each: impl FnMut(&Entry) -> Result<(), AppError>,
) -> Result<(), AppError> {
    let mut cursor = 0;
    loop {
        let page = conversation.log.read(cursor, u64::MAX, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        cursor = last.idx + 1;
        for entry in &page {
            each(entry)?;
        }
    }
}

/// `{"state": {...}, "messages": [...]}` with the messages exactly as streamed.
pub async fn json(conversation: &Conversation) -> Result<String, AppError> {
    let state = serde_json::to_string(&conversation.state())
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut out = format!("{{\"state\":{state},\"messages\":[");
    let mut first = true;
    for_each_entry(conversation, |entry| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(entry.json());
        Ok(())
    })
    .await?;
    out.push_str("]}");
    Ok(out)
}

/// A readable transcript: terminal output as it would look on screen, escapes removed.
pub async fn text(conversation: &Conversation) -> Result<String, AppError> {
    let state = conversation.state();
    let mut out = format!(
        "# {}\n# {} on {}\n\n",
        state.title, state.working_dir, state.hostname
    );
    // Output of the tool call being rendered; flushed when its result arrives.
    let mut screen: Option<Terminal> = None;
    // The kind of streamed text (reply or thought) being written, so consecutive
    // pieces read as one paragraph.
    let mut streaming: Option<MessageType> = None;
    for_each_entry(conversation, |entry| {
        let m: Message = entry.message()?;
        if m.kind != MessageType::ToolOutput
            && let Some(term) = screen.take()
        {
            push_output(&mut out, &term);
        }
        if streaming.is_some_and(|kind| kind != m.kind) {
            streaming = None;
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        let _ = match m.kind {
            MessageType::User => writeln!(out, "[{}] you: {}", m.timestamp, m.content),
            MessageType::Agent => {
                for call in &m.tool_calls {
                    let command = call
                        .input
                        .get("command")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default();
                    let _ = writeln!(out, "[{}] {} $ {}", m.timestamp, call.name, command);
                }
                if m.content.is_empty() {
                    Ok(())
                } else {
                    writeln!(out, "[{}] agent: {}", m.timestamp, m.content)
                }
            }
            MessageType::ToolOutput => {
                screen
                    .get_or_insert_with(|| Terminal::with_max_lines(usize::MAX))
                    .feed(&m.content);
                Ok(())
            }
            MessageType::Tool => writeln!(
                out,
                "[{}] tool {}: {} ({})",
                m.timestamp,
                m.tool_call_id.as_deref().unwrap_or("?"),
                m.status.map(|s| s.as_str()).unwrap_or("?"),
                m.content
            ),
            MessageType::Error => writeln!(out, "[{}] error: {}", m.timestamp, m.content),
            MessageType::Restart => writeln!(out, "\n[{}] ---- {} ----\n", m.timestamp, m.content),
            MessageType::AgentText | MessageType::Thought => {
                if streaming.is_none() {
                    let who = if m.kind == MessageType::Thought {
                        "thinking"
                    } else {
                        "agent"
                    };
                    let _ = write!(out, "[{}] {who}: ", m.timestamp);
                    streaming = Some(m.kind);
                }
                out.push_str(&m.content);
                Ok(())
            }
            MessageType::ToolUpdate => {
                let update = m.tool_update.unwrap_or_default();
                let id = m.tool_call_id.as_deref().unwrap_or("?");
                for content in update.content.iter().flatten() {
                    if let ToolContent::Diff { path, .. } = content {
                        let _ = writeln!(out, "[{}] tool {id}: edits {path}", m.timestamp);
                    }
                }
                match (update.title, update.progress) {
                    (Some(title), _) => writeln!(out, "[{}] tool {id}: {title}", m.timestamp),
                    _ => Ok(()),
                }
            }
            MessageType::Plan => {
                let _ = writeln!(out, "[{}] plan:", m.timestamp);
                for step in m.plan.iter().flatten() {
                    let mark = if step.status == "completed" { "x" } else { " " };
                    let _ = writeln!(out, "  [{mark}] {}", step.content);
                }
                Ok(())
            }
            MessageType::Permission => {
                let request = m.permission.map(|p| p.title).unwrap_or_default();
                writeln!(out, "[{}] agent asks: {request}", m.timestamp)
            }
            MessageType::PermissionAnswer => {
                let outcome = m.permission_answer.map(|a| a.outcome).unwrap_or_default();
                writeln!(out, "[{}] answered: {outcome}", m.timestamp)
            }
            MessageType::Notice => writeln!(out, "[{}] note: {}", m.timestamp, m.content),
            MessageType::Changes => {
                let Some(changes) = m.changes else {
                    return Ok(());
                };
                let what = match changes.revert_of {
                    Some(turn) => format!("reverted the changes of #{turn}"),
                    None => "changed".to_string(),
                };
                let _ = writeln!(
                    out,
                    "[{}] {what} {} file(s), +{} -{}:",
                    m.timestamp,
                    changes.files.len(),
                    changes.added,
                    changes.removed
                );
                for file in &changes.files {
                    let _ = match &file.old_path {
                        Some(old) => writeln!(out, "  {old} -> {}", file.path),
                        None => writeln!(out, "  {}", file.path),
                    };
                }
                Ok(())
            }
        };
        Ok(())
    })
    .await?;
    if let Some(term) = screen.take() {
        push_output(&mut out, &term);
    }
    if streaming.is_some() && !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

fn push_output(out: &mut String, term: &Terminal) {
    let text = term.plain_text();
    out.push_str(&text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
}
