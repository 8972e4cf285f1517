//! Conversation and share records as JSON values in JetStream key-value buckets.
//!
//! The buckets keep one revision per key: a record is small and only its latest
//! state matters. Revoking a share is a compare-and-set on the revision read, so two
//! replicas revoking at once both see it revoked and neither undoes the other.

use async_nats::jetstream::{self, kv};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::backend;
use crate::store::{ConversationRecord, Result, ShareRecord, StoreError};

/// Records read at once when listing a bucket.
const PARALLEL_GETS: usize = 32;

pub(super) async fn bucket(js: &jetstream::Context, config: kv::Config) -> Result<kv::Store> {
    let name = config.bucket.clone();
    match js.get_key_value(&name).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_key_value(config)
            .await
            .map_err(|e| backend(&format!("cannot open the bucket {name}"), e)),
    }
}

fn encode<T: Serialize>(value: &T) -> Result<bytes::Bytes> {
    serde_json::to_vec(value)
        .map(Into::into)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a record: {e}")))
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("the record {key} is not valid: {e}")))
}

/// Every record in the bucket, in no particular order.
async fn all<T: for<'de> Deserialize<'de>>(bucket: &kv::Store) -> Result<Vec<T>> {
    let keys: Vec<String> = bucket
        .keys()
        .await
        .map_err(|e| backend("cannot list records", e))?
        .try_collect()
        .await
        .map_err(|e| backend("cannot list records", e))?;
    let values: Vec<Option<(String, bytes::Bytes)>> = futures::stream::iter(keys)
        .map(|key| async move {
            let value = bucket
                .get(key.as_str())
                .await
                .map_err(|e| backend("cannot read a record", e))?;
            Ok::<_, StoreError>(value.map(|v| (key, v)))
        })
        .buffered(PARALLEL_GETS)
        .try_collect()
        .await?;
    values
        .into_iter()
        .flatten()
        .map(|(key, value)| decode(&key, &value))
        .collect()
}

pub(super) async fn create_conversation(bucket: &kv::Store, r: &ConversationRecord) -> Result<()> {
    bucket
        .create(&r.id, encode(r)?)
        .await
        .map(|_| ())
        .map_err(|e| backend(&format!("cannot create conversation {}", r.id), e))
}

pub(super) async fn put_conversation(bucket: &kv::Store, r: &ConversationRecord) -> Result<()> {
    bucket
        .put(&r.id, encode(r)?)
        .await
        .map(|_| ())
        .map_err(|e| backend(&format!("cannot update conversation {}", r.id), e))
}

pub(super) async fn conversations(bucket: &kv::Store) -> Result<Vec<ConversationRecord>> {
    let mut records: Vec<ConversationRecord> = all(bucket).await?;
    // The order SQLite lists them in, so the engine sees the same either way.
    records.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(records)
}

pub(super) async fn conversation(
    bucket: &kv::Store,
    id: &str,
) -> Result<Option<ConversationRecord>> {
    match bucket.get(id).await {
        Ok(Some(value)) => decode(id, &value).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(backend("cannot read a conversation", e)),
    }
}

pub(super) async fn create_share(bucket: &kv::Store, r: &ShareRecord) -> Result<()> {
    bucket
        .create(&r.id, encode(r)?)
        .await
        .map(|_| ())
        .map_err(|e| backend("cannot create a share", e))
}

pub(super) async fn shares(bucket: &kv::Store) -> Result<Vec<ShareRecord>> {
    let mut records: Vec<ShareRecord> = all(bucket).await?;
    records.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(records)
}

pub(super) async fn revoke_share(bucket: &kv::Store, id: &str) -> Result<bool> {
    // A few rounds at most: each lost race means another replica wrote the record.
    for _ in 0..8 {
        let Some(entry) = bucket
            .entry(id)
            .await
            .map_err(|e| backend("cannot read a share", e))?
        else {
            return Ok(false);
        };
        if entry.operation != kv::Operation::Put {
            return Ok(false);
        }
        let mut record: ShareRecord = decode(id, &entry.value)?;
        if record.revoked {
            return Ok(true);
        }
        record.revoked = true;
        match bucket.update(id, encode(&record)?, entry.revision).await {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
            Err(e) => return Err(backend("cannot revoke a share", e)),
        }
    }
    Err(StoreError::Backend(format!(
        "NATS: share {id} kept changing while being revoked"
    )))
}
