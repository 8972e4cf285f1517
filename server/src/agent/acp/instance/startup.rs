//! Starting the agent's process and opening its session.

use super::*;

impl AcpInstance {
    /// Starts the process and initializes it, or says why it could not (with the
    /// last lines of its stderr).
    pub(super) async fn start(&self, turn: &Turn) -> Result<Live, String> {
        let cwd = turn.cwd().to_path_buf();
        let (process, pipes) = AgentProcess::spawn(&self.spec, &cwd, &self.seat.toolbox)?;
        let process = Arc::new(process);
        match self.connect(process.clone(), pipes, cwd).await {
            Ok(live) => Ok(live),
            Err(why) => {
                // Give its last words a moment to arrive.
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), process.wait_ended()).await;
                process.kill().await;
                Err(with_stderr(&why, &process.stderr_tail()))
            }
        }
    }

    async fn connect(
        &self,
        process: Arc<AgentProcess>,
        pipes: crate::agent::acp::process::Pipes,
        cwd: std::path::PathBuf,
    ) -> Result<Live, String> {
        let (link, inbox_rx, inbox) = link::connect(pipes).await?;
        let pump = Arc::new(Pump {
            seat: self.seat.clone(),
            root: cwd,
            book: self.book.clone(),
            terminals: self.terminals.clone(),
            state: self.state.clone(),
        });
        tokio::spawn(pump.run(inbox_rx));
        let mut capabilities = ClientCapabilities::new()
            .fs(FileSystemCapabilities::new()
                .read_text_file(true)
                .write_text_file(true))
            .terminal(true);
        // Zed's extension: agents that run commands themselves stream their output.
        let mut meta = serde_json::Map::new();
        meta.insert("terminal_output".into(), Value::Bool(true));
        capabilities = capabilities.meta(meta);
        let init = link.cx.send_request(
            InitializeRequest::new(ProtocolVersion::V1).client_capabilities(capabilities),
        );
        let response = self
            .bounded(&process, "initialize", init.block_task())
            .await?;
        let can_load = response.agent_capabilities.load_session;
        Ok(Live {
            process,
            link,
            inbox,
            session: None,
            can_load,
        })
    }

    /// Awaits `request` unless the agent dies first or it takes too long.
    async fn bounded<T>(
        &self,
        process: &AgentProcess,
        what: &str,
        request: impl Future<Output = Result<T, agent_client_protocol::Error>>,
    ) -> Result<T, String> {
        tokio::select! {
            result = tokio::time::timeout(START_TIMEOUT, request) => match result {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(err)) => Err(format!("the agent refused `{what}`: {}", err.message)),
                Err(_) => Err(format!("the agent did not answer `{what}` within {} s", START_TIMEOUT.as_secs())),
            },
            ended = process.wait_ended() => Err(describe(&ended)),
        }
    }

    /// Opens the session the turn runs in: the conversation's earlier one when the
    /// agent can reload it, else a new one (saying so if memory was lost).
    pub(super) async fn open_session(
        &self,
        live: &mut Live,
        turn: &Turn,
    ) -> Result<SessionId, String> {
        if let Some(session) = &live.session {
            return Ok(session.clone());
        }
        let cwd = turn.cwd().to_path_buf();
        let earlier = earlier_session(turn).await;
        let mut notes = Vec::new();
        let mut opened = None;
        if let Some(id) = &earlier {
            if live.can_load {
                let load = live.link.cx.send_request(LoadSessionRequest::new(
                    SessionId::new(id.clone()),
                    cwd.clone(),
                ));
                match self.bounded(&live.process, "session/load", load.block_task()).await {
                    Ok(response) => {
                        let response = serde_json::to_value(&response).unwrap_or_default();
                        opened = Some((SessionId::new(id.clone()), response));
                    }
                    Err(why) => notes.push(format!(
                        "The agent could not reopen its earlier session ({why}): it starts afresh and does not remember this conversation."
                    )),
                }
            } else {
                notes.push(
                    "The agent was restarted and cannot reopen its earlier session: it does not remember this conversation."
                        .to_string(),
                );
            }
        }
        let (session, response) = match opened {
            Some(opened) => opened,
            None => {
                let new = live.link.cx.send_request(NewSessionRequest::new(cwd));
                let response = self
                    .bounded(&live.process, "session/new", new.block_task())
                    .await?;
                let id = response.session_id.clone();
                (id, serde_json::to_value(&response).unwrap_or_default())
            }
        };
        {
            let mut state = self.state();
            state.reset_session();
            state.apply_modes(response.get("modes"));
            if let Some(options) = response.get("configOptions") {
                state.apply_config_options(options);
            }
        }
        // Ask-first, explicitly: newer adapters default to letting the model approve itself.
        if let Some(mode) = &self.spec.mode {
            let offered = self
                .state()
                .modes
                .as_ref()
                .is_some_and(|m| m.options.iter().any(|o| &o.id == mode));
            if offered {
                let set = live
                    .link
                    .cx
                    .send_request(SetSessionModeRequest::new(session.clone(), mode.clone()));
                match self
                    .bounded(&live.process, "session/set_mode", set.block_task())
                    .await
                {
                    Ok(_) => self.state().set_current_mode(mode),
                    Err(why) => notes.push(format!(
                        "Could not set the agent's mode to {mode:?}: {why}."
                    )),
                }
            }
        }
        let mut started = Message::new(
            MessageType::Notice,
            format!("{} session started.", self.spec.name),
        );
        started.input = Some(json!({ "acp_session_id": session.0.to_string() }));
        let mut messages = vec![started];
        messages.extend(
            notes
                .into_iter()
                .map(|n| Message::new(MessageType::Notice, n)),
        );
        for message in messages {
            turn.append(message).await.map_err(|e| e.to_string())?;
        }
        live.session = Some(session.clone());
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((live.link.cx.clone(), session.clone()));
        self.changed();
        Ok(session)
    }

    pub(super) async fn failed_to_start(
        &self,
        turn: &Turn,
        why: String,
        dead: Option<Live>,
    ) -> Result<TurnEnd, TurnError> {
        let stderr = match &dead {
            Some(live) => {
                // Give its last words a moment to arrive.
                let _ = tokio::time::timeout(Duration::from_millis(500), live.process.wait_ended())
                    .await;
                live.process.stderr_tail()
            }
            None => Vec::new(),
        };
        if let Some(live) = dead {
            self.stop_process(live).await;
        }
        let text = format!("The agent {:?} could not start: {why}", self.spec.name);
        turn.append(Message::new(
            MessageType::Error,
            with_stderr(&text, &stderr),
        ))
        .await?;
        Ok(TurnEnd::text("The agent could not start."))
    }
}

pub(super) fn with_stderr(text: &str, stderr: &[String]) -> String {
    if stderr.is_empty() {
        return text.to_string();
    }
    format!("{text}\nLast lines of its stderr:\n{}", stderr.join("\n"))
}

/// The ACP session this conversation used before a restart of Tether, if any.
async fn earlier_session(turn: &Turn) -> Option<String> {
    let context = turn.context().await.ok()?;
    context.iter().rev().find_map(|m| {
        (m.kind == MessageType::Notice)
            .then(|| {
                m.input
                    .as_ref()?
                    .get("acp_session_id")?
                    .as_str()
                    .map(str::to_string)
            })
            .flatten()
    })
}
