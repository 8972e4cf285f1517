//! The review panel: what a turn changed (or the net change since it), file by file
//! as a unified diff, with review comments and the turn's revert. A drawer over the
//! conversation; Escape closes it.

use std::sync::Arc;

use leptos::prelude::*;

use super::revert_control::RevertControl;
use super::review_diff::DiffRows;
use super::review_draft::{CommentBox, DraftView};
use crate::client::http::get_json;
use crate::protocol::{Changes, ChangesDiff, ReviewComment};
use crate::review::{DiffModel, Span, display_path, status_label, step_file};

/// The turn the panel shows, as its timeline line knows it.
#[derive(Clone, Debug)]
pub(super) struct ReviewTurn {
    /// The index of the turn's `changes` message.
    pub idx: u64,
    pub changes: Changes,
    /// Set once a revert of this turn is in the timeline.
    pub reverted_by: RwSignal<Option<u64>>,
}

/// A fetched diff, flattened for the view.
#[derive(Clone)]
struct Loaded {
    model: Arc<DiffModel>,
    to: u64,
    added: u64,
    removed: u64,
}

#[component]
pub(super) fn ReviewPanel(
    base: String,
    turn: ReviewTurn,
    open: RwSignal<Option<ReviewTurn>>,
    /// The review being written; it outlives the panel, so comments on several turns
    /// go out as one message.
    draft: RwSignal<Vec<ReviewComment>>,
    read_only: bool,
) -> impl IntoView {
    let ReviewTurn {
        idx,
        changes,
        reverted_by,
    } = turn;
    // `false`: this turn alone; `true`: the net change from its start to the latest turn.
    let net = RwSignal::new(false);
    let loaded = RwSignal::new(None::<Result<Loaded, String>>);
    // Answers to an earlier request (the reader toggled meanwhile) are dropped.
    let generation = StoredValue::new(0u64);
    let current = RwSignal::new(None::<usize>);
    let jump = RwSignal::new(None::<usize>);
    let selection = RwSignal::new(None::<Span>);
    {
        let base = base.clone();
        Effect::new(move |_| {
            let which = if net.get() { "since" } else { "turn" };
            let url = format!("{base}changes?{which}={idx}");
            let asked = generation.get_value() + 1;
            generation.set_value(asked);
            loaded.set(None);
            selection.set(None);
            current.set(None);
            jump.set(None);
            leptos::task::spawn_local(async move {
                let result = get_json::<ChangesDiff>(&url).await.map(|d| Loaded {
                    model: Arc::new(DiffModel::build(&d)),
                    to: d.to_idx,
                    added: d.added,
                    removed: d.removed,
                });
                if generation.try_get_value() == Some(asked) {
                    loaded.set(Some(result));
                }
            });
        });
    }
    let model = move || {
        loaded.with(|l| {
            l.as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|l| l.model.clone())
        })
    };
    let go = move |file: usize| {
        current.set(Some(file));
        jump.set(Some(file));
    };
    let step = move |by: isize| {
        let count = loaded.with_untracked(|l| match l {
            Some(Ok(l)) => l.model.files.len(),
            _ => 0,
        });
        let next = step_file(current.get_untracked(), by, count);
        if let Some(next) = next {
            go(next);
        }
        next
    };
    let close = move || open.set(None);
    let panel: NodeRef<leptos::html::Div> = NodeRef::new();
    // Keys go to the panel from the start; Escape works without a click first.
    Effect::new(move |_| {
        if let Some(el) = panel.get() {
            let _ = el.focus();
        }
    });
    // On the window, not the panel: keys still work when the focused button went away
    // (the revert's confirmation, once answered).
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        let key = ev.key();
        if key == "Escape" {
            ev.prevent_default();
            // The comment box first, then the panel.
            if selection.get_untracked().is_some() {
                selection.set(None);
                if let Some(el) = panel.get_untracked() {
                    let _ = el.focus();
                }
            } else {
                close();
            }
            return;
        }
        if typing(&ev) {
            return;
        }
        let by = match key.as_str() {
            "j" | "n" => 1,
            "k" | "p" => -1,
            "ArrowDown" if in_file_list(&ev) => 1,
            "ArrowUp" if in_file_list(&ev) => -1,
            _ => return,
        };
        ev.prevent_default();
        if let Some(file) = step(by)
            && in_file_list(&ev)
        {
            focus_file(file);
        }
    };
    Effect::new(move |_| {
        let handle = window_event_listener(leptos::ev::keydown, on_key);
        on_cleanup(move || handle.remove());
    });

    let heading = {
        let lead = crate::review::summary_lead(&changes);
        move || {
            if net.get() {
                match loaded.get() {
                    Some(Ok(l)) if l.to != idx => format!("Net changes from #{idx} to #{}", l.to),
                    _ => format!("Net changes since #{idx}"),
                }
            } else {
                format!("#{idx}: {lead}+{} −{}", changes.added, changes.removed)
            }
        }
    };
    view! {
        <div class="review-overlay" on:click=move |_| close()>
            <div class="review-panel" role="dialog" aria-modal="true" aria-labelledby="review-title"
                data-testid="review-panel" tabindex="-1" node_ref=panel
                on:click=|ev| ev.stop_propagation()>
                <header class="review-head">
                    <h2 id="review-title" data-testid="review-title">{heading}</h2>
                    <button type="button" class="btn review-close" data-testid="review-close"
                        aria-label="Close the review" on:click=move |_| close()>"✕"</button>
                    <div class="review-modes" role="group" aria-label="Which changes">
                        <button type="button" class="btn small" data-testid="mode-turn"
                            aria-pressed=move || (!net.get()).to_string() on:click=move |_| net.set(false)>"This turn"</button>
                        <button type="button" class="btn small" data-testid="mode-net"
                            aria-pressed=move || net.get().to_string() on:click=move |_| net.set(true)>"Net since this turn"</button>
                    </div>
                    {move || match loaded.get() {
                        Some(Ok(l)) => view! {
                            <span class="counts" data-testid="review-counts">
                                {format!("{} file{}, ", l.model.files.len(), if l.model.files.len() == 1 { "" } else { "s" })}
                                <span class="add">{format!("+{}", l.added)}</span>" "<span class="del">{format!("−{}", l.removed)}</span>
                            </span>
                        }.into_any(),
                        _ => ().into_any(),
                    }}
                </header>
                {(!read_only).then(|| view! {
                    <RevertControl base=base.clone() turn=idx files=changes.files.len() reverted_by/>
                })}
                <div class="review-body">
                    <nav class="review-files-pane" aria-label="Changed files">
                        <ul class="review-files" data-testid="review-files">
                            {move || model().map(|m| file_list(&m, current, go))}
                        </ul>
                        <p class="review-keys muted">
                            <kbd>"j"</kbd>"/"<kbd>"n"</kbd>" next file · "<kbd>"k"</kbd>"/"<kbd>"p"</kbd>" previous · "
                            <kbd>"↑"</kbd><kbd>"↓"</kbd>" in this list · "<kbd>"Esc"</kbd>" closes"
                            {(!read_only).then_some(" · click a line to comment, Shift+click for a range")}
                        </p>
                    </nav>
                    <div class="review-diff-pane">
                        {move || match loaded.get() {
                            None => view! { <p class="muted pad" data-testid="review-loading">"Loading the diff…"</p> }.into_any(),
                            Some(Err(e)) => view! { <p class="error-text pad" role="alert" data-testid="review-error">{e}</p> }.into_any(),
                            Some(Ok(l)) if l.model.files.is_empty() => view! {
                                <p class="muted pad" data-testid="review-empty">"No net changes: later turns undid them."</p>
                            }.into_any(),
                            Some(Ok(l)) => view! {
                                <DiffRows model=l.model current jump selection draft read_only/>
                            }.into_any(),
                        }}
                    </div>
                </div>
                {(!read_only).then(|| view! {
                    <footer class="review-foot">
                        <CommentBox selection draft/>
                        <DraftView base=base.clone() draft/>
                    </footer>
                })}
            </div>
        </div>
    }
}

/// The file list: status, path (`old → new` for a rename), counts or "binary".
fn file_list<G: Fn(usize) + Copy + Send + Sync + 'static>(
    m: &DiffModel,
    current: RwSignal<Option<usize>>,
    go: G,
) -> impl IntoView + use<G> {
    m.files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let c = &f.change;
            let status = status_label(c.status);
            let counts = if c.binary {
                view! { <span class="fcounts muted">"binary"</span> }.into_any()
            } else {
                view! {
                    <span class="fcounts">
                        <span class="add">{format!("+{}", c.added)}</span>" "<span class="del">{format!("−{}", c.removed)}</span>
                        {f.too_large.then_some(" (too large)")}
                    </span>
                }
                .into_any()
            };
            view! {
                <li>
                    <button type="button" class="review-file" data-testid="review-file" data-file=i
                        data-path=c.path.clone() data-status=status title=status
                        aria-current=move || (current.get() == Some(i)).then_some("true")
                        on:click=move |_| go(i)>
                        <span class=format!("fstatus s-{}", status.replace(' ', "-"))>{status_letter(status)}</span>
                        <span class="fpath">{display_path(c)}</span>
                        {counts}
                    </button>
                </li>
            }
        })
        .collect_view()
}

fn status_letter(status: &str) -> &'static str {
    match status {
        "added" => "A",
        "deleted" => "D",
        "renamed" => "R",
        "type changed" => "T",
        _ => "M",
    }
}

/// Whether a key goes to a text field rather than to the panel's shortcuts.
fn typing(ev: &leptos::ev::KeyboardEvent) -> bool {
    use leptos::wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
        .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

/// Whether a key was pressed on the file list, where the arrows move between files
/// (elsewhere they scroll).
fn in_file_list(ev: &leptos::ev::KeyboardEvent) -> bool {
    use leptos::wasm_bindgen::JsCast;
    ev.target()
        .and_then(|t| t.dyn_into::<leptos::web_sys::Element>().ok())
        .is_some_and(|el| el.closest(".review-files").ok().flatten().is_some())
}

fn focus_file(file: usize) {
    use leptos::wasm_bindgen::JsCast;
    let selector = format!(".review-files [data-file=\"{file}\"]");
    if let Ok(Some(el)) = document().query_selector(&selector)
        && let Ok(el) = el.dyn_into::<leptos::web_sys::HtmlElement>()
    {
        let _ = el.focus();
    }
}
