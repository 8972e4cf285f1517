//! The agent's mode and model pickers, shown when the agent offers a choice.

use leptos::prelude::*;

use crate::client::http::post_json;
use crate::protocol::{ChoiceRequest, ChoiceResponse, Choices};

#[component]
pub(super) fn ChoicePicker(
    label: &'static str,
    testid: &'static str,
    /// `mode` or `model` under the conversation's API base.
    url: String,
    choices: Memo<Option<Choices>>,
) -> impl IntoView {
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    // Bumped when a pick fails, so the select shows the current choice again.
    let reset = RwSignal::new(0u32);
    let url = StoredValue::new(url);
    let pick = move |id: String| {
        busy.set(true);
        error.set(None);
        let url = url.get_value();
        leptos::task::spawn_local(async move {
            // Success needs nothing more: the state event carries the new choice.
            if let Err(e) = post_json::<_, ChoiceResponse>(&url, &ChoiceRequest { id }).await {
                error.set(Some(e));
                reset.update(|r| *r += 1);
            }
            busy.set(false);
        });
    };
    move || {
        reset.track();
        choices.get().map(|c| {
            let current = c.current.clone();
            let options = c
                .options
                .into_iter()
                .map(|o| {
                    let selected = o.id == current;
                    view! {
                        <option value=o.id.clone() selected=selected title=o.description.clone().unwrap_or_default()>
                            {o.name}
                        </option>
                    }
                })
                .collect_view();
            view! {
                <label>
                    {label}
                    <select data-testid=testid prop:value=current.clone() disabled=move || busy.get()
                        on:change=move |ev| pick(event_target_value(&ev))>
                        {options}
                    </select>
                    {move || error.get().map(|e| view! { <span class="error-text" role="alert">{e}</span> })}
                </label>
            }
        })
    }
}
