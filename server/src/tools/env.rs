//! Which of the server's environment variables tool processes must not inherit.

/// Names removed from every tool's environment.
#[derive(Clone, Debug, Default)]
pub struct EnvPolicy {
    remove: Vec<String>,
}

impl EnvPolicy {
    /// The variables of this server's environment that match a pattern (`NAME` or
    /// `PREFIX*`), read once: the server's environment does not change.
    pub fn from_patterns(patterns: &[String]) -> Self {
        let remove = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| {
                patterns.iter().any(|p| match p.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => name == p,
                })
            })
            .collect();
        EnvPolicy { remove }
    }

    pub fn removed(&self) -> &[String] {
        &self.remove
    }
}
