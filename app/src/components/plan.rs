//! The agent's plan for the turn: a checklist that the agent's next `plan`
//! message replaces in place.

use leptos::prelude::*;

use crate::protocol::PlanEntry;

fn mark(status: &str) -> &'static str {
    match status {
        "completed" => "✓",
        "in_progress" => "▸",
        _ => "○",
    }
}

#[component]
pub fn PlanView(entries: RwSignal<Vec<PlanEntry>>) -> impl IntoView {
    let done = move || {
        entries.with(|e| {
            let finished = e.iter().filter(|e| e.status == "completed").count();
            format!("{finished} of {}", e.len())
        })
    };
    view! {
        <section class="plan" data-testid="plan" aria-label="Plan">
            <header class="plan-head"><strong>"Plan"</strong> <span class="muted">{done}</span></header>
            <ol class="plan-steps">
                {move || entries.get().into_iter().map(|e| {
                    let status = e.status.clone();
                    view! {
                        <li class=format!("plan-step {status}") data-testid="plan-step" data-status=status.clone()
                            data-priority=e.priority.clone()>
                            <span class="mark" aria-label=status.replace('_', " ")>{mark(&status)}</span>
                            <span class="step-text">{e.content}</span>
                        </li>
                    }
                }).collect_view()}
            </ol>
        </section>
    }
}
