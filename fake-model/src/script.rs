//! The script: what the fake model answers, decided from the request alone.
//!
//! The server keeps no conversation state. Agents resend the whole history on every
//! call, so the last user turn says where we are: a tool result means "the command
//! ran, now wrap up"; markers in the prompt text pick the scenario a test wants.
//! Each dialect module reduces its request to a [`Turn`] and renders the [`Reply`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

/// What the plain reply says when the prompt asks for nothing in particular.
pub const HELLO: &str = "Hello from the fake model.";
/// The answer after the user refused to let the tool run.
pub const REFUSED: &str = "Understood, I will not run it.";
/// The text streamed ahead of a tool call.
pub const INTRO: &str = "I will run it.";
/// How many one-second deltas a `SLOW` prompt streams.
pub const SLOW_TICKS: u32 = 60;

/// The last user turn of a request, whatever the dialect.
#[derive(Debug, Default, Clone)]
pub struct Turn {
    /// The text of the last user message (all its text parts, joined by newlines).
    pub text: String,
    /// The tool output the last user turn carries, if it carries one.
    pub tool_result: Option<String>,
    /// Whether the request offers any tools (title generation requests do not).
    pub has_tools: bool,
}

/// A tool call as the dialects render it.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub name: String,
    /// The input object; its JSON text is streamed in several pieces.
    pub input: Value,
}

impl ToolCall {
    /// The arguments' JSON text cut into three pieces, so agents' incremental JSON
    /// parsers see a call that arrives over several events.
    pub fn pieces(&self) -> Vec<String> {
        let json = self.input.to_string();
        let chars: Vec<char> = json.chars().collect();
        let cut = chars.len().div_ceil(3).max(1);
        chars.chunks(cut).map(|c| c.iter().collect()).collect()
    }
}

/// The answer, before a dialect puts it into its wire shape.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Text deltas, in order; they concatenate to the full text.
    pub text: Vec<String>,
    /// A pause before each text delta (the `SLOW` scenario).
    pub pace: Option<Duration>,
    /// A call of the agent's shell tool, after the text.
    pub tool: Option<ToolCall>,
}

impl Reply {
    fn say(text: &str) -> Self {
        Reply {
            text: words(text),
            pace: None,
            tool: None,
        }
    }

    /// The whole text.
    pub fn full_text(&self) -> String {
        self.text.concat()
    }

    /// A rough output token count for the usage figures.
    pub fn output_tokens(&self) -> u64 {
        let chars =
            self.full_text().len() + self.tool.as_ref().map_or(0, |t| t.input.to_string().len());
        (chars as u64 / 4).max(1)
    }
}

/// Decides the reply. `shell` builds the call of the agent's shell tool for a command
/// (and whether the prompt asked for escalation) from the request's tool list; it
/// returns `None` when the request offers no shell tool.
pub fn reply(turn: &Turn, shell: impl FnOnce(&str, bool) -> Option<ToolCall>) -> Reply {
    if let Some(result) = &turn.tool_result {
        if is_refusal(result) {
            return Reply::say(REFUSED);
        }
        let quoted: String = result.chars().take(200).collect();
        return Reply::say(&format!("Done. The command printed: {quoted}"));
    }
    // Requests without tools (title generation, quota probes) get plain text, so a
    // scenario marker in the prompt neither runs nor stalls them.
    if turn.has_tools {
        if let Some(cmd) = marker(&turn.text, "RUN_TOOL[") {
            let escalate = turn.text.contains("ESCALATE");
            return match shell(&cmd, escalate) {
                Some(call) => Reply {
                    tool: Some(call),
                    ..Reply::say(INTRO)
                },
                None => Reply::say("I have no shell tool to run it with."),
            };
        }
        if turn.text.contains("SLOW") {
            return Reply {
                text: (0..SLOW_TICKS).map(|i| format!("tick {i} ")).collect(),
                pace: Some(Duration::from_secs(1)),
                tool: None,
            };
        }
    }
    match marker(&turn.text, "REPLY[") {
        Some(text) => Reply::say(&text),
        None => Reply::say(HELLO),
    }
}

/// Whether a tool result reports that the user refused permission (wording of
/// claude-code-acp, Claude Code and opencode).
fn is_refusal(result: &str) -> bool {
    let lower = result.to_lowercase();
    lower.contains("refused permission")
        || lower.contains("rejected permission")
        || lower.contains("doesn't want to proceed")
        || lower.contains("user denied")
}

/// The text inside `MARKER[...]`, brackets balanced so commands like `[ -f x ] && ls`
/// survive; an unbalanced tail runs to the last `]`, or to the end.
pub fn marker(text: &str, open: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let rest = &text[start..];
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '[' => depth += 1,
            ']' if depth == 0 => return Some(rest[..i].to_string()),
            ']' => depth -= 1,
            _ => {}
        }
    }
    Some(match rest.rfind(']') {
        Some(i) => rest[..i].to_string(),
        None => rest.to_string(),
    })
}

/// Splits text into word deltas that keep their spaces, so they concatenate back.
pub fn words(text: &str) -> Vec<String> {
    let parts: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
    if parts.is_empty() {
        vec![String::new()]
    } else {
        parts
    }
}

/// The text of a content value: a string, or a list of parts with `text` fields
/// (`text`, `input_text`, `output_text`, nested `tool_result` content…).
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.clone()),
                _ => p.get("text").and_then(Value::as_str).map(str::to_string),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A rough input token count for the usage figures: a quarter of the body's size.
pub fn input_tokens(body: &Value) -> u64 {
    (body.to_string().len() as u64 / 4).max(1)
}

/// A fresh id with a dialect's prefix (`toolu_`, `call_`, `msg_`…), unique within
/// the process.
pub fn new_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}fake{:08x}{n:06}", std::process::id())
}

/// Seconds since the epoch, for `created` fields.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_keep_balanced_brackets() {
        assert_eq!(
            marker("Please RUN_TOOL[echo hi] now", "RUN_TOOL[").as_deref(),
            Some("echo hi")
        );
        assert_eq!(
            marker("RUN_TOOL[[ -f x ] && ls]", "RUN_TOOL[").as_deref(),
            Some("[ -f x ] && ls")
        );
        assert_eq!(marker("no marker", "REPLY["), None);
    }

    #[test]
    fn words_concatenate_back() {
        assert_eq!(words(HELLO).concat(), HELLO);
        assert_eq!(words(HELLO).len(), 5);
    }

    #[test]
    fn tool_results_win_over_markers() {
        let turn = Turn {
            text: "RUN_TOOL[ls]".into(),
            tool_result: Some("User refused permission to run tool".into()),
            has_tools: true,
        };
        assert_eq!(reply(&turn, |_, _| None).full_text(), REFUSED);
    }

    #[test]
    fn pieces_rejoin() {
        let call = ToolCall {
            name: "Bash".into(),
            input: serde_json::json!({"command": "echo hello"}),
        };
        assert!(call.pieces().len() >= 2);
        assert_eq!(call.pieces().concat(), call.input.to_string());
    }
}
