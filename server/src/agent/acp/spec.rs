//! Which ACP agents a server offers: presets for the agents we know (offered when
//! their command is on `PATH`), `--agent NAME=COMMAND LINE`, and `agents.toml` in
//! the data directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How to start one ACP agent.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSpec {
    pub name: String,
    pub description: String,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Set in the agent's environment (after the scrub).
    pub env: Vec<(String, String)>,
    /// Variables the agent keeps even when `--env-deny` names them (its API key).
    pub pass_env: Vec<String>,
    /// The session mode set right after `session/new`: one where the agent asks
    /// before it runs commands or edits files.
    pub mode: Option<String>,
}

struct Preset {
    name: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    description: &'static str,
    pass_env: &'static [&'static str],
    mode: Option<&'static str>,
}

/// The agents known to speak ACP, as their packages install them.
const PRESETS: &[Preset] = &[
    Preset {
        name: "claude",
        program: "claude-code-acp",
        args: &[],
        description: "Claude Code, through Zed's ACP adapter",
        pass_env: &[
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_BASE_URL",
            "CLAUDE_CODE_EXECUTABLE",
        ],
        mode: Some("default"),
    },
    Preset {
        name: "codex",
        program: "codex-acp",
        args: &[],
        description: "OpenAI Codex, through Zed's ACP adapter",
        pass_env: &["OPENAI_API_KEY", "CODEX_API_KEY", "CODEX_HOME"],
        mode: Some("read-only"),
    },
    Preset {
        name: "gemini",
        program: "gemini",
        args: &["--experimental-acp"],
        description: "Google's Gemini CLI in ACP mode",
        pass_env: &["GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"],
        mode: None,
    },
    Preset {
        name: "opencode",
        program: "opencode",
        args: &["acp"],
        description: "opencode in ACP mode",
        pass_env: &["OPENCODE_CONFIG"],
        mode: None,
    },
];

impl AgentSpec {
    /// A spec from `NAME=COMMAND LINE`. A preset's name keeps the preset's
    /// environment rules and mode with the new command line.
    pub fn parse_flag(flag: &str) -> Result<Self, String> {
        let (name, line) = flag
            .split_once('=')
            .ok_or_else(|| format!("--agent {flag:?}: expected NAME=COMMAND LINE"))?;
        let name = name.trim();
        valid_name(name)?;
        let argv = shell_words::split(line)
            .map_err(|e| format!("--agent {name}: cannot split the command line: {e}"))?;
        if argv.is_empty() {
            return Err(format!("--agent {name}: the command line is empty"));
        }
        let mut spec = preset(name).unwrap_or_else(|| AgentSpec {
            name: name.to_string(),
            description: format!("ACP agent `{}`", argv.join(" ")),
            argv: Vec::new(),
            env: Vec::new(),
            pass_env: Vec::new(),
            mode: None,
        });
        spec.argv = argv;
        Ok(spec)
    }

    /// Why it cannot start here, if it cannot: its program is missing.
    pub fn problem(&self) -> Option<String> {
        let program = self.argv.first()?;
        find_program(program).is_none().then(|| {
            format!("`{program}` was not found (install it or give its path with --agent)")
        })
    }
}

fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 40
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "agent name {name:?}: use 1 to 40 letters, digits, `-` or `_`"
        ));
    }
    Ok(())
}

fn preset(name: &str) -> Option<AgentSpec> {
    let p = PRESETS.iter().find(|p| p.name == name)?;
    let mut env = Vec::new();
    // Claude Code refuses to run as root unless told it is sandboxed.
    if p.name == "claude" && nix::unistd::geteuid().is_root() {
        env.push(("IS_SANDBOX".to_string(), "1".to_string()));
    }
    Some(AgentSpec {
        name: p.name.to_string(),
        description: p.description.to_string(),
        argv: std::iter::once(p.program)
            .chain(p.args.iter().copied())
            .map(str::to_string)
            .collect(),
        env,
        pass_env: p.pass_env.iter().map(|s| s.to_string()).collect(),
        mode: p.mode.map(str::to_string),
    })
}

/// `program` as it would run: a path, or found on `PATH`.
fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return runnable(&path).then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| runnable(p))
}

/// `agents.toml`: `[agents.NAME]` with `command`, and optionally `description`,
/// `env`, `pass_env`, `mode`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    agents: BTreeMap<String, FileAgent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAgent {
    command: String,
    description: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    pass_env: Vec<String>,
    mode: Option<String>,
}

/// Every ACP agent to offer: presets found on `PATH`, then `agents.toml` (if
/// `file` exists), then the `--agent` flags, each later one replacing an earlier
/// one of the same name.
pub fn configured(flags: &[String], file: &Path) -> Result<Vec<AgentSpec>, String> {
    let mut specs: BTreeMap<String, AgentSpec> = PRESETS
        .iter()
        .filter_map(|p| preset(p.name))
        .filter(|spec| spec.problem().is_none())
        .map(|spec| (spec.name.clone(), spec))
        .collect();
    if file.exists() {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let parsed: File = toml::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        for (name, agent) in parsed.agents {
            let mut spec = AgentSpec::parse_flag(&format!("{name}={}", agent.command))
                .map_err(|e| format!("{}: {e}", file.display()))?;
            if let Some(description) = agent.description {
                spec.description = description;
            }
            spec.env.extend(agent.env);
            spec.pass_env.extend(agent.pass_env);
            if agent.mode.is_some() {
                spec.mode = agent.mode;
            }
            specs.insert(name, spec);
        }
    }
    for flag in flags.iter().filter(|f| !f.trim().is_empty()) {
        let spec = AgentSpec::parse_flag(flag)?;
        specs.insert(spec.name.clone(), spec);
    }
    Ok(specs.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_names_a_command_line_and_keeps_a_presets_rules() {
        let spec =
            AgentSpec::parse_flag("claude=node '/opt/my agent/index.js' --x").expect("parse");
        assert_eq!(spec.argv, ["node", "/opt/my agent/index.js", "--x"]);
        assert_eq!(spec.mode.as_deref(), Some("default"));
        assert!(spec.pass_env.contains(&"ANTHROPIC_API_KEY".to_string()));
        let custom = AgentSpec::parse_flag("mine=/bin/true").expect("parse");
        assert_eq!(custom.mode, None);
        assert_eq!(custom.problem(), None);
        for bad in ["noequals", "=cmd", "bad name=cmd", "x=", "x='unclosed"] {
            assert!(AgentSpec::parse_flag(bad).is_err(), "{bad}");
        }
        assert!(
            AgentSpec::parse_flag("gone=/no/such/program")
                .expect("parse")
                .problem()
                .is_some()
        );
    }

    #[test]
    fn the_toml_file_adds_agents_and_flags_win() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("agents.toml");
        std::fs::write(
            &file,
            "[agents.fake]\ncommand = \"/bin/cat --flag\"\nmode = \"ask\"\nenv = { A = \"1\" }\n",
        )
        .expect("write");
        let specs = configured(&["other=/bin/true".into()], &file).expect("configured");
        let fake = specs.iter().find(|s| s.name == "fake").expect("fake");
        assert_eq!(fake.argv, ["/bin/cat", "--flag"]);
        assert_eq!(fake.mode.as_deref(), Some("ask"));
        assert_eq!(fake.env, [("A".to_string(), "1".to_string())]);
        assert!(specs.iter().any(|s| s.name == "other"));
        std::fs::write(&file, "[agents.fake]\ncommand = 3\n").expect("write");
        assert!(
            configured(&[], &file).is_err(),
            "a broken file is an error, not ignored"
        );
    }
}
