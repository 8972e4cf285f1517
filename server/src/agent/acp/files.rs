//! `fs/read_text_file` and `fs/write_text_file`, confined to the conversation's
//! directory: paths are resolved (symlinks included) before they are checked, and
//! writes replace the file atomically.

use std::path::{Component, Path, PathBuf};

/// Resolves `path` (relative to `root`, or absolute) and refuses anything that
/// ends up outside `root`, through `..` or a symlink. Works for files that do not
/// exist yet: their nearest existing ancestor is what gets resolved.
pub fn confine(root: &Path, path: &Path) -> Result<PathBuf, String> {
    let root = root
        .canonicalize()
        .map_err(|e| format!("the conversation's directory is not usable: {e}"))?;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    };
    // Split off the part that does not exist yet; it may not climb out with `..`.
    let mut existing = joined.as_path();
    let mut missing = Vec::new();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            break;
        };
        missing.push(name.to_os_string());
        existing = parent;
    }
    let mut resolved = existing
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
    for name in missing.iter().rev() {
        if Path::new(name)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(format!(
                "{} leaves the conversation's directory",
                path.display()
            ));
        }
        resolved.push(name);
    }
    if !resolved.starts_with(&root) {
        return Err(format!(
            "{} is outside the conversation's directory {}",
            path.display(),
            root.display()
        ));
    }
    Ok(resolved)
}

/// Reads a text file, optionally from 1-based `line`, at most `limit` lines.
pub async fn read(
    root: &Path,
    path: &Path,
    line: Option<u32>,
    limit: Option<u32>,
) -> Result<String, String> {
    let resolved = confine(root, path)?;
    let text = tokio::fs::read_to_string(&resolved)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if line.is_none() && limit.is_none() {
        return Ok(text);
    }
    let skip = line.map_or(0, |l| l.saturating_sub(1) as usize);
    let take = limit.map_or(usize::MAX, |l| l as usize);
    Ok(text.split_inclusive('\n').skip(skip).take(take).collect())
}

/// Writes `content` to the file atomically (a temporary file, then a rename).
/// Returns the resolved path and what the file held before (`None`: it is new).
pub async fn write(
    root: &Path,
    path: &Path,
    content: &str,
) -> Result<(PathBuf, Option<String>), String> {
    let resolved = confine(root, path)?;
    let before = match tokio::fs::read_to_string(&resolved).await {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        // Binary or unreadable: the diff shows it as replaced.
        Err(_) => Some(String::new()),
    };
    let parent = resolved
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(".{name}.tether-{}", uuid::Uuid::new_v4().simple()));
    let written = async {
        tokio::fs::write(&temp, content).await?;
        if let Ok(meta) = tokio::fs::metadata(&resolved).await {
            // Keep the file's mode (an executable script stays executable).
            tokio::fs::set_permissions(&temp, meta.permissions()).await?;
        }
        tokio::fs::rename(&temp, &resolved).await
    }
    .await;
    if let Err(e) = written {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    Ok((resolved, before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_resolve_and_paths_outside_are_refused() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().join("work");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("secret"), "s").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).expect("symlink");
        let root = root.canonicalize().expect("canonical");
        assert_eq!(
            confine(&root, Path::new("sub/new.txt")),
            Ok(root.join("sub/new.txt"))
        );
        assert_eq!(
            confine(&root, Path::new("a/b/c.txt")),
            Ok(root.join("a/b/c.txt"))
        );
        assert_eq!(confine(&root, &root.join("x")), Ok(root.join("x")));
        for outside in [
            "../secret",
            "link",
            "sub/../../secret",
            "/etc/passwd",
            "nope/../../x",
        ] {
            assert!(
                confine(&root, Path::new(outside)).is_err(),
                "{outside} must be refused"
            );
        }
    }

    #[tokio::test]
    async fn writes_are_whole_and_report_what_was_there_before() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path().canonicalize().expect("canonical");
        let (path, before) = write(&root, Path::new("d/a.txt"), "one\n")
            .await
            .expect("write");
        assert_eq!(before, None);
        let (_, before) = write(&root, Path::new("d/a.txt"), "two\n")
            .await
            .expect("write");
        assert_eq!(before.as_deref(), Some("one\n"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
        let names: Vec<_> = std::fs::read_dir(root.join("d"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["a.txt"], "no temporary file is left behind");
        assert_eq!(
            read(&root, Path::new("d/a.txt"), Some(1), Some(1))
                .await
                .as_deref(),
            Ok("two\n")
        );
    }
}
