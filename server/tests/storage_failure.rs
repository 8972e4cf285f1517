//! Appends that fail (a full disk) in the middle of a turn, injected through a store
//! wrapper, deterministically. Regression tests for a turn left open in the log: its
//! tool result could not be written, yet the turn was closed (or a later turn ran and
//! closed), so the call had no result for good and crash recovery, which only looks
//! after the last `end_of_turn`, could never close it. `faults.rs` has the real thing
//! (RLIMIT_FSIZE during a flood), where whether the small messages still fit varies.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use app::protocol::{Message, MessageType, RunStatus, ToolStatus};
use async_trait::async_trait;
use server::agent::Agents;
use server::engine::{Conversation, Engine, EngineSettings};
use server::store::{
    AppendRow, ConversationRecord, Result, ShareRecord, Store, StoreError, StoredMessage,
};
use server::tools::Toolbox;
use tokio_util::sync::CancellationToken;

/// Appends succeed.
const OK: u8 = 0;
/// Tool results written by the command's own end (the full ones, with `start_time`) fail.
const FAIL_FULL_RESULTS: u8 = 1;
/// Every tool result and every `end_of_turn` message fails.
const FAIL_CLOSINGS: u8 = 2;

struct FlakyStore {
    inner: Arc<dyn Store>,
    mode: AtomicU8,
}

impl FlakyStore {
    fn fails(&self, row: &AppendRow) -> bool {
        match self.mode.load(Ordering::SeqCst) {
            FAIL_FULL_RESULTS => {
                row.kind == MessageType::Tool
                    && row
                        .json_str()
                        .is_ok_and(|json| json.contains("\"start_time\""))
            }
            FAIL_CLOSINGS => row.kind == MessageType::Tool || row.end_of_turn,
            _ => false,
        }
    }
}

#[async_trait]
impl Store for FlakyStore {
    async fn create_conversation(&self, record: &ConversationRecord) -> Result<()> {
        self.inner.create_conversation(record).await
    }
    async fn update_conversation(&self, record: &ConversationRecord) -> Result<()> {
        self.inner.update_conversation(record).await
    }
    async fn conversations(&self) -> Result<Vec<ConversationRecord>> {
        self.inner.conversations().await
    }
    async fn append(&self, conversation: &str, rows: Vec<AppendRow>) -> Result<()> {
        if rows.iter().any(|row| self.fails(row)) {
            return Err(StoreError::Backend(
                "injected failure: no space left on device".into(),
            ));
        }
        self.inner.append(conversation, rows).await
    }
    async fn read(
        &self,
        conversation: &str,
        from: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        self.inner.read(conversation, from, end, limit).await
    }
    async fn message_count(&self, conversation: &str) -> Result<u64> {
        self.inner.message_count(conversation).await
    }
    async fn last_end_of_turn(&self, conversation: &str) -> Result<Option<u64>> {
        self.inner.last_end_of_turn(conversation).await
    }
    async fn read_kinds_after(
        &self,
        conversation: &str,
        after: Option<u64>,
        kinds: &[MessageType],
    ) -> Result<Vec<StoredMessage>> {
        self.inner
            .read_kinds_after(conversation, after, kinds)
            .await
    }
    async fn create_share(&self, record: &ShareRecord) -> Result<()> {
        self.inner.create_share(record).await
    }
    async fn shares(&self) -> Result<Vec<ShareRecord>> {
        self.inner.shares().await
    }
    async fn revoke_share(&self, id: &str) -> Result<bool> {
        self.inner.revoke_share(id).await
    }
    // On NATS the engine claims what it runs and follows the rest, as a replica does.
    fn shared_by_replicas(&self) -> bool {
        self.inner.shared_by_replicas()
    }
    async fn claim(&self, conversation: &str) -> Result<server::store::Claim> {
        self.inner.claim(conversation).await
    }
    async fn release(&self, conversation: &str) {
        self.inner.release(conversation).await;
    }
    async fn owner(&self, conversation: &str) -> Result<Option<String>> {
        self.inner.owner(conversation).await
    }
    async fn publish_status(&self, conversation: &str, json: bytes::Bytes) -> Result<()> {
        self.inner.publish_status(conversation, json).await
    }
    async fn follow(&self) -> Result<Option<tokio::sync::mpsc::Receiver<server::store::Followed>>> {
        self.inner.follow().await
    }
}

struct Setup {
    store: Arc<FlakyStore>,
    conversation: Arc<Conversation>,
    _engine: Arc<Engine>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(FlakyStore {
        inner: common::open_engine_store(dir.path()).await,
        mode: AtomicU8::new(OK),
    });
    let settings = EngineSettings {
        max_conversations: 16,
        snapshot_limit: server::changes::DEFAULT_SNAPSHOT_LIMIT,
        sweep_every: std::time::Duration::from_secs(5),
    };
    let engine = Engine::open(
        store.clone(),
        Agents::builtin(Toolbox::new(16, &["TETHER_*".into()])),
        settings,
        CancellationToken::new(),
    )
    .await
    .expect("load");
    let conversation = engine
        .create(dir.path(), None, None)
        .await
        .expect("create a conversation");
    Setup {
        store,
        conversation,
        _engine: engine,
        _dir: dir,
    }
}

async fn chat_and_wait(conversation: &Arc<Conversation>, command: &str) {
    conversation.chat(command.into()).await.expect("chat");
    conversation
        .wait_idle(Duration::from_secs(30))
        .await
        .expect("the turn ends");
}

async fn log(conversation: &Conversation) -> Vec<Message> {
    let messages: Vec<Message> = conversation
        .log
        .read(0, u64::MAX, 100_000)
        .await
        .expect("read the log")
        .iter()
        .map(|e| e.message().expect("a message"))
        .collect();
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.idx, i as u64, "the log is not dense");
    }
    messages
}

fn results<'a>(messages: &'a [Message], call: &str) -> Vec<&'a Message> {
    messages
        .iter()
        .filter(|m| m.kind == MessageType::Tool && m.tool_call_id.as_deref() == Some(call))
        .collect()
}

fn calls(messages: &[Message]) -> Vec<(u64, String)> {
    messages
        .iter()
        .flat_map(|m| m.tool_calls.iter().map(|c| (m.idx, c.tool_call_id.clone())))
        .collect()
}

/// Every tool call has exactly one result, before the next `end_of_turn`.
fn assert_every_call_closed(messages: &[Message]) {
    for (at, call) in calls(messages) {
        let found = results(messages, &call);
        assert_eq!(
            found.len(),
            1,
            "call {call} has {} results; log: {messages:#?}",
            found.len()
        );
        let closing = messages
            .iter()
            .find(|m| m.idx > at && m.end_of_turn)
            .unwrap_or_else(|| panic!("no end_of_turn after call {call}"));
        assert!(
            found[0].idx < closing.idx,
            "the result of {call} comes after its turn closed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_cannot_be_written_is_replaced_before_the_turn_closes() {
    let s = setup().await;
    s.store.mode.store(FAIL_FULL_RESULTS, Ordering::SeqCst);
    chat_and_wait(&s.conversation, "echo hi").await;
    let messages = log(&s.conversation).await;
    assert_every_call_closed(&messages);
    let (_, call) = calls(&messages)[0].clone();
    let result = results(&messages, &call)[0];
    assert_eq!(result.status, Some(ToolStatus::Error));
    assert!(
        result.content.contains("could not be saved"),
        "{}",
        result.content
    );
    let last = messages.last().expect("messages");
    assert!(last.end_of_turn);
    assert_eq!(last.content, "Turn failed.");
    let error = &messages[messages.len() - 2];
    assert_eq!(error.kind, MessageType::Error);
    assert!(
        error.content.contains("injected failure"),
        "{}",
        error.content
    );
    assert_eq!(s.conversation.state().status, RunStatus::Idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_appended_after_an_unclosed_turn_until_it_is_closed() {
    let s = setup().await;
    s.store.mode.store(FAIL_CLOSINGS, Ordering::SeqCst);
    chat_and_wait(&s.conversation, "echo one").await;
    let open = log(&s.conversation).await;
    assert!(
        !open.iter().any(|m| m.end_of_turn),
        "nothing could close the turn"
    );

    // While the turn cannot be closed, no new turn starts behind it.
    let refused = s.conversation.chat("echo two".into()).await;
    assert!(
        refused.is_err(),
        "a chat was accepted behind an unclosed turn"
    );
    assert_eq!(
        log(&s.conversation).await.len(),
        open.len(),
        "something was appended"
    );

    // Once the store works again, the next chat closes the old turn first.
    s.store.mode.store(OK, Ordering::SeqCst);
    chat_and_wait(&s.conversation, "echo three").await;
    let messages = log(&s.conversation).await;
    assert_every_call_closed(&messages);
    let all = calls(&messages);
    assert_eq!(all.len(), 2, "turn one and turn three ran");
    assert_eq!(
        results(&messages, &all[0].1)[0].status,
        Some(ToolStatus::Error)
    );
    assert_eq!(
        results(&messages, &all[1].1)[0].status,
        Some(ToolStatus::Completed)
    );
    assert_eq!(messages.iter().filter(|m| m.end_of_turn).count(), 2);
    let three = messages
        .iter()
        .position(|m| m.kind == MessageType::User && m.content == "echo three")
        .expect("the third chat");
    let first_closing = messages
        .iter()
        .position(|m| m.end_of_turn)
        .expect("a closing");
    assert!(
        first_closing < three,
        "turn one is closed before turn three begins"
    );
}
