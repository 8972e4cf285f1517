//! The few git operations restart needs, through the `git` command.

use std::path::Path;

use super::EngineError;
use super::conversation::Conversation;
use crate::changes::git::GitCommand;

pub struct Commit {
    pub sha: String,
    pub subject: String,
}

impl Commit {
    pub fn short(&self) -> &str {
        &self.sha[..self.sha.len().min(12)]
    }
}

async fn git(cwd: &Path, args: &[&str]) -> Result<std::process::Output, EngineError> {
    GitCommand::new(cwd, args)
        .without_timeout()
        .output()
        .await
        .map_err(|e| EngineError::Failed(e.to_string()))
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A revision is a name, never an option.
fn check_revision(revision: &str) -> Result<(), EngineError> {
    if revision.starts_with('-') || revision.chars().any(char::is_control) {
        return Err(EngineError::Invalid(format!(
            "invalid revision {revision:?}"
        )));
    }
    Ok(())
}

async fn require_repository(cwd: &Path) -> Result<(), EngineError> {
    let inside = git(cwd, &["rev-parse", "--is-inside-work-tree"]).await?;
    if !inside.status.success() || stdout(&inside) != "true" {
        return Err(EngineError::Conflict(format!(
            "{} is not a git repository",
            cwd.display()
        )));
    }
    Ok(())
}

/// Resolves `revision` to a commit of the repository at `cwd`.
pub async fn resolve(cwd: &Path, revision: &str) -> Result<Commit, EngineError> {
    check_revision(revision)?;
    require_repository(cwd).await?;
    let spec = format!("{revision}^{{commit}}");
    let out = git(
        cwd,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )
    .await?;
    if !out.status.success() {
        return Err(EngineError::Invalid(format!(
            "unknown revision {revision:?}"
        )));
    }
    let sha = stdout(&out);
    let subject = stdout(&git(cwd, &["log", "-1", "--format=%s", &sha]).await?);
    Ok(Commit { sha, subject })
}

/// Like `resolve`, and also requires a clean working tree (a checkout must not lose work).
pub async fn resolve_clean(cwd: &Path, revision: &str) -> Result<Commit, EngineError> {
    let commit = resolve(cwd, revision).await?;
    let status = git(cwd, &["status", "--porcelain", "--untracked-files=no"]).await?;
    if !status.status.success() {
        return Err(EngineError::Conflict(
            "cannot read the working tree's status".into(),
        ));
    }
    if !stdout(&status).is_empty() {
        return Err(EngineError::Conflict(format!(
            "the working tree in {} has uncommitted changes; commit or stash them first",
            cwd.display()
        )));
    }
    Ok(commit)
}

pub async fn checkout(cwd: &Path, sha: &str) -> Result<(), EngineError> {
    let out = git(cwd, &["checkout", "--quiet", "--detach", sha]).await?;
    if !out.status.success() {
        return Err(EngineError::Conflict(format!(
            "git checkout failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The commit's subject and body, for the restart dialog.
pub async fn describe(cwd: &Path, revision: &str) -> Result<(Commit, String), EngineError> {
    let commit = resolve(cwd, revision).await?;
    let out = git(cwd, &["log", "-1", "--format=%B", &commit.sha]).await?;
    Ok((commit, stdout(&out)))
}

impl Conversation {
    /// A commit's full sha and message, for the restart dialog.
    pub async fn describe_revision(&self, revision: &str) -> Result<(String, String), EngineError> {
        let (commit, description) = describe(&self.cwd(), revision).await?;
        Ok((commit.sha, description))
    }
}
