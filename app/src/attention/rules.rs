//! What needs the reader, as plain functions of summaries (unit-tested natively):
//! which changes deserve a notification, which conversations are unread, and the
//! inbox's groups and order.

use std::collections::HashMap;

use crate::protocol::{ConversationSummary, RunStatus};

/// A change worth a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alert {
    TurnEnded,
    Failed,
    Waiting,
}

impl Alert {
    pub fn text(self) -> &'static str {
        match self {
            Alert::TurnEnded => "Finished",
            Alert::Failed => "A command failed",
            Alert::Waiting => "Waiting for your approval",
        }
    }
}

/// The one alert a summary's change deserves, if any. Approval first: it blocks
/// the agent. A failure is announced when `last_error` turns on, or when a run
/// ends failed; `failure_announced` (a failure was announced during this run)
/// keeps the end of that run from saying it again, or from replacing "failed"
/// with "finished" (notifications share one tag per conversation).
pub fn alert(
    prev: &ConversationSummary,
    next: &ConversationSummary,
    failure_announced: bool,
) -> Option<Alert> {
    if prev.pending_permissions == 0 && next.pending_permissions > 0 {
        return Some(Alert::Waiting);
    }
    let ended = prev.status == RunStatus::Running && next.status == RunStatus::Idle;
    let fresh_failure = next.last_error && !prev.last_error;
    if fresh_failure || (ended && next.last_error && !failure_announced) {
        return Some(Alert::Failed);
    }
    (ended && !(next.last_error && failure_announced)).then_some(Alert::TurnEnded)
}

/// Whether a change starts a run (which forgets the last run's announcements).
pub fn starts_run(prev: &ConversationSummary, next: &ConversationSummary) -> bool {
    prev.status == RunStatus::Idle && next.status == RunStatus::Running
}

/// What the reader has looked at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    /// Conversation id → the `updated_at` it had when last looked at.
    pub at: HashMap<String, String>,
    /// This browser's first visit (epoch ms): what happened before counts as seen.
    pub since_ms: f64,
    /// False until read from storage (on the server, and while hydrating): nothing
    /// is unread then, so both render the same page.
    pub loaded: bool,
}

impl Seen {
    /// Finished (idle with messages) since it was last looked at. `updated_ms` is
    /// the summary's `updated_at` in epoch ms, when it parses.
    pub fn unread(&self, s: &ConversationSummary, updated_ms: Option<f64>) -> bool {
        self.loaded
            && s.status == RunStatus::Idle
            && s.message_count > 0
            && updated_ms.is_none_or(|ms| ms > self.since_ms)
            && self
                .at
                .get(&s.id)
                .is_none_or(|seen| seen.as_str() < s.updated_at.as_str())
    }
}

/// The inbox's groups, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    NeedsYou,
    Running,
    Rest,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::NeedsYou, Group::Running, Group::Rest];

    pub fn id(self) -> &'static str {
        match self {
            Group::NeedsYou => "needs-you",
            Group::Running => "running",
            Group::Rest => "rest",
        }
    }

    pub fn heading(self) -> &'static str {
        match self {
            Group::NeedsYou => "Needs you",
            Group::Running => "Running",
            Group::Rest => "Everything else",
        }
    }
}

/// Waiting for an approval, or finished (or failed) since last looked at.
pub fn needs_you(s: &ConversationSummary, unread: bool) -> bool {
    s.pending_permissions > 0 || unread
}

pub fn group_of(s: &ConversationSummary, unread: bool) -> Group {
    if needs_you(s, unread) {
        Group::NeedsYou
    } else if s.status == RunStatus::Running {
        Group::Running
    } else {
        Group::Rest
    }
}

/// Why a row is where it is, in a few words.
pub fn reason(s: &ConversationSummary, unread: bool) -> &'static str {
    match (s.pending_permissions > 0, s.status, s.last_error, unread) {
        (true, ..) => "waiting for approval",
        (false, RunStatus::Running, ..) => "running",
        (false, RunStatus::Idle, true, true) => "failed",
        (false, RunStatus::Idle, false, true) => "finished",
        (false, RunStatus::Idle, true, false) => "last command failed",
        (false, RunStatus::Idle, false, false) => "idle",
    }
}

/// Whether a title matches the filter box (case-insensitive, any part).
pub fn matches(s: &ConversationSummary, filter: &str) -> bool {
    let filter = filter.trim().to_lowercase();
    filter.is_empty() || s.title.to_lowercase().contains(&filter)
}

/// Newest first, then by id so the order is stable.
pub fn newest_first(list: &mut [ConversationSummary]) {
    list.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago".
pub fn ago(now_ms: f64, then_ms: f64) -> String {
    let secs = ((now_ms - then_ms) / 1000.0).max(0.0) as u64;
    match secs {
        0..5 => "just now".into(),
        5..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, status: RunStatus, updated: &str) -> ConversationSummary {
        ConversationSummary {
            id: id.into(),
            title: format!("Title {id}"),
            cwd: "/".into(),
            status,
            message_count: 3,
            last_error: false,
            agent: "shell".into(),
            pending_permissions: 0,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: updated.into(),
        }
    }

    #[test]
    fn transitions_become_one_alert_each() {
        let running = summary("a", RunStatus::Running, "t1");
        let idle = summary("a", RunStatus::Idle, "t2");
        assert_eq!(alert(&running, &idle, false), Some(Alert::TurnEnded));
        assert_eq!(alert(&idle, &idle, false), None);
        assert_eq!(alert(&idle, &running, false), None);
        assert!(starts_run(&idle, &running));
        let failed = ConversationSummary {
            last_error: true,
            ..idle.clone()
        };
        let failing = ConversationSummary {
            last_error: true,
            ..running.clone()
        };
        assert_eq!(alert(&running, &failed, false), Some(Alert::Failed));
        assert_eq!(alert(&idle, &failed, false), Some(Alert::Failed));
        assert_eq!(alert(&failed, &failed, false), None);
        // Failed while running, announced then: the end adds nothing.
        assert_eq!(alert(&running, &failing, false), Some(Alert::Failed));
        assert_eq!(alert(&failing, &failed, true), None);
        assert_eq!(alert(&failing, &failed, false), Some(Alert::Failed));
        let waiting = ConversationSummary {
            pending_permissions: 2,
            ..running.clone()
        };
        assert_eq!(alert(&running, &waiting, false), Some(Alert::Waiting));
        assert_eq!(alert(&waiting, &waiting, false), None);
    }

    #[test]
    fn unread_until_looked_at_and_only_after_the_first_visit() {
        let s = summary("a", RunStatus::Idle, "2026-01-01T00:00:05.000Z");
        let mut seen = Seen {
            since_ms: 1_000.0,
            ..Default::default()
        };
        assert!(!seen.unread(&s, Some(2_000.0)), "nothing before loading");
        seen.loaded = true;
        assert!(seen.unread(&s, Some(2_000.0)));
        assert!(!seen.unread(&s, Some(500.0)), "before the first visit");
        seen.at.insert("a".into(), s.updated_at.clone());
        assert!(!seen.unread(&s, Some(2_000.0)));
        let later = summary("a", RunStatus::Idle, "2026-01-01T00:00:09.000Z");
        assert!(seen.unread(&later, Some(3_000.0)));
        let running = summary("a", RunStatus::Running, "2026-01-01T00:00:09.000Z");
        assert!(!seen.unread(&running, Some(3_000.0)));
    }

    #[test]
    fn groups_and_reasons() {
        let idle = summary("a", RunStatus::Idle, "t");
        assert_eq!(group_of(&idle, true), Group::NeedsYou);
        assert_eq!(group_of(&idle, false), Group::Rest);
        let running = summary("b", RunStatus::Running, "t");
        assert_eq!(group_of(&running, false), Group::Running);
        let waiting = ConversationSummary {
            pending_permissions: 1,
            ..running
        };
        assert_eq!(group_of(&waiting, false), Group::NeedsYou);
        assert_eq!(reason(&waiting, false), "waiting for approval");
        let failed = ConversationSummary {
            last_error: true,
            ..idle
        };
        assert_eq!(reason(&failed, true), "failed");
        assert_eq!(reason(&failed, false), "last command failed");
    }

    #[test]
    fn filter_order_and_ages() {
        let mut list = vec![
            summary("a", RunStatus::Idle, "2026-01-01T00:00:01.000Z"),
            summary("b", RunStatus::Idle, "2026-01-01T00:00:09.000Z"),
        ];
        newest_first(&mut list);
        assert_eq!(list[0].id, "b");
        assert!(matches(&list[0], " title B "));
        assert!(!matches(&list[0], "zzz"));
        assert_eq!(ago(10_000.0, 9_000.0), "just now");
        assert_eq!(ago(100_000.0, 58_000.0), "42 s ago");
        assert_eq!(ago(400_000.0, 100_000.0), "5 min ago");
        assert_eq!(ago(3.0 * 3_600_000.0 + 5.0, 0.0), "3 h ago");
        assert_eq!(ago(2.0 * 86_400_000.0, 0.0), "2 d ago");
    }
}
