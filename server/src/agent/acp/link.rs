//! The ACP connection to one agent process, on the protocol's own SDK. Everything
//! the agent sends (updates and its requests to us) goes, in order, into one
//! bounded channel that the conversation's pump drains: a flood waits for the log
//! instead of being dropped, and a request is never handled before the updates
//! that preceded it are logged.

use agent_client_protocol::v1::schema::{
    CreateTerminalRequest, CreateTerminalResponse, KillTerminalRequest, KillTerminalResponse,
    ReadTextFileRequest, ReadTextFileResponse, ReleaseTerminalRequest, ReleaseTerminalResponse,
    RequestPermissionRequest, RequestPermissionResponse, SessionNotification,
    TerminalOutputRequest, TerminalOutputResponse, WaitForTerminalExitRequest,
    WaitForTerminalExitResponse, WriteTextFileRequest, WriteTextFileResponse,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Agent, ByteStreams, Client};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
use tokio_util::sync::CancellationToken;

use super::process::Pipes;

/// Updates and requests waiting for the pump; beyond this the agent waits.
const INBOX: usize = 256;

/// Something the agent sent. Requests are large and rare next to updates; boxing
/// them would only move the allocation.
#[allow(clippy::large_enum_variant)]
pub enum Inbound {
    /// A `session/update`'s `update`, as JSON.
    Update(serde_json::Value),
    Permission(
        RequestPermissionRequest,
        Responder<RequestPermissionResponse>,
    ),
    Read(ReadTextFileRequest, Responder<ReadTextFileResponse>),
    Write(WriteTextFileRequest, Responder<WriteTextFileResponse>),
    CreateTerminal(CreateTerminalRequest, Responder<CreateTerminalResponse>),
    TerminalOutput(TerminalOutputRequest, Responder<TerminalOutputResponse>),
    WaitForExit(
        WaitForTerminalExitRequest,
        Responder<WaitForTerminalExitResponse>,
    ),
    KillTerminal(KillTerminalRequest, Responder<KillTerminalResponse>),
    ReleaseTerminal(ReleaseTerminalRequest, Responder<ReleaseTerminalResponse>),
    /// Not from the agent: answered once everything before it was handled.
    Flush(oneshot::Sender<()>),
}

/// A live connection: send requests through `cx`.
pub struct Link {
    pub cx: ConnectionTo<Agent>,
    /// Ends the connection when cancelled.
    stop: CancellationToken,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

macro_rules! forward {
    ($builder:expr, $tx:expr, $req:ty, $variant:ident) => {{
        let tx = $tx.clone();
        $builder.on_receive_request(
            async move |request: $req, responder, _cx| {
                if let Err(mpsc::error::SendError(Inbound::$variant(_, responder))) =
                    tx.send(Inbound::$variant(request, responder)).await
                {
                    return responder.respond_with_internal_error("the conversation is closing");
                }
                Ok(())
            },
            agent_client_protocol::on_receive_request!(),
        )
    }};
}

/// Connects over `pipes`; returns the link and the inbox the pump drains, and the
/// sender for `Flush` markers.
pub async fn connect(
    pipes: Pipes,
) -> Result<(Link, mpsc::Receiver<Inbound>, mpsc::Sender<Inbound>), String> {
    let (tx, rx) = mpsc::channel::<Inbound>(INBOX);
    let updates = tx.clone();
    let builder = Client.v1().name("tether").on_receive_notification(
        async move |notification: SessionNotification, _cx| {
            let update = serde_json::to_value(&notification.update).unwrap_or_default();
            // A closed inbox means the conversation is going away: nothing to keep.
            let _ = updates.send(Inbound::Update(update)).await;
            Ok(())
        },
        agent_client_protocol::on_receive_notification!(),
    );
    let builder = forward!(builder, tx, RequestPermissionRequest, Permission);
    let builder = forward!(builder, tx, ReadTextFileRequest, Read);
    let builder = forward!(builder, tx, WriteTextFileRequest, Write);
    let builder = forward!(builder, tx, CreateTerminalRequest, CreateTerminal);
    let builder = forward!(builder, tx, TerminalOutputRequest, TerminalOutput);
    let builder = forward!(builder, tx, WaitForTerminalExitRequest, WaitForExit);
    let builder = forward!(builder, tx, KillTerminalRequest, KillTerminal);
    let builder = forward!(builder, tx, ReleaseTerminalRequest, ReleaseTerminal);

    let transport = ByteStreams::new(pipes.stdin.compat_write(), pipes.stdout.compat());
    let (cx_tx, cx_rx) = oneshot::channel();
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            let result = builder
                .connect_with(transport, async move |cx: ConnectionTo<Agent>| {
                    let _ = cx_tx.send(cx);
                    stop.cancelled().await;
                    Ok(())
                })
                .await;
            if let Err(err) = result {
                tracing::debug!(%err, "the agent connection ended");
            }
        });
    }
    let cx = cx_rx
        .await
        .map_err(|_| "the agent closed its output at once".to_string())?;
    Ok((Link { cx, stop }, rx, tx))
}
