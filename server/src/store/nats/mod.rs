//! The NATS JetStream engine, for several replicas sharing one log.
//!
//! - Every conversation's log is one subject, `<prefix>.log.<conversation>`, of one
//!   stream, `<prefix>-log`. Each message is one stream message, with its index and
//!   what indexes it in headers (`log.rs`).
//! - An append states the stream sequence of its conversation's last message
//!   (`Nats-Expected-Last-Subject-Sequence`). A replica working from a stale view of
//!   the log is refused instead of forking it or leaving a gap. Several messages go
//!   in one atomic batch: all of them are stored or none.
//! - Conversations and share links are JSON values in two key-value buckets
//!   (`records.rs`).
//!
//! Nothing is ever deleted or trimmed here. The stream discards *new* messages when
//! it is full, so a full stream refuses writes instead of dropping old ones.

mod follow;
mod log;
mod owners;
mod records;
mod validity;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::protocol::MessageType;
use async_nats::jetstream::{self, kv, stream};
use async_trait::async_trait;

use super::{AppendRow, ConversationRecord, Result, ShareRecord, Store, StoreError, StoredMessage};

/// How to reach NATS and which names to use there.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// `nats://host:port` (several comma-separated for a cluster); user and
    /// password may be given in it.
    pub url: String,
    /// A `.creds` file (JWT and NKey seed), for servers that use decentralized auth.
    pub creds: Option<PathBuf>,
    /// Starts every stream, bucket and subject name, so several deployments (or
    /// test runs) can share one NATS. Letters, digits, `-` and `_`.
    pub prefix: String,
    /// Copies JetStream keeps of the log and the buckets (3 for a production cluster).
    pub replicas: usize,
    /// How long a replica owns a conversation without renewing its key: the
    /// longest a conversation stays with an owner that died.
    pub lease_ttl: Duration,
}

/// Where a conversation's log ends, as this process last wrote or read it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Head {
    /// The stream sequence of the conversation's last message; 0 when it has none.
    /// The next append expects exactly this.
    last_seq: u64,
    /// The index the next message gets.
    next_idx: u64,
    /// The last message marked end-of-turn, carried on every message.
    last_eot: Option<u64>,
}

pub struct NatsStore {
    /// Requests to JetStream (publishes, direct gets, key-value operations).
    js: jetstream::Context,
    /// The stream that holds every conversation's log.
    log: stream::Stream,
    /// `log`'s name, for batch reads.
    log_name: String,
    /// `<prefix>.log.`; a conversation's subject is this plus its id.
    subject_prefix: String,
    /// Conversation records, keyed by conversation id.
    conversations: kv::Store,
    /// Share records, keyed by share id.
    shares: kv::Store,
    /// Each owner's view of its conversations' runtime state, keyed by conversation
    /// id, for the replicas that follow them.
    status: kv::Store,
    /// Each conversation's head as last seen. A cache: an append that finds it stale
    /// is refused by JetStream, and the head is then read again.
    heads: Mutex<HashMap<String, Head>>,
    /// The largest message the server accepts, headers included.
    max_payload: usize,
    /// The conversations this process owns, by a key each in the lease bucket.
    owners: Arc<owners::Owners>,
    /// Bumped each time the main connection is (re-)established: followers start
    /// reading again at once.
    reconnected: tokio::sync::watch::Receiver<u64>,
}

/// How this process names itself in the lease bucket: host, pid, pid namespace
/// and a random part.
fn holder_name() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into());
    let ns = owners::pid_namespace()
        .map(|ns| format!(" ns {ns}"))
        .unwrap_or_default();
    format!(
        "{host} pid {}{ns} ({})",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn backend(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("NATS: {what}: {err}"))
}

/// Names in NATS must be single subject tokens and valid stream names.
fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A connection, and a signal bumped each time it is (re-)established.
async fn open_connection(
    options: &NatsOptions,
    name: &str,
) -> Result<(async_nats::Client, tokio::sync::watch::Receiver<u64>)> {
    let (connected, reconnected) = tokio::sync::watch::channel(0u64);
    let mut connect = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .event_callback(move |event| {
            if matches!(event, async_nats::Event::Connected) {
                connected.send_modify(|n| *n += 1);
            }
            std::future::ready(())
        });
    if let Some(creds) = &options.creds {
        connect = connect
            .credentials_file(creds)
            .await
            .map_err(|e| backend(&format!("cannot read {}", creds.display()), e))?;
    }
    let client = connect
        .connect(options.url.as_str())
        .await
        .map_err(|e| backend(&format!("cannot connect to {}", options.url), e))?;
    Ok((client, reconnected))
}

impl NatsStore {
    /// Connects and creates the stream and buckets if they do not exist yet (an
    /// existing stream keeps its configuration, limits included).
    pub async fn connect(options: &NatsOptions) -> Result<Self> {
        if !valid_token(&options.prefix) {
            return Err(StoreError::Backend(format!(
                "the NATS prefix {:?} may only use letters, digits, '-' and '_'",
                options.prefix
            )));
        }
        let (client, reconnected) = open_connection(options, "tether").await?;
        // Ownership gets a connection of its own, so its renewals never queue behind
        // a flood's appends on one socket.
        let (lease_client, _) = open_connection(options, "tether-lease").await?;
        let max_payload = client.server_info().max_payload;
        let js = jetstream::new(client);
        let prefix = &options.prefix;
        let log_name = format!("{prefix}-log");
        let log = js
            .get_or_create_stream(stream::Config {
                name: log_name.clone(),
                subjects: vec![format!("{prefix}.log.*")],
                storage: stream::StorageType::File,
                num_replicas: options.replicas,
                discard: stream::DiscardPolicy::New,
                allow_direct: true,
                allow_atomic_publish: true,
                ..Default::default()
            })
            .await
            .map_err(|e| backend(&format!("cannot open the stream {log_name}"), e))?;
        let bucket = |name: String| kv::Config {
            bucket: name,
            history: 1,
            storage: stream::StorageType::File,
            num_replicas: options.replicas,
            ..Default::default()
        };
        let conversations = records::bucket(&js, bucket(format!("{prefix}-conversations"))).await?;
        let shares = records::bucket(&js, bucket(format!("{prefix}-shares"))).await?;
        let status = records::bucket(&js, bucket(format!("{prefix}-status"))).await?;
        // Created with the TTL asked for, or updated to it, so every replica agrees.
        let lease_name = format!("{prefix}-lease");
        let lease_bucket = jetstream::new(lease_client)
            .create_or_update_key_value(kv::Config {
                max_age: options.lease_ttl,
                ..bucket(lease_name.clone())
            })
            .await
            .map_err(|e| backend(&format!("cannot open the bucket {lease_name}"), e))?;
        let owners = owners::Owners::start(lease_bucket.clone(), holder_name(), options.lease_ttl);
        Ok(NatsStore {
            owners,
            reconnected,
            js,
            log,
            log_name,
            subject_prefix: format!("{prefix}.log."),
            conversations,
            shares,
            status,
            heads: Mutex::new(HashMap::new()),
            max_payload,
        })
    }

    /// The connection, for requests between replicas.
    pub fn client(&self) -> async_nats::Client {
        self.js.client()
    }

    /// Requests for a conversation's owner are sent to this plus its id.
    pub fn requests_prefix(&self) -> String {
        let prefix = self.subject_prefix.trim_end_matches(".log.");
        format!("{prefix}.requests.")
    }

    /// The validity of this process's ownership of `conversation`, checked now.
    fn validity(&self, conversation: &str) -> Result<Arc<validity::Validity>> {
        let validity = self.owners.validity(conversation).ok_or_else(|| {
            StoreError::Conflict(format!(
                "this replica does not own conversation {conversation}"
            ))
        })?;
        validity.check()?;
        Ok(validity)
    }

    fn subject(&self, conversation: &str) -> Result<String> {
        if !valid_token(conversation) {
            return Err(StoreError::Backend(format!(
                "the conversation id {conversation:?} cannot be a NATS subject"
            )));
        }
        Ok(format!("{}{conversation}", self.subject_prefix))
    }

    fn cached_head(&self, conversation: &str) -> Option<Head> {
        let heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        heads.get(conversation).copied()
    }

    fn remember_head(&self, conversation: &str, head: Option<Head>) {
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        match head {
            Some(head) => heads.insert(conversation.to_string(), head),
            None => heads.remove(conversation),
        };
    }

    /// The head as JetStream has it now (and remembered as such).
    async fn fresh_head(&self, conversation: &str) -> Result<Head> {
        let subject = self.subject(conversation)?;
        let head = log::read_head(&self.log, &subject).await?;
        self.remember_head(conversation, Some(head));
        Ok(head)
    }

    async fn head(&self, conversation: &str) -> Result<Head> {
        match self.cached_head(conversation) {
            Some(head) => Ok(head),
            None => self.fresh_head(conversation).await,
        }
    }
}

#[async_trait]
impl Store for NatsStore {
    async fn create_conversation(&self, record: &ConversationRecord) -> Result<()> {
        self.subject(&record.id)?;
        records::create_conversation(&self.conversations, record).await
    }

    async fn update_conversation(&self, record: &ConversationRecord) -> Result<()> {
        records::put_conversation(&self.conversations, record).await
    }

    async fn conversations(&self) -> Result<Vec<ConversationRecord>> {
        records::conversations(&self.conversations).await
    }

    async fn conversation(&self, id: &str) -> Result<Option<ConversationRecord>> {
        if !valid_token(id) {
            return Ok(None);
        }
        records::conversation(&self.conversations, id).await
    }

    async fn append(&self, conversation: &str, rows: Vec<AppendRow>) -> Result<()> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let validity = self.validity(conversation)?;
        let subject = self.subject(conversation)?;
        let head = self.head(conversation).await?;
        if first.idx != head.next_idx {
            // This replica's view is behind (or ahead of) the stream: nothing may
            // be written from it. Read the head again for whoever asks next.
            self.remember_head(conversation, None);
            return Err(StoreError::Conflict(format!(
                "conversation {conversation} is at index {}, not {}",
                head.next_idx, first.idx
            )));
        }
        let writer = log::Writer {
            js: &self.js,
            log: &self.log,
            subject: &subject,
            max_payload: self.max_payload,
            validity: &validity,
        };
        match writer.append(head, &rows).await {
            Ok(new_head) => {
                self.remember_head(conversation, Some(new_head));
                Ok(())
            }
            Err(err) => {
                self.remember_head(conversation, None);
                Err(err)
            }
        }
    }

    async fn read(
        &self,
        conversation: &str,
        from: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>> {
        let subject = self.subject(conversation)?;
        let head = self.head(conversation).await?;
        // The cached head may be behind what another replica appended.
        let head = if head.next_idx < end {
            self.fresh_head(conversation).await?
        } else {
            head
        };
        let end = end.min(head.next_idx);
        if from >= end || limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        log::read_range(
            &self.js,
            &self.log,
            &self.log_name,
            &subject,
            head,
            from..end,
            limit,
            |idx, _, json| {
                out.push(StoredMessage { idx, json });
                true
            },
        )
        .await?;
        Ok(out)
    }

    async fn message_count(&self, conversation: &str) -> Result<u64> {
        Ok(self.fresh_head(conversation).await?.next_idx)
    }

    async fn last_end_of_turn(&self, conversation: &str) -> Result<Option<u64>> {
        Ok(self.fresh_head(conversation).await?.last_eot)
    }

    async fn read_kinds_after(
        &self,
        conversation: &str,
        after: Option<u64>,
        kinds: &[MessageType],
    ) -> Result<Vec<StoredMessage>> {
        let subject = self.subject(conversation)?;
        let head = self.fresh_head(conversation).await?;
        let from = after.map_or(0, |a| a.saturating_add(1));
        if from >= head.next_idx {
            return Ok(Vec::new());
        }
        let wanted: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let mut out = Vec::new();
        log::read_range(
            &self.js,
            &self.log,
            &self.log_name,
            &subject,
            head,
            from..head.next_idx,
            usize::MAX,
            |idx, kind, json| {
                if wanted.contains(&kind) {
                    out.push(StoredMessage { idx, json });
                }
                true
            },
        )
        .await?;
        Ok(out)
    }

    async fn create_share(&self, record: &ShareRecord) -> Result<()> {
        records::create_share(&self.shares, record).await
    }

    async fn shares(&self) -> Result<Vec<ShareRecord>> {
        records::shares(&self.shares).await
    }

    async fn revoke_share(&self, id: &str) -> Result<bool> {
        records::revoke_share(&self.shares, id).await
    }

    fn shared_by_replicas(&self) -> bool {
        true
    }

    async fn publish_status(&self, conversation: &str, json: bytes::Bytes) -> Result<()> {
        // Only the owner tells the others what runs, and only while it owns it.
        self.validity(conversation)?;
        self.subject(conversation)?;
        self.status
            .put(conversation, json)
            .await
            .map(|_| ())
            .map_err(|e| backend("cannot publish a conversation's state", e))
    }

    async fn claim(&self, conversation: &str) -> Result<super::Claim> {
        self.subject(conversation)?;
        self.owners.claim(conversation).await
    }

    async fn release(&self, conversation: &str) {
        self.owners.release(conversation).await;
    }

    async fn release_all(&self) {
        self.owners.release_all().await;
    }

    fn ownership_lost(&self) -> Option<tokio_util::sync::CancellationToken> {
        Some(self.owners.lost())
    }

    async fn owner(&self, conversation: &str) -> Result<Option<String>> {
        self.subject(conversation)?;
        self.owners.owner(conversation).await
    }

    async fn follow(&self) -> Result<Option<tokio::sync::mpsc::Receiver<super::Followed>>> {
        let sources = follow::Sources {
            log: self.log.clone(),
            subject_prefix: self.subject_prefix.clone(),
            conversations: self.conversations.clone(),
            shares: self.shares.clone(),
            status: self.status.clone(),
            reconnected: self.reconnected.clone(),
        };
        follow::start(sources).await.map(Some)
    }
}
