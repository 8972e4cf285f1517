//! The diff itself: every row of every file in one scroll container, rendered only
//! around what is on screen (rows have one fixed height), so a diff of 100,000 lines
//! scrolls as smoothly as one of ten. Clicking a line starts a review comment.

use std::sync::Arc;

use leptos::prelude::*;

use crate::protocol::ReviewComment;
use crate::review::{DiffModel, Row, RowKind, Span, display_path, status_label, visible_window};

/// Height of one row; must match `.rv-row` in the stylesheet.
pub(super) const ROW_PX: f64 = 20.0;
/// Rows rendered beyond each edge of the viewport.
const OVERSCAN: usize = 40;
/// The rendered window moves in steps of this many rows, so scrolling re-renders
/// once every few rows rather than at every row; the overscan covers the slack.
const STEP_ROWS: f64 = 16.0;

#[component]
pub(super) fn DiffRows(
    model: Arc<DiffModel>,
    /// The file on screen (the one at the top, or the one just jumped to).
    current: RwSignal<Option<usize>>,
    /// A file to scroll to, set by the file list and the keys.
    jump: RwSignal<Option<usize>>,
    /// The lines the comment box is about.
    selection: RwSignal<Option<Span>>,
    draft: RwSignal<Vec<ReviewComment>>,
    read_only: bool,
) -> impl IntoView {
    let total = model.rows.len();
    let digits = model.max_line.max(1).to_string().len().max(3);
    let model = StoredValue::new(model);
    let scroller: NodeRef<leptos::html::Div> = NodeRef::new();
    let scroll_top = RwSignal::new(0.0);
    let viewport = RwSignal::new(600.0);
    // Where a plain click started a selection, for Shift+click to extend.
    let anchor = StoredValue::new(None::<usize>);
    // The file just jumped to: it stays current while its heading is on screen, even
    // when the end of the diff stops the scroll short of putting it at the top.
    let wanted = StoredValue::new(None::<usize>);

    let measure = move || {
        let Some(el) = scroller.get_untracked() else {
            return;
        };
        let top = el.scroll_top() as f64;
        let height = el.client_height() as f64;
        scroll_top.set(top);
        viewport.set(height);
        if total == 0 {
            return;
        }
        let first = ((top / ROW_PX) as usize).min(total - 1);
        let last = (((top + height) / ROW_PX) as usize).min(total - 1);
        let file = model.with_value(|m| {
            let kept = wanted.get_value().filter(|&w| {
                m.files
                    .get(w)
                    .is_some_and(|f| (first..=last).contains(&f.first_row))
            });
            if kept.is_none() {
                wanted.set_value(None);
            }
            kept.or_else(|| m.file_at(first))
        });
        if current.get_untracked() != file {
            current.set(file);
        }
    };
    Effect::new(move |_| {
        if scroller.get().is_some() {
            measure();
        }
        let handle = window_event_listener(leptos::ev::resize, move |_| measure());
        on_cleanup(move || handle.remove());
    });
    Effect::new(move |_| {
        let Some(file) = jump.get() else { return };
        let Some(el) = scroller.get() else { return };
        let row = model.with_value(|m| m.files.get(file).map(|f| f.first_row));
        if let Some(row) = row {
            wanted.set_value(Some(file));
            el.set_scroll_top((row as f64 * ROW_PX) as i32);
            measure();
        }
    });
    let window = Memo::new(move |_| {
        let step = ROW_PX * STEP_ROWS;
        let top = (scroll_top.get() / step).floor() * step;
        visible_window(top, viewport.get() + step, ROW_PX, total, OVERSCAN)
    });
    let click = move |row: usize, shift: bool| {
        if read_only {
            return;
        }
        let from = if shift { anchor.get_value() } else { None };
        let span = model.with_value(|m| m.span(from, row));
        if let Some(span) = span {
            if from.is_none() || span.rows.len() == 1 {
                anchor.set_value(Some(row));
            }
            selection.set(Some(span));
        }
    };
    let rows = move || {
        let w = window.get();
        let selected = selection.with(|s| s.as_ref().map(|s| s.rows.clone()));
        let marks = draft.with(|d| {
            d.iter()
                .map(|c| (c.path.clone(), c.line, c.end_line))
                .collect::<Vec<_>>()
        });
        let offset = w.start as f64 * ROW_PX;
        let rows = model.with_value(|m| {
            w.clone()
                .map(|i| {
                    let r = &m.rows[i];
                    let path = &m.files[r.file].change.path;
                    let commented = r.line().is_some_and(|l| {
                        r.commentable()
                            && marks
                                .iter()
                                .any(|(p, a, b)| p == path && (*a..=*b).contains(&l))
                    });
                    let sel = selected.as_ref().is_some_and(|s| s.contains(&i));
                    row_view(m, i, r, sel, commented, click)
                })
                .collect_view()
        });
        view! {
            <div class="rv-rows" style:transform=format!("translateY({offset}px)")>{rows}</div>
        }
    };
    view! {
        <div class="review-diff" class:read-only=read_only data-testid="review-diff" node_ref=scroller
            on:scroll=move |_| measure() tabindex="0" aria-label="Diff"
            style=format!("--ln-w: {digits}ch")>
            <div class="rv-spacer" style:height=format!("{}px", total as f64 * ROW_PX)>{rows}</div>
        </div>
    }
}

fn row_view<C: Fn(usize, bool) + Copy + Send + Sync + 'static>(
    m: &DiffModel,
    i: usize,
    r: &Row,
    selected: bool,
    commented: bool,
    click: C,
) -> impl IntoView + use<C> {
    let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let (class, testid, sign) = match r.kind {
        RowKind::File => ("rv-row file", "diff-file", ""),
        RowKind::Hunk => ("rv-row hunk", "diff-hunk", ""),
        RowKind::Context => ("rv-row ctx", "diff-line", " "),
        RowKind::Added => ("rv-row add", "diff-line", "+"),
        RowKind::Removed => ("rv-row del", "diff-line", "-"),
        RowKind::NoNewline => ("rv-row nonl", "diff-nonl", ""),
        RowKind::Fold => ("rv-row fold", "diff-fold", ""),
        RowKind::Note => ("rv-row note", "diff-note", ""),
    };
    let tail = (r.kind == RowKind::File).then(|| {
        let f = &m.files[r.file].change;
        let counts = if f.binary {
            "binary".to_string()
        } else {
            format!("+{} −{}", f.added, f.removed)
        };
        view! { <span class="rv-fstat">{format!("{} · {counts}", status_label(f.status))}</span> }
    });
    let text = if r.kind == RowKind::File {
        display_path(&m.files[r.file].change)
    } else {
        r.text.clone()
    };
    let commentable = r.commentable();
    view! {
        <div class=class class:sel=selected class:commented=commented data-testid=testid data-row=i
            data-old=r.old data-new=r.new
            on:mousedown=move |ev| if commentable && ev.shift_key() { ev.prevent_default() }
            on:click=move |ev| if commentable { click(i, ev.shift_key()) }>
            <span class="ln" aria-hidden="true">{number(r.old)}</span>
            <span class="ln" aria-hidden="true">{number(r.new)}</span>
            <span class="sign" aria-hidden="true">{sign}</span>
            <span class="code">{text}</span>
            {tail}
        </div>
    }
}
