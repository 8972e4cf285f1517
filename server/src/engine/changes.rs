//! A conversation's view of what its turns changed in the work tree: recording a
//! turn's changes in the log, serving their diffs, and reverting a turn. The git
//! side lives in `crate::changes`.

use app::protocol::{Changes, ChangesDiff, Message, MessageType};

use super::EngineError;
use super::conversation::Conversation;
use crate::changes::{self, ChangesError, Repo, TurnEnd, TurnStart};

/// Messages read at once while looking for the latest `changes` message.
const SCAN_PAGE: usize = 1_000;

/// Which diff `GET changes` asks for.
#[derive(Clone, Copy, Debug)]
pub enum ChangesQuery {
    /// One turn's changes.
    Turn(u64),
    /// Everything from that turn's start to the end of the latest recorded turn.
    Since(u64),
}

impl From<ChangesError> for EngineError {
    fn from(err: ChangesError) -> Self {
        match err {
            ChangesError::Conflict(why) => EngineError::Conflict(why),
            ChangesError::TooLarge { .. } => EngineError::Conflict(err.to_string()),
            other => EngineError::Failed(other.to_string()),
        }
    }
}

impl Conversation {
    /// Snapshots the work tree as a turn starts.
    pub(super) async fn changes_begin(&self) -> TurnStart {
        changes::begin_turn(&self.cwd(), &self.id, self.shared.snapshot_limit).await
    }

    /// Snapshots it again as the turn ends and logs what changed, if anything.
    pub(super) async fn changes_end(&self, start: TurnStart) {
        let message = match changes::end_turn(start, &self.id, self.shared.snapshot_limit).await {
            TurnEnd::Nothing => return,
            TurnEnd::Note(note) => Message::new(MessageType::Notice, note),
            TurnEnd::Changes(changes) => changes_message(changes),
        };
        if let Err(err) = self.append_changes(message).await {
            tracing::error!(conversation = %self.id, %err, "cannot log the turn's changes");
        }
    }

    async fn append_changes(&self, message: Message) -> Result<u64, EngineError> {
        let is_changes = message.kind == MessageType::Changes;
        let idx = self.append(message).await?;
        if is_changes {
            self.runtime().latest_changes = Some(idx);
        }
        Ok(idx)
    }

    /// The diff of one turn, or the net diff since one.
    pub async fn changes_diff(&self, query: ChangesQuery) -> Result<ChangesDiff, EngineError> {
        let (from_idx, to_idx) = match query {
            ChangesQuery::Turn(idx) => (idx, idx),
            ChangesQuery::Since(idx) => (idx, self.latest_changes().await?.unwrap_or(idx)),
        };
        let from = self.recorded_changes(from_idx).await?;
        let to = if to_idx == from_idx {
            from.clone()
        } else {
            self.recorded_changes(to_idx).await?
        };
        let repo = self.repo_of(&from).await?;
        Ok(changes::diff_between(&repo.root, &from.before, &to.after, from_idx, to_idx).await?)
    }

    /// Restores the files the turn with `changes` message `idx` changed to how they
    /// were before it, and logs the revert as a `changes` message of its own.
    pub async fn revert(&self, idx: u64) -> Result<(u64, Changes), EngineError> {
        // A turn holds the tree from its first snapshot to its last: reverting under
        // it would mix the two.
        let _tree = self.tree.try_lock().map_err(|_| {
            EngineError::Conflict("a turn is running; stop it or wait for it to end".into())
        })?;
        let turn = self.recorded_changes(idx).await?;
        let repo = self.repo_of(&turn).await?;
        let reverted =
            changes::revert(&repo, &self.id, &turn, idx, self.shared.snapshot_limit).await?;
        let at = self
            .append_changes(changes_message(reverted.clone()))
            .await?;
        self.touch(|_| {}).await;
        Ok((at, reverted))
    }

    /// Drops the refs that keep this conversation's snapshots (on restart).
    pub(super) async fn forget_snapshots(&self) {
        self.runtime().latest_changes = None;
        let Ok(Some(repo)) = Repo::find(&self.cwd()).await else {
            return;
        };
        if let Err(err) = repo.forget(&self.id).await {
            tracing::warn!(conversation = %self.id, %err, "cannot remove the snapshots' refs");
        }
    }

    /// The `changes` message at `idx`, whose snapshots are still kept.
    async fn recorded_changes(&self, idx: u64) -> Result<Changes, EngineError> {
        let entry = self.log.read(idx, idx + 1, 1).await?;
        let changes = entry
            .first()
            .map(|e| e.message())
            .transpose()?
            .and_then(|m| m.changes)
            .ok_or_else(|| {
                EngineError::NotFound(format!("message {idx} is not a changes message"))
            })?;
        if idx < self.first_message_index() {
            return Err(EngineError::Gone(format!(
                "the snapshots of message {idx} were removed when the conversation restarted"
            )));
        }
        if !changes::is_commit_id(&changes.before) || !changes::is_commit_id(&changes.after) {
            return Err(EngineError::Failed(format!(
                "message {idx} names no snapshot"
            )));
        }
        Ok(changes)
    }

    async fn repo_of(&self, changes: &Changes) -> Result<Repo, EngineError> {
        let repo = Repo::find(std::path::Path::new(&changes.root))
            .await?
            .ok_or_else(|| {
                EngineError::Gone(format!("{} is no longer a git work tree", changes.root))
            })?;
        for commit in [&changes.before, &changes.after] {
            if !repo.has(commit).await? {
                return Err(EngineError::Gone(format!(
                    "snapshot {commit} is no longer in the repository"
                )));
            }
        }
        Ok(repo)
    }

    /// The index of the latest `changes` message since the last restart.
    async fn latest_changes(&self) -> Result<Option<u64>, EngineError> {
        if let Some(idx) = self.runtime().latest_changes {
            return Ok(Some(idx));
        }
        let mut cursor = self.first_message_index();
        let mut latest = None;
        loop {
            let page = self.log.read(cursor, u64::MAX, SCAN_PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            cursor = last.idx + 1;
            for entry in &page {
                // Cheap before parsing: most entries are output chunks.
                if entry.json().contains("\"type\":\"changes\"") {
                    latest = Some(entry.idx);
                }
            }
        }
        let mut rt = self.runtime();
        // A turn may have logged newer changes meanwhile.
        if rt
            .latest_changes
            .is_none_or(|known| latest.is_some_and(|l| l > known))
        {
            rt.latest_changes = latest;
        }
        Ok(rt.latest_changes)
    }
}

fn changes_message(changes: Changes) -> Message {
    let files = changes.files.len();
    let content = match changes.revert_of {
        Some(turn) => format!("Reverted the changes of message {turn}: {files} file(s)."),
        None => format!(
            "{files} file(s) changed, +{} -{}.",
            changes.added, changes.removed
        ),
    };
    let mut message = Message::new(MessageType::Changes, content);
    message.changes = Some(changes);
    message
}
