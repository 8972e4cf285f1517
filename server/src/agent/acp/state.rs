//! What a conversation's state shows of its ACP agent, and the permission
//! requests waiting for a person.

use std::collections::HashSet;

use agent_client_protocol::v1::Responder;
use agent_client_protocol::v1::schema::RequestPermissionResponse;
use app::protocol::{Choice, Choices, PermissionRequest};
use serde_json::Value;

use crate::agent::AgentStatus;

#[derive(Default)]
pub struct AgentState {
    /// Requests waiting for an answer, oldest first, with the agent's reply handle.
    pending: Vec<(PermissionRequest, Responder<RequestPermissionResponse>)>,
    /// Requests already answered or withdrawn: a second answer is a conflict.
    settled: HashSet<String>,
    pub modes: Option<Choices>,
    /// Set when modes come from a `mode` config option rather than ACP modes.
    pub modes_via_config: Option<String>,
    pub models: Option<Choices>,
    /// The config option id models are chosen through.
    pub models_config: Option<String>,
    /// The latest `usage_update` (context window, cost).
    pub usage: Option<Value>,
    pub last_activity: Option<String>,
}

impl AgentState {
    pub fn status(&self) -> AgentStatus {
        AgentStatus {
            pending_permissions: self.pending.iter().map(|(r, _)| r.clone()).collect(),
            modes: self.modes.clone(),
            models: self.models.clone(),
            last_activity: self.last_activity.clone(),
        }
    }

    pub fn ask(
        &mut self,
        request: PermissionRequest,
        responder: Responder<RequestPermissionResponse>,
    ) {
        self.pending.push((request, responder));
    }

    /// Takes a pending request to answer it. `Err(true)`: it was already settled.
    pub fn take(
        &mut self,
        request_id: &str,
    ) -> Result<(PermissionRequest, Responder<RequestPermissionResponse>), bool> {
        match self
            .pending
            .iter()
            .position(|(r, _)| r.request_id == request_id)
        {
            Some(at) => {
                self.settled.insert(request_id.to_string());
                Ok(self.pending.remove(at))
            }
            None => Err(self.settled.contains(request_id)),
        }
    }

    /// Puts back a request taken by mistake (an answer naming no option of it).
    pub fn unsettle(&mut self, request_id: &str) {
        self.settled.remove(request_id);
    }

    /// Takes every pending request (to withdraw them).
    pub fn take_all(&mut self) -> Vec<(PermissionRequest, Responder<RequestPermissionResponse>)> {
        for (r, _) in &self.pending {
            self.settled.insert(r.request_id.clone());
        }
        std::mem::take(&mut self.pending)
    }

    pub fn set_current_mode(&mut self, mode: &str) {
        if let Some(modes) = &mut self.modes {
            modes.current = mode.to_string();
        }
    }

    /// Reads the agent's modes from `session/new` (or `session/load`).
    pub fn apply_modes(&mut self, modes: Option<&Value>) {
        let Some(modes) = modes.filter(|m| !m.is_null()) else {
            return;
        };
        self.modes = Some(Choices {
            current: str_of(modes, "currentModeId"),
            options: modes
                .get("availableModes")
                .and_then(Value::as_array)
                .map(|all| {
                    all.iter()
                        .map(|m| Choice {
                            id: str_of(m, "id"),
                            name: str_of(m, "name"),
                            description: m
                                .get("description")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
        self.modes_via_config = None;
    }

    /// Reads models (and modes, for agents that only offer them this way) from
    /// the session's config options.
    pub fn apply_config_options(&mut self, options: &Value) {
        for option in options.as_array().into_iter().flatten() {
            let id = str_of(option, "id");
            let category = str_of(option, "category");
            let choices = Choices {
                current: str_of(option, "currentValue"),
                options: option
                    .get("options")
                    .and_then(Value::as_array)
                    .map(|all| {
                        all.iter()
                            // Grouped options: flatten the groups.
                            .flat_map(|o| match o.get("options").and_then(Value::as_array) {
                                Some(group) => group.clone(),
                                None => vec![o.clone()],
                            })
                            .map(|o| Choice {
                                id: str_of(&o, "value"),
                                name: str_of(&o, "name"),
                                description: o
                                    .get("description")
                                    .and_then(Value::as_str)
                                    .map(str::to_string),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            if category == "model" || id == "model" {
                self.models = Some(choices);
                self.models_config = Some(id);
            } else if (category == "mode" || id == "mode")
                && (self.modes.is_none() || self.modes_via_config.is_some())
            {
                self.modes = Some(choices);
                self.modes_via_config = Some(id);
            }
        }
    }

    /// Forgets the session's choices (a new session brings its own).
    pub fn reset_session(&mut self) {
        self.modes = None;
        self.modes_via_config = None;
        self.models = None;
        self.models_config = None;
        self.usage = None;
    }
}

fn str_of(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}
