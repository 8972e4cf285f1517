//! The SQLite statements for share links (the `shares` table), kept apart from the
//! message log's.

use rusqlite::{Connection, params};

use super::ShareRecord;

pub(super) fn insert(c: &mut Connection, r: &ShareRecord) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO shares (id, conversation_id, secret_sha256, created_at, expires_at, revoked)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            r.id,
            r.conversation_id,
            r.secret_sha256,
            r.created_at,
            r.expires_at,
            r.revoked
        ],
    )
    .map(|_| ())
}

pub(super) fn all(c: &Connection) -> rusqlite::Result<Vec<ShareRecord>> {
    let mut stmt = c.prepare(
        "SELECT id, conversation_id, secret_sha256, created_at, expires_at, revoked
         FROM shares ORDER BY created_at",
    )?;
    stmt.query_map([], |row| {
        Ok(ShareRecord {
            id: row.get(0)?,
            conversation_id: row.get(1)?,
            secret_sha256: row.get(2)?,
            created_at: row.get(3)?,
            expires_at: row.get(4)?,
            revoked: row.get(5)?,
        })
    })?
    .collect()
}

pub(super) fn revoke(c: &mut Connection, id: &str) -> rusqlite::Result<bool> {
    c.execute("UPDATE shares SET revoked = 1 WHERE id = ?1", params![id])
        .map(|n| n > 0)
}
