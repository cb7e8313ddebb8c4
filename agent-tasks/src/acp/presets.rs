//! Presets for real coding agents: the argv and environment that keep each
//! one offline and non-interactive (a private home, telemetry and
//! auto-update off, npm told to stay offline, root allowed where the agent
//! checks) and point it at a model endpoint. [`AgentPreset`] owns that
//! knowledge; [`AcpTask::preset`](super::AcpTask::preset) applies it.
//! Each preset is tested against the pinned agent from the npm registry in
//! a network namespace with a scripted model server (`tests/acp_real.rs`);
//! `docs/agents.md` has the table.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A model endpoint a preset points its agent at: the base URL of the
/// model API the agent speaks (OpenAI chat completions for opencode,
/// Anthropic Messages for Claude Code), the model's name, and the key sent
/// with each request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelEndpoint {
    /// The API's base URL, as the agent's own setting takes it: with the
    /// `/v1` for opencode (`http://127.0.0.1:8080/v1`), without it for
    /// Claude Code (`http://127.0.0.1:8080`).
    pub base_url: String,
    /// The model's name, as the endpoint knows it.
    pub model: String,
    /// The API key the agent sends (any text for a local server).
    pub api_key: String,
}

impl ModelEndpoint {
    /// An endpoint at `base_url` serving `model`, with `api_key`.
    pub fn new(
        base_url: impl Into<String>,
        model: impl Into<String>,
        api_key: impl Into<String>,
    ) -> Self {
        ModelEndpoint {
            base_url: base_url.into(),
            model: model.into(),
            api_key: api_key.into(),
        }
    }
}

/// The agents a preset knows (more may come).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentKind {
    /// opencode (`opencode-ai` on npm), run as `opencode acp`.
    Opencode,
    /// Claude Code through Zed's adapter (`@zed-industries/claude-code-acp`
    /// on npm), run as `claude-code-acp`.
    ClaudeCode,
}

/// The settings one real agent needs to run as an unattended ACP agent:
/// the arguments after its program, and its environment. Build one with
/// [`AgentPreset::opencode`] or [`AgentPreset::claude_code`], optionally
/// add a [model endpoint](AgentPreset::model), then start the agent with
/// [`AcpTask::preset`](super::AcpTask::preset):
///
/// ```no_run
/// use agent_tasks::acp::{AcpTask, AgentPreset, ModelEndpoint, PermissionPolicy};
///
/// let preset = AgentPreset::opencode("/var/lib/host/agents/opencode-home")
///     .model(ModelEndpoint::new("http://127.0.0.1:8080/v1", "my-model", "unused"));
/// let task = AcpTask::preset(["opencode"], &preset, "make the failing test pass")
///     .cwd("/work/repo")
///     .permissions(PermissionPolicy::AllowAll);
/// ```
///
/// What each preset sets is in `docs/agents.md`; [`AgentPreset::args`] and
/// [`AgentPreset::env`] return it, for a host that starts the agent some
/// other way. The home folder is the agent's own (its config, caches,
/// sessions, logs): keep one per agent kind, not the user's. The agent
/// creates what it needs in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPreset {
    kind: AgentKind,
    home: PathBuf,
    model: Option<ModelEndpoint>,
}

impl AgentPreset {
    /// opencode (`opencode-ai`), tested with 1.18.33: `opencode acp` with
    /// its home under `home`; auto-update, default plugins, LSP downloads,
    /// the models.dev fetch and sharing off; npm offline (opencode runs an
    /// npm install of its plugin package at every start); shell commands,
    /// edits and web fetches ask the client's
    /// [permission policy](super::PermissionPolicy).
    pub fn opencode(home: impl Into<PathBuf>) -> Self {
        AgentPreset {
            kind: AgentKind::Opencode,
            home: home.into(),
            model: None,
        }
    }

    /// Claude Code through `@zed-industries/claude-code-acp`, tested with
    /// 0.16.2: its home and config under `home`; auto-update, telemetry,
    /// error reporting and other non-essential traffic off; npm offline;
    /// `IS_SANDBOX=1` (the adapter refuses to run as root without it).
    pub fn claude_code(home: impl Into<PathBuf>) -> Self {
        AgentPreset {
            kind: AgentKind::ClaudeCode,
            home: home.into(),
            model: None,
        }
    }

    /// The model endpoint the agent uses instead of its vendor's: for
    /// opencode a provider of its own config (`@ai-sdk/openai-compatible`,
    /// bundled with it) made the default model; for Claude Code
    /// `ANTHROPIC_BASE_URL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_MODEL` and
    /// `ANTHROPIC_SMALL_FAST_MODEL`.
    pub fn model(mut self, endpoint: ModelEndpoint) -> Self {
        self.model = Some(endpoint);
        self
    }

    /// Which agent this preset is for.
    pub fn kind(&self) -> AgentKind {
        self.kind
    }

    /// The agent's private home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The arguments that follow the agent's program (`acp` for opencode,
    /// none for Claude Code's adapter).
    pub fn args(&self) -> Vec<OsString> {
        match self.kind {
            AgentKind::Opencode => vec!["acp".into()],
            AgentKind::ClaudeCode => Vec::new(),
        }
    }

    /// The agent's environment: added to the host's (the agent still needs
    /// `PATH`), overriding what the host has under the same names.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let home = &self.home;
        let mut env: Vec<(OsString, OsString)> = vec![
            ("HOME".into(), home.into()),
            ("XDG_CONFIG_HOME".into(), home.join(".config").into()),
            ("XDG_DATA_HOME".into(), home.join(".local/share").into()),
            ("XDG_STATE_HOME".into(), home.join(".local/state").into()),
            ("XDG_CACHE_HOME".into(), home.join(".cache").into()),
            // npm (and what reads its config) answers from its cache only.
            ("npm_config_offline".into(), "true".into()),
            ("npm_config_update_notifier".into(), "false".into()),
        ];
        let mut set = |key: &str, value: &str| env.push((key.into(), value.into()));
        match self.kind {
            AgentKind::Opencode => {
                for key in [
                    "OPENCODE_DISABLE_AUTOUPDATE",
                    "OPENCODE_DISABLE_DEFAULT_PLUGINS",
                    "OPENCODE_DISABLE_LSP_DOWNLOAD",
                    "OPENCODE_DISABLE_MODELS_FETCH",
                    "OPENCODE_DISABLE_SHARE",
                ] {
                    set(key, "1");
                }
                set("OPENCODE_CONFIG_CONTENT", &self.opencode_config());
            }
            AgentKind::ClaudeCode => {
                for key in [
                    "IS_SANDBOX",
                    "DISABLE_AUTOUPDATER",
                    "DISABLE_TELEMETRY",
                    "DISABLE_ERROR_REPORTING",
                    "DISABLE_BUG_COMMAND",
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
                ] {
                    set(key, "1");
                }
                let config = home.join(".claude");
                env.push(("CLAUDE_CONFIG_DIR".into(), config.into()));
                if let Some(model) = &self.model {
                    let mut set = |key: &str, value: &str| env.push((key.into(), value.into()));
                    set("ANTHROPIC_BASE_URL", &model.base_url);
                    set("ANTHROPIC_API_KEY", &model.api_key);
                    set("ANTHROPIC_MODEL", &model.model);
                    set("ANTHROPIC_SMALL_FAST_MODEL", &model.model);
                }
            }
        }
        env
    }

    /// opencode's config (`OPENCODE_CONFIG_CONTENT`, read over its files).
    fn opencode_config(&self) -> String {
        let mut config = serde_json::json!({
            "autoupdate": false,
            "share": "disabled",
            "permission": {"bash": "ask", "edit": "ask", "webfetch": "ask"},
        });
        if let Some(model) = &self.model {
            config["model"] = format!("agent-tasks/{}", model.model).into();
            config["provider"] = serde_json::json!({
                "agent-tasks": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "agent-tasks preset endpoint",
                    "options": {"baseURL": model.base_url, "apiKey": model.api_key},
                    "models": {model.model.as_str(): {"name": model.model, "tool_call": true}},
                }
            });
        }
        config.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(preset: &AgentPreset, key: &str) -> Option<String> {
        preset
            .env()
            .into_iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }

    #[test]
    fn opencode_gets_a_private_home_offline_switches_and_its_provider() {
        let preset = AgentPreset::opencode("/h").model(ModelEndpoint::new(
            "http://127.0.0.1:9/v1",
            "m",
            "k",
        ));
        assert_eq!(preset.args(), vec![OsString::from("acp")]);
        assert_eq!(value(&preset, "HOME").as_deref(), Some("/h"));
        assert_eq!(
            value(&preset, "XDG_DATA_HOME").as_deref(),
            Some("/h/.local/share")
        );
        assert_eq!(
            value(&preset, "npm_config_offline").as_deref(),
            Some("true")
        );
        assert_eq!(
            value(&preset, "OPENCODE_DISABLE_AUTOUPDATE").as_deref(),
            Some("1")
        );
        let config: serde_json::Value =
            serde_json::from_str(&value(&preset, "OPENCODE_CONFIG_CONTENT").expect("config"))
                .expect("json");
        assert_eq!(config["model"], "agent-tasks/m");
        assert_eq!(
            config["provider"]["agent-tasks"]["options"]["baseURL"],
            "http://127.0.0.1:9/v1"
        );
        assert_eq!(config["permission"]["bash"], "ask");
    }

    #[test]
    fn claude_code_runs_as_root_offline_against_its_endpoint() {
        let preset = AgentPreset::claude_code("/h");
        assert!(preset.args().is_empty());
        assert_eq!(value(&preset, "IS_SANDBOX").as_deref(), Some("1"));
        assert_eq!(
            value(&preset, "CLAUDE_CONFIG_DIR").as_deref(),
            Some("/h/.claude")
        );
        assert_eq!(value(&preset, "ANTHROPIC_BASE_URL"), None);
        let preset = preset.model(ModelEndpoint::new("http://127.0.0.1:9", "m", "k"));
        assert_eq!(
            value(&preset, "ANTHROPIC_BASE_URL").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(value(&preset, "ANTHROPIC_MODEL").as_deref(), Some("m"));
    }
}
