//! What needs the reader, across every conversation: the one global stream
//! (`/api/events`) and what follows from it — the inbox's data, notifications,
//! the count in the tab's title and the favicon's badge.
//!
//! `Attention` is provided once, above the router; `AttentionRoot` (inside it)
//! keeps the stream open for as long as the app lives and closes it in
//! `on_cleanup`. Pages read the summaries from here instead of opening their own.

use std::rc::Rc;

use leptos::prelude::*;

use crate::client::stream::{self, Conn, StreamSpec};
use crate::protocol::{ConversationSummary, RunStatus, event};

pub(crate) mod browser;
pub mod rules;

use rules::{Seen, newest_first};

/// Shared by every page.
#[derive(Clone, Copy)]
pub struct Attention {
    /// Every conversation, newest first.
    pub summaries: RwSignal<Vec<ConversationSummary>>,
    pub status: RwSignal<Conn>,
    pub reconnects: RwSignal<u32>,
    pub seen: RwSignal<Seen>,
    /// The conversation the page shows, if any.
    pub viewing: RwSignal<Option<String>>,
    /// The tab's title without the count.
    pub page_title: RwSignal<String>,
    /// Whether the tab is visible (`document.visibilityState`).
    pub visible: RwSignal<bool>,
    /// This browser's choice (the permission is the browser's own business).
    pub notify: RwSignal<bool>,
    /// Epoch ms, ticking twice a second in the browser (0 on the server).
    pub now: RwSignal<f64>,
}

impl Attention {
    fn new() -> Self {
        Attention {
            summaries: RwSignal::new(Vec::new()),
            status: RwSignal::new(Conn::Connecting),
            reconnects: RwSignal::new(0),
            seen: RwSignal::new(Seen::default()),
            viewing: RwSignal::new(None),
            page_title: RwSignal::new("Tether".into()),
            visible: RwSignal::new(true),
            notify: RwSignal::new(false),
            now: RwSignal::new(0.0),
        }
    }

    /// Whether a conversation finished since it was last looked at.
    pub fn unread(&self, s: &ConversationSummary) -> bool {
        self.seen
            .with(|seen| seen.unread(s, crate::client::parse_time_ms(&s.updated_at)))
    }

    /// How many conversations need the reader (for the title and the favicon).
    pub fn count(&self) -> usize {
        self.summaries.with(|list| {
            list.iter()
                .filter(|s| rules::needs_you(s, self.unread(s)))
                .count()
        })
    }

    /// The server-rendered list, until the stream has sent its own.
    pub fn seed(&self, initial: Vec<ConversationSummary>) {
        if self.summaries.with_untracked(Vec::is_empty) {
            let mut initial = initial;
            newest_first(&mut initial);
            self.summaries.set(initial);
        }
    }

    /// The conversation page calls this while it is shown.
    pub fn view_conversation(&self, id: String) {
        self.viewing.set(Some(id));
        let me = *self;
        on_cleanup(move || {
            me.viewing.set(None);
            me.page_title.set("Tether".into());
        });
    }
}

pub fn provide() -> Attention {
    let attention = Attention::new();
    provide_context(attention);
    attention
}

/// The app's `Attention`; a detached one where none was provided (never in the app).
pub fn use_attention() -> Attention {
    use_context::<Attention>().unwrap_or_else(Attention::new)
}

/// Runs the global stream and everything that follows from it; renders nothing.
#[component]
pub fn AttentionRoot() -> impl IntoView {
    let a = use_attention();
    let navigate = leptos_router::hooks::use_navigate();
    let open = Rc::new(move |id: &str| navigate(&format!("/c/{id}"), Default::default()));
    let settings = crate::settings();
    // Conversations whose running turn already had its failure announced.
    let failed_runs = StoredValue::new(std::collections::HashSet::<String>::new());

    // Effects run only in the browser, after hydration: what storage says can
    // differ from the server's render without breaking it.
    Effect::new(move |_| {
        a.seen.set(browser::load_seen());
        a.notify.set(crate::prefs::get_bool(crate::prefs::NOTIFY));
        browser::track_visibility(a.visible);
        crate::tick(a.now);
        let open = open.clone();
        stream::open_scoped(StreamSpec {
            url: Rc::new(|| "/api/events".to_string()),
            events: &[event::CONVERSATION, event::HEARTBEAT],
            on_event: Rc::new(move |name, data| {
                if name != event::CONVERSATION {
                    return;
                }
                let Ok(next) = serde_json::from_str::<ConversationSummary>(&data) else {
                    return;
                };
                let prev = a
                    .summaries
                    .with_untracked(|l| l.iter().find(|c| c.id == next.id).cloned());
                // The first sight of a conversation is no change: nothing to announce.
                let alert = prev.and_then(|p| {
                    if rules::starts_run(&p, &next) {
                        failed_runs.update_value(|f| {
                            f.remove(&next.id);
                        });
                    }
                    let announced = failed_runs.with_value(|f| f.contains(&next.id));
                    rules::alert(&p, &next, announced)
                });
                if alert == Some(rules::Alert::Failed) && next.status == RunStatus::Running {
                    failed_runs.update_value(|f| {
                        f.insert(next.id.clone());
                    });
                }
                if let Some(alert) = alert {
                    let shown = a.visible.get_untracked()
                        && a.viewing.with_untracked(|v| v.as_deref() == Some(&next.id));
                    if a.notify.get_untracked() && !shown {
                        let open = open.clone();
                        let id = next.id.clone();
                        browser::notify(&next, alert, move || open(&id));
                    }
                }
                a.summaries.update(|list| {
                    match list.iter_mut().find(|c| c.id == next.id) {
                        Some(existing) => *existing = next,
                        None => list.push(next),
                    }
                    newest_first(list);
                });
            }),
            probe_url: None,
            settings,
            status: a.status,
            reconnects: a.reconnects,
            // A list of summaries: it never floods.
            worker: false,
        });
    });

    // Looking at a conversation marks what it shows as seen.
    Effect::new(move |_| {
        let Some(id) = a.viewing.get() else { return };
        if !a.visible.get() || !a.seen.with(|s| s.loaded) {
            return;
        }
        let Some(updated) = a
            .summaries
            .with(|l| l.iter().find(|c| c.id == id).map(|c| c.updated_at.clone()))
        else {
            return;
        };
        if a.seen.with_untracked(|s| s.at.get(&id) != Some(&updated)) {
            a.seen.update(|s| {
                s.at.insert(id, updated);
            });
            a.seen.with_untracked(browser::save_seen);
        }
    });

    // The count in the favicon; the title's is `Title` in the app shell.
    Effect::new(move |_| browser::set_badge(a.count()));
}

/// The tab's title: the page's own, after the count of what needs the reader.
pub fn title_text(count: usize, page: &str) -> String {
    if count == 0 {
        page.to_string()
    } else {
        format!("({count}) {page}")
    }
}
