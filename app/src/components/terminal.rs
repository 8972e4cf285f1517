//! Terminal output as styled text (never HTML). Collapsed: the last lines. Expanded:
//! a virtual scroller that renders only the rows on screen, so huge outputs stay smooth.

use leptos::prelude::*;

use crate::ansi::Line;
use crate::timeline::ToolCard;

/// Rows a collapsed card shows.
pub const COLLAPSED_LINES: usize = 12;
/// Must match `.term .ln` height in the stylesheet.
pub const LINE_HEIGHT_PX: f64 = 18.0;
/// Height of the expanded scroller.
const VIEWPORT_PX: f64 = 432.0;
/// Extra rows rendered above and below the visible ones.
const OVERSCAN: usize = 20;
/// Wrapped rows have no fixed height, so they are not virtualised: beyond this many
/// lines wrapping is not offered.
pub const WRAP_MAX_LINES: usize = 10_000;

fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    !needle_lower.is_empty() && haystack.to_lowercase().contains(needle_lower)
}

fn line_view(line: &Line, query_lower: &str) -> impl IntoView + use<> {
    // Most frames have no query: no need to assemble the line's text for one.
    let hit = !query_lower.is_empty() && contains_ci(&line.text(), query_lower);
    let runs = line
        .runs
        .iter()
        .map(|run| {
            let classes = run.style.css_classes();
            let style = run.style.inline_style();
            view! {
                <span
                    class=(!classes.is_empty()).then_some(classes)
                    style=(!style.is_empty()).then_some(style)
                >
                    {run.text.clone()}
                </span>
            }
        })
        .collect_view();
    view! { <div class=if hit { "ln hit" } else { "ln" }>{runs}</div> }
}

/// The last `COLLAPSED_LINES` rows; re-rendered when the card's output changes.
#[component]
pub fn CollapsedOutput(card: ToolCard, query: Signal<String>) -> impl IntoView {
    view! {
        <div class="term collapsed" data-testid="output">
            {move || {
                card.version.track();
                let q = query.get().to_lowercase();
                card.term
                    .with_value(|t| {
                        let lines = t.lines();
                        let from = lines.len().saturating_sub(COLLAPSED_LINES);
                        lines[from..].iter().map(|l| line_view(l, &q)).collect_view()
                    })
            }}
        </div>
    }
}

/// All rows: virtualised, or every row wrapped when the reader asks for that (and
/// the output is small enough to lay out whole).
#[component]
pub fn ExpandedOutput(card: ToolCard, query: Signal<String>) -> impl IntoView {
    // Read in the browser only: the expanded view is never rendered on the server.
    let wrap = RwSignal::new(crate::prefs::get_bool(crate::prefs::WRAP));
    let too_long = move || {
        card.version.track();
        card.term.with_value(|t| t.line_count()) > WRAP_MAX_LINES
    };
    let toggle = move |_| {
        let on = !wrap.get_untracked();
        wrap.set(on);
        crate::prefs::set_bool(crate::prefs::WRAP, on);
    };
    view! {
        <div class="term-tools">
            <button type="button" class="btn small" data-testid="wrap-toggle"
                aria-pressed=move || (wrap.get() && !too_long()).to_string()
                disabled=too_long
                title=move || if too_long() { "Too many lines to wrap" } else { "Wrap long lines" }
                on:click=toggle>"Wrap lines"</button>
        </div>
        {move || if wrap.get() && !too_long() {
            leptos::either::Either::Left(view! { <WrappedOutput card query/> })
        } else {
            leptos::either::Either::Right(view! { <VirtualOutput card query/> })
        }}
    }
}

/// Every row, wrapped at the card's width.
#[component]
fn WrappedOutput(card: ToolCard, query: Signal<String>) -> impl IntoView {
    let viewport: NodeRef<leptos::html::Div> = NodeRef::new();
    // Start at the end, like the virtual view.
    Effect::new(move |_| {
        card.version.track();
        if let Some(el) = viewport.get() {
            el.set_scroll_top(el.scroll_height());
        }
    });
    view! {
        <div class="term expanded wrap" data-testid="output" node_ref=viewport
            style:max-height=format!("{VIEWPORT_PX}px") tabindex="0">
            {move || {
                card.version.track();
                let q = query.get().to_lowercase();
                card.term.with_value(|t| t.lines().iter().map(|l| line_view(l, &q)).collect_view())
            }}
        </div>
    }
}

/// All rows, virtualised.
#[component]
fn VirtualOutput(card: ToolCard, query: Signal<String>) -> impl IntoView {
    let scroll_top = RwSignal::new(f64::MAX);
    let viewport: NodeRef<leptos::html::Div> = NodeRef::new();
    let total = Memo::new(move |_| {
        card.version.track();
        card.term.with_value(|t| t.line_count())
    });
    // Follow new output while the view is at its bottom.
    let following = RwSignal::new(true);
    Effect::new(move |_| {
        let n = total.get();
        if following.get_untracked()
            && let Some(el) = viewport.get()
        {
            let bottom = n as f64 * LINE_HEIGHT_PX;
            el.set_scroll_top(bottom as i32);
            scroll_top.set(el.scroll_top() as f64);
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = viewport.get() {
            let top = el.scroll_top() as f64;
            scroll_top.set(top);
            let slack = el.scroll_height() as f64 - top - el.client_height() as f64;
            following.set(slack < LINE_HEIGHT_PX * 2.0);
        }
    };
    let window = move || {
        let n = total.get();
        let top = scroll_top.get().min(n as f64 * LINE_HEIGHT_PX);
        let first = ((top / LINE_HEIGHT_PX) as usize).saturating_sub(OVERSCAN);
        let shown = (VIEWPORT_PX / LINE_HEIGHT_PX) as usize + 2 * OVERSCAN;
        (first.min(n), (first + shown).min(n))
    };
    view! {
        <div
            class="term expanded"
            data-testid="output"
            node_ref=viewport
            on:scroll=on_scroll
            style:max-height=format!("{VIEWPORT_PX}px")
            tabindex="0"
        >
            <div class="spacer" style:height=move || format!("{}px", total.get() as f64 * LINE_HEIGHT_PX)>
                {move || {
                    card.version.track();
                    let (first, last) = window();
                    let q = query.get().to_lowercase();
                    let rows = card.term.with_value(|t| {
                        t.lines()[first..last].iter().map(|l| line_view(l, &q)).collect_view()
                    });
                    view! {
                        <div class="rows" style:transform=format!("translateY({}px)", first as f64 * LINE_HEIGHT_PX)>
                            {rows}
                        </div>
                    }
                }}
            </div>
        </div>
    }
}
