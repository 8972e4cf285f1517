//! Find in the conversation: the query box, "n of N", and stepping through matches.

use leptos::prelude::*;

#[component]
pub(super) fn FindBar(query: RwSignal<String>, matches: Memo<Vec<u64>>) -> impl IntoView {
    let current = RwSignal::new(0usize);
    let go = move |step: isize| {
        let list = matches.get_untracked();
        if list.is_empty() {
            return;
        }
        let n = list.len() as isize;
        let next = ((current.get_untracked() as isize + step).rem_euclid(n)) as usize;
        current.set(next);
        reveal(list[next]);
    };
    let input: NodeRef<leptos::html::Input> = NodeRef::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    view! {
        <div class="findbar" role="search" data-testid="findbar">
            <input
                type="search"
                node_ref=input
                placeholder="Find in conversation"
                aria-label="Find in conversation"
                data-testid="find-input"
                prop:value=move || query.get()
                on:input=move |ev| {
                    query.set(event_target_value(&ev));
                    current.set(0);
                    // Show the first match right away, as "1 of N" says.
                    if let Some(&first) = matches.get_untracked().first() {
                        reveal(first);
                    }
                }
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" { ev.prevent_default(); go(if ev.shift_key() { -1 } else { 1 }); }
                }
            />
            <span class="muted" data-testid="find-count">{move || {
                let n = matches.with(Vec::len);
                if n == 0 { "no matches".to_string() } else { format!("{} of {n}", current.get().min(n - 1) + 1) }
            }}</span>
            <button class="btn" data-testid="find-prev" on:click=move |_| go(-1)>"Previous"</button>
            <button class="btn" data-testid="find-next" on:click=move |_| go(1)>"Next"</button>
        </div>
    }
}

/// Scrolls the timeline row for `idx` into view and marks it as the current match.
fn reveal(idx: u64) {
    #[cfg(feature = "hydrate")]
    if let Some(document) = web_sys::window().and_then(|w| w.document())
        && let Some(el) = document.get_element_by_id(&format!("m{idx}"))
    {
        thread_local! {
            static CURRENT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
        }
        if let Some(previous) = CURRENT.replace(Some(idx))
            && let Some(old) = document.get_element_by_id(&format!("m{previous}"))
        {
            let _ = old.remove_attribute("data-current");
        }
        let _ = el.set_attribute("data-current", "");
        let options = web_sys::ScrollIntoViewOptions::new();
        options.set_block(web_sys::ScrollLogicalPosition::Center);
        el.scroll_into_view_with_scroll_into_view_options(&options);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = idx;
}
