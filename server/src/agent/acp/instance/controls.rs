//! What a person asks of the agent outside the flow of a turn: answers to its
//! permission requests, and its mode or model.

use super::*;

impl AcpInstance {
    pub(super) async fn answer_now(
        &self,
        request_id: &str,
        option_id: &str,
    ) -> Result<PermissionAnswer, ControlError> {
        let (request, responder) = match self.state().take(request_id) {
            Ok(taken) => taken,
            Err(true) => {
                return Err(ControlError::Conflict(format!(
                    "the permission request {request_id:?} was already answered"
                )));
            }
            Err(false) => {
                return Err(ControlError::NotFound(format!(
                    "no pending permission request with id {request_id:?}"
                )));
            }
        };
        let Some(option) = request.options.iter().find(|o| o.option_id == option_id) else {
            // Not an answer after all: the request stays pending.
            let known: Vec<_> = request
                .options
                .iter()
                .map(|o| o.option_id.clone())
                .collect();
            let mut state = self.state();
            state.unsettle(request_id);
            state.ask(request, responder);
            return Err(ControlError::NotFound(format!(
                "the request has no option {option_id:?} (it has {known:?})"
            )));
        };
        let answer = PermissionAnswer {
            request_id: request.request_id.clone(),
            tool_call_id: request.tool_call_id.clone(),
            option_id: Some(option.option_id.clone()),
            outcome: option.kind.clone(),
        };
        // Logged before the agent hears it, so what it does next follows the answer.
        if let Err(err) = self.seat.log.append(answer_message(answer.clone())).await {
            tracing::error!(%err, "cannot log a permission answer");
        }
        pump::answer(responder, Some(option_id));
        self.changed();
        Ok(answer)
    }
    pub(super) async fn pick(&self, kind: ChoiceKind, id: &str) -> Result<Choices, ControlError> {
        let Some((cx, session)) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return Err(ControlError::Conflict(
                "the agent has not started yet: send a message first".into(),
            ));
        };
        let (choices, config) = {
            let state = self.state();
            match kind {
                ChoiceKind::Mode => (state.modes.clone(), state.modes_via_config.clone()),
                ChoiceKind::Model => (state.models.clone(), state.models_config.clone()),
            }
        };
        let Some(choices) = choices else {
            return Err(ControlError::NotFound(match kind {
                ChoiceKind::Mode => "this agent has no modes".into(),
                ChoiceKind::Model => "this agent offers no choice of model".into(),
            }));
        };
        if !choices.options.iter().any(|o| o.id == id) {
            return Err(ControlError::NotFound(format!(
                "the agent offers no {id:?}"
            )));
        }
        let result = match config {
            Some(config) => cx
                .send_request(SetSessionConfigOptionRequest::new(
                    session,
                    config,
                    SessionConfigValueId::new(id.to_string()),
                ))
                .block_task()
                .await
                .map(|_| ()),
            None => cx
                .send_request(SetSessionModeRequest::new(session, id.to_string()))
                .block_task()
                .await
                .map(|_| ()),
        };
        tokio::time::timeout(START_TIMEOUT, async { result })
            .await
            .map_err(|_| ControlError::Failed("the agent did not answer".into()))?
            .map_err(|e| ControlError::Failed(format!("the agent refused: {}", e.message)))?;
        let updated = {
            let mut state = self.state();
            let target = match kind {
                ChoiceKind::Mode => &mut state.modes,
                ChoiceKind::Model => &mut state.models,
            };
            if let Some(c) = target {
                c.current = id.to_string();
            }
            target.clone().unwrap_or_default()
        };
        self.changed();
        Ok(updated)
    }
}

pub(super) fn answer_message(answer: PermissionAnswer) -> Message {
    let mut message = Message::new(MessageType::PermissionAnswer, answer.outcome.clone());
    message.tool_call_id = Some(answer.tool_call_id.clone());
    message.permission_answer = Some(answer);
    message
}
