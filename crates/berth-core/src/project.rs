//! `berth.toml`: the agents and services a repository declares, parsed strictly.
//!
//! ```toml
//! [agent.fixer]
//! command = "claude --dangerously-skip-permissions"
//! restart = "on-failure"
//!
//! [service.db]
//! command = "postgres -D .data/pg -k /tmp"
//! ready = { tcp = "127.0.0.1:5432" }
//!
//! [service.web]
//! command = "npm run dev"
//! ready = { http = "http://127.0.0.1:3000/health", timeout = "60s" }
//! depends_on = ["db"]
//! ```
//!
//! Every table is `[agent.NAME]` or `[service.NAME]` with the keys of [`ProcessSpec`]; probes
//! (`ready`, `liveness`) use the form documented on [`ProbeSpec`]. `depends_on` is either a list
//! of names (each with the condition `ready`) or a table `{ db = "ready", migrate = "completed" }`.
//!
//! Parsing is strict: an unknown key, a value of the wrong type, a missing `command`, an invalid
//! name, a name used twice, an unknown dependency or any invalid value is an error, and every
//! [`ProjectError`] names the key and the (1-based) line. The line comes from the span
//! information of the `toml` crate: the span of a deserialization error, or the span of the
//! offending key or value kept with [`toml::Spanned`] for the checks done after deserializing.
//! When several checks fail, the one on the earliest line is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::command::{self, CommandError};
use crate::duration;
use crate::names;
use crate::probe::ProbeSpec;
use crate::restart::RestartPolicy;

/// The stop signal unless configured.
pub const DEFAULT_STOP_SIGNAL: &str = "SIGTERM";
/// How long a stopping process may take before it is killed, unless configured.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// The signals `stop_signal` accepts (also without the `SIG` prefix, in any case).
pub const STOP_SIGNALS: [&str; 7] = [
    "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGKILL",
];

/// A parsed and validated `berth.toml`. Names are unique across agents and services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectFile {
    pub agents: BTreeMap<String, ProcessSpec>,
    pub services: BTreeMap<String, ProcessSpec>,
}

impl ProjectFile {
    /// The agent or service with this name.
    pub fn get(&self, name: &str) -> Option<&ProcessSpec> {
        self.agents.get(name).or_else(|| self.services.get(name))
    }

    /// Every process: the agents, then the services, each sorted by name.
    pub fn all(&self) -> impl Iterator<Item = &ProcessSpec> {
        self.agents.values().chain(self.services.values())
    }
}

/// Whether a process is an agent (works in its own workspace) or a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Agent,
    Service,
}

impl Kind {
    /// The table name in `berth.toml`: `agent` or `service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Service => "service",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[agent.NAME]` or `[service.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    pub kind: Kind,
    pub name: String,
    /// Run by a shell at the edge; never empty.
    pub command: String,
    /// Relative to the repository root (no absolute path, no `..`).
    pub cwd: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub restart: RestartPolicy,
    /// `None`: ready as soon as it started.
    pub ready: Option<ProbeSpec>,
    /// Restarts the process when it fails.
    pub liveness: Option<ProbeSpec>,
    /// Normalised: one of [`STOP_SIGNALS`].
    pub stop_signal: String,
    pub stop_grace: Duration,
    /// Sorted by name.
    pub depends_on: Vec<Dependency>,
    /// Agents only: the ref the workspace starts from.
    pub base: Option<String>,
    /// Runs under a pseudo-terminal its keeper owns (`tty = true`).
    pub tty: bool,
    /// Lines of scrollback its keeper keeps (`scrollback = N`, terminal processes only; absent:
    /// `terminal::DEFAULT_SCROLLBACK`).
    pub scrollback: Option<u32>,
    /// Agents only: the turn command run once per inbox message (`turn = "..."`).
    pub turn: Option<String>,
    /// How long a turn may run (`turn_timeout = "10m"`; absent: `inbox::DEFAULT_TURN_TIMEOUT`).
    pub turn_timeout: Option<Duration>,
}

/// `depends_on` entry: start this process only once `name` reached `condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    pub condition: Condition,
}

/// What a dependency must have reached before its dependent starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// It was started.
    Started,
    /// Its readiness probe passed (or it started, without a probe).
    #[default]
    Ready,
    /// It exited 0 (e.g. a migration job).
    Completed,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "started",
            Condition::Ready => "ready",
            Condition::Completed => "completed",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        match s {
            "started" => Some(Condition::Started),
            "ready" => Some(Condition::Ready),
            "completed" => Some(Condition::Completed),
            _ => None,
        }
    }
}

/// Why `berth.toml` was rejected. Every variant carries the 1-based `line`; `table` is the dotted
/// path of the enclosing table (`service.web`, empty for the top level).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectError {
    /// Not valid TOML.
    #[error("berth.toml line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("berth.toml line {line}: unknown key {key:?} {}; expected one of {expected}", place(.table))]
    UnknownKey {
        line: usize,
        key: String,
        table: String,
        expected: String,
    },
    #[error("berth.toml line {line}: missing key {key:?} {}", place(.table))]
    MissingKey {
        line: usize,
        key: String,
        table: String,
    },
    #[error("berth.toml line {line}: wrong type for {key:?} {}: {message}", place(.table))]
    WrongType {
        line: usize,
        key: String,
        table: String,
        message: String,
    },
    #[error("berth.toml line {line}: invalid {key:?} {}: {message}", place(.table))]
    InvalidValue {
        line: usize,
        key: String,
        table: String,
        message: String,
    },
    /// The line of the table header.
    #[error(
        "berth.toml line {line}: invalid {kind} name {name:?}: {reason}; use 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or digit"
    )]
    InvalidName {
        line: usize,
        kind: Kind,
        name: String,
        reason: &'static str,
    },
    /// `line` is the later of the two declarations, `other_line` the earlier.
    #[error(
        "berth.toml line {line}: {name:?} is declared both as an agent and as a service (also on line {other_line})"
    )]
    DuplicateName {
        line: usize,
        name: String,
        other_line: usize,
    },
    #[error(
        "berth.toml line {line}: [{kind}.{name}] depends on {dependency:?}, which is neither an agent nor a service"
    )]
    UnknownDependency {
        line: usize,
        kind: Kind,
        name: String,
        dependency: String,
    },
    #[error("berth.toml line {line}: [{kind}.{name}] depends on itself")]
    SelfDependency {
        line: usize,
        kind: Kind,
        name: String,
    },
    #[error(
        "berth.toml line {line}: unknown key \"base\" in [service.{name}]: only agents have a base ref"
    )]
    ServiceBase { line: usize, name: String },
}

impl ProjectError {
    /// The 1-based line the error is about.
    pub fn line(&self) -> usize {
        match self {
            ProjectError::Syntax { line, .. }
            | ProjectError::UnknownKey { line, .. }
            | ProjectError::MissingKey { line, .. }
            | ProjectError::WrongType { line, .. }
            | ProjectError::InvalidValue { line, .. }
            | ProjectError::InvalidName { line, .. }
            | ProjectError::DuplicateName { line, .. }
            | ProjectError::UnknownDependency { line, .. }
            | ProjectError::SelfDependency { line, .. }
            | ProjectError::ServiceBase { line, .. } => *line,
        }
    }
}

fn place(table: &str) -> String {
    if table.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in [{table}]")
    }
}

/// A key as written in a table header: bare when possible, quoted otherwise.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

fn dotted(path: &[String]) -> String {
    path.iter()
        .map(|k| toml_key(k))
        .collect::<Vec<_>>()
        .join(".")
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

fn line_of(text: &str, offset: usize) -> usize {
    line_col(text, offset).0
}

// ---------------------------------------------------------------------------------------------
// The raw form, as deserialized.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    agent: BTreeMap<Spanned<String>, Spanned<RawProcess>>,
    #[serde(default)]
    service: BTreeMap<Spanned<String>, Spanned<RawProcess>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    command: Spanned<String>,
    #[serde(default)]
    cwd: Option<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    restart: Option<Spanned<String>>,
    #[serde(default)]
    ready: Option<ProbeSpec>,
    #[serde(default)]
    liveness: Option<ProbeSpec>,
    #[serde(default)]
    stop_signal: Option<Spanned<String>>,
    #[serde(default)]
    stop_grace: Option<Spanned<String>>,
    #[serde(default)]
    depends_on: RawDepends,
    #[serde(default)]
    base: Option<Spanned<String>>,
    #[serde(default)]
    tty: bool,
    #[serde(default)]
    scrollback: Option<Spanned<i64>>,
    #[serde(default)]
    turn: Option<Spanned<String>>,
    #[serde(default)]
    turn_timeout: Option<Spanned<String>>,
}

/// `depends_on`: names with their (optional) condition, from either form.
#[derive(Default)]
struct RawDepends(Vec<(Spanned<String>, Option<Spanned<String>>)>);

impl<'de> Deserialize<'de> for RawDepends {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DependsVisitor;
        impl<'de> Visitor<'de> for DependsVisitor {
            type Value = RawDepends;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a list of names or a table of name = \"started\" | \"ready\" | \"completed\"",
                )
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawDepends, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = seq.next_element::<Spanned<String>>()? {
                    out.push((name, None));
                }
                Ok(RawDepends(out))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDepends, A::Error> {
                let mut out = Vec::new();
                while let Some((name, condition)) =
                    map.next_entry::<Spanned<String>, Spanned<String>>()?
                {
                    out.push((name, Some(condition)));
                }
                Ok(RawDepends(out))
            }
        }
        deserializer.deserialize_any(DependsVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Deserialization errors: find the key they are about.

/// Where an error offset falls in the document.
struct Location {
    /// The enclosing table.
    table: Vec<String>,
    /// The key (or the table's own name when `on_table`).
    key: String,
    /// The offset is the span of a table itself (its header, or an inline table's braces).
    on_table: bool,
}

const MAX_LOCATE_DEPTH: usize = 32;

fn locate(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> Option<Location> {
    if path.len() > MAX_LOCATE_DEPTH {
        return None;
    }
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if key.span().contains(&offset) {
            return Some(Location {
                table: path.clone(),
                key: name,
                on_table: false,
            });
        }
        match value.get_ref() {
            DeValue::Table(inner) => {
                path.push(name.clone());
                let found = locate(inner, offset, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
                if value.span().contains(&offset) {
                    return Some(Location {
                        table: path.clone(),
                        key: name,
                        on_table: true,
                    });
                }
            }
            DeValue::Array(items) => {
                if value.span().contains(&offset) {
                    return Some(Location {
                        table: path.clone(),
                        key: name,
                        on_table: false,
                    });
                }
                for item in items {
                    if let DeValue::Table(inner) = item.get_ref() {
                        path.push(name.clone());
                        let found = locate(inner, offset, path);
                        path.pop();
                        if found.is_some() {
                            return found;
                        }
                    }
                }
            }
            _ => {
                if value.span().contains(&offset) {
                    return Some(Location {
                        table: path.clone(),
                        key: name,
                        on_table: false,
                    });
                }
            }
        }
    }
    None
}

fn syntax_error(text: &str, err: &toml::de::Error) -> ProjectError {
    let (line, column) = line_col(text, err.span().map_or(0, |s| s.start));
    ProjectError::Syntax {
        line,
        column,
        message: err.message().trim().to_string(),
    }
}

/// Text between the first pair of backticks.
fn quoted(s: &str) -> String {
    s.split('`').nth(1).unwrap_or("").to_string()
}

fn classify(text: &str, doc: &DeTable<'_>, err: &toml::de::Error) -> ProjectError {
    let offset = err.span().map_or(0, |s| s.start);
    let line = line_of(text, offset);
    let message = err
        .message()
        .trim()
        .replace("struct RawProcess", "a table")
        .replace("struct RawProbe", "a probe table")
        .replace("expected a map", "expected a table")
        .replace("expected i64", "expected an integer");
    let location = locate(doc, offset, &mut Vec::new());
    let (table, key) = match &location {
        Some(l) => (dotted(&l.table), l.key.clone()),
        None => (String::new(), String::new()),
    };
    if message.starts_with("unknown field `") {
        let expected = match message.split_once(", expected ") {
            Some((_, list)) => {
                let list = list.strip_prefix("one of ").unwrap_or(list);
                list.replace('`', "").replace(" or ", ", ")
            }
            None => "no keys".to_string(),
        };
        return ProjectError::UnknownKey {
            line,
            key: quoted(&message),
            table,
            expected,
        };
    }
    if message.starts_with("missing field `") {
        // The span is the table missing the key.
        let table = match &location {
            Some(l) if l.on_table => {
                let mut path = l.table.clone();
                path.push(l.key.clone());
                dotted(&path)
            }
            _ => table,
        };
        return ProjectError::MissingKey {
            line,
            key: quoted(&message),
            table,
        };
    }
    if location.is_none() {
        return syntax_error(text, err);
    }
    if ["invalid type", "invalid value", "invalid length"]
        .iter()
        .any(|p| message.starts_with(p))
    {
        return ProjectError::WrongType {
            line,
            key,
            table,
            message,
        };
    }
    ProjectError::InvalidValue {
        line,
        key,
        table,
        message,
    }
}

// ---------------------------------------------------------------------------------------------
// Validation after deserializing.

fn normalize_signal(s: &str) -> Option<&'static str> {
    let upper = s.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    STOP_SIGNALS
        .iter()
        .copied()
        .find(|sig| sig.get(3..) == Some(bare))
}

fn check_cwd(cwd: &str) -> Result<PathBuf, &'static str> {
    if cwd.is_empty() {
        return Err("it is empty; leave cwd out to use the repository root");
    }
    if cwd.contains('\0') {
        return Err("it contains a NUL byte");
    }
    let path = Path::new(cwd);
    if path.is_absolute() || cwd.starts_with('/') {
        return Err("it must be relative to the repository root, not absolute");
    }
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err("it must stay inside the repository: '..' is not allowed");
    }
    Ok(path.to_path_buf())
}

struct Checker<'t> {
    text: &'t str,
    errors: Vec<ProjectError>,
}

impl Checker<'_> {
    fn line<T>(&self, s: &Spanned<T>) -> usize {
        line_of(self.text, s.span().start)
    }

    fn invalid<T>(&mut self, at: &Spanned<T>, key: &str, table: &str, message: impl fmt::Display) {
        let line = self.line(at);
        self.errors.push(ProjectError::InvalidValue {
            line,
            key: key.to_string(),
            table: table.to_string(),
            message: message.to_string(),
        });
    }

    fn process(&mut self, kind: Kind, name: &Spanned<String>, raw: RawProcess) -> ProcessSpec {
        let header = self.line(name);
        let table = format!("{}.{}", kind.as_str(), toml_key(name.get_ref()));
        if let Err(e) = names::validate(name.get_ref()) {
            self.errors.push(ProjectError::InvalidName {
                line: header,
                kind,
                name: name.get_ref().clone(),
                reason: e.reason,
            });
        }
        if let Err(e) = command::check(raw.command.get_ref()) {
            self.invalid(&raw.command, "command", &table, e);
        }
        let cwd = raw
            .cwd
            .as_ref()
            .and_then(|cwd| match check_cwd(cwd.get_ref()) {
                Ok(path) => Some(path),
                Err(reason) => {
                    self.invalid(
                        cwd,
                        "cwd",
                        &table,
                        format_args!("{:?}: {reason}", cwd.get_ref()),
                    );
                    None
                }
            });
        let env_table = format!("{table}.env");
        let mut env = BTreeMap::new();
        for (key, value) in raw.env {
            let k = key.get_ref();
            match command::check_env(k, value.get_ref()) {
                Err(e @ CommandError::EnvValue(_)) => self.invalid(&value, k, &env_table, e),
                Err(e) => self.invalid(&key, k, &env_table, e),
                Ok(()) => {}
            }
            env.insert(key.into_inner(), value.into_inner());
        }
        let restart = match &raw.restart {
            None => RestartPolicy::default(),
            Some(r) => r.get_ref().parse().unwrap_or_else(|e| {
                self.invalid(r, "restart", &table, e);
                RestartPolicy::default()
            }),
        };
        let stop_signal = match &raw.stop_signal {
            None => DEFAULT_STOP_SIGNAL,
            Some(s) => normalize_signal(s.get_ref()).unwrap_or_else(|| {
                let message = format!("{:?}: use one of {}", s.get_ref(), STOP_SIGNALS.join(", "));
                self.invalid(s, "stop_signal", &table, message);
                DEFAULT_STOP_SIGNAL
            }),
        };
        let stop_grace = match &raw.stop_grace {
            None => DEFAULT_STOP_GRACE,
            Some(g) => duration::parse(g.get_ref()).unwrap_or_else(|e| {
                self.invalid(g, "stop_grace", &table, e);
                DEFAULT_STOP_GRACE
            }),
        };
        let scrollback = raw.scrollback.as_ref().and_then(|s| {
            let n = *s.get_ref();
            let checked = u32::try_from(n)
                .map_err(|_| format!("{n}: a number of lines, 0 or more"))
                .and_then(|n| crate::terminal::check_scrollback(n).map_err(|e| e.to_string()))
                .and_then(|n| match raw.tty {
                    true => Ok(n),
                    false => Err("only a process with `tty = true` has scrollback".to_string()),
                });
            checked
                .map_err(|message| self.invalid(s, "scrollback", &table, message))
                .ok()
        });
        let turn = raw.turn.as_ref().and_then(|t| {
            let checked = command::check(t.get_ref())
                .map_err(|e| e.to_string())
                .and_then(|()| match (kind, raw.tty) {
                    (Kind::Service, _) => Err("only an agent has a turn command".to_string()),
                    (Kind::Agent, true) => Err(
                        "a terminal agent (`tty = true`) is sent messages by typing; leave out `turn`"
                            .to_string(),
                    ),
                    (Kind::Agent, false) => Ok(t.get_ref().clone()),
                });
            checked
                .map_err(|message| self.invalid(t, "turn", &table, message))
                .ok()
        });
        let turn_timeout = raw.turn_timeout.as_ref().and_then(|t| {
            let checked = duration::parse(t.get_ref())
                .map_err(|e| e.to_string())
                .and_then(|d| match raw.turn {
                    Some(_) => Ok(d),
                    None => Err("only an agent with a `turn` has a turn timeout".to_string()),
                });
            checked
                .map_err(|message| self.invalid(t, "turn_timeout", &table, message))
                .ok()
        });
        let deps_table = format!("{table}.depends_on");
        let mut depends_on: Vec<Dependency> = Vec::new();
        let mut seen = BTreeSet::new();
        for (dep, condition) in &raw.depends_on.0 {
            let condition = match condition {
                None => Condition::Ready,
                Some(c) => Condition::from_name(c.get_ref()).unwrap_or_else(|| {
                    let message = format!(
                        "condition {:?}: use started, ready or completed",
                        c.get_ref()
                    );
                    self.invalid(c, dep.get_ref(), &deps_table, message);
                    Condition::Ready
                }),
            };
            if dep.get_ref() == name.get_ref() {
                let line = self.line(dep);
                self.errors.push(ProjectError::SelfDependency {
                    line,
                    kind,
                    name: name.get_ref().clone(),
                });
            } else if !seen.insert(dep.get_ref().clone()) {
                self.invalid(
                    dep,
                    "depends_on",
                    &table,
                    format_args!("{:?} is listed twice", dep.get_ref()),
                );
            }
            depends_on.push(Dependency {
                name: dep.get_ref().clone(),
                condition,
            });
        }
        depends_on.sort_by(|a, b| a.name.cmp(&b.name));
        depends_on.dedup_by(|a, b| a.name == b.name);
        let base = match (kind, raw.base) {
            (_, None) => None,
            (Kind::Service, Some(b)) => {
                let line = self.line(&b);
                self.errors.push(ProjectError::ServiceBase {
                    line,
                    name: name.get_ref().clone(),
                });
                None
            }
            (Kind::Agent, Some(b)) => {
                let r = b.get_ref();
                if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    self.invalid(
                        &b,
                        "base",
                        &table,
                        format_args!("{r:?}: a git ref without spaces"),
                    );
                }
                Some(b.into_inner())
            }
        };
        ProcessSpec {
            kind,
            name: name.get_ref().clone(),
            command: raw.command.into_inner(),
            cwd,
            env,
            restart,
            ready: raw.ready,
            liveness: raw.liveness,
            stop_signal: stop_signal.to_string(),
            stop_grace,
            depends_on,
            base,
            tty: raw.tty,
            scrollback,
            turn,
            turn_timeout,
        }
    }
}

/// Parses and validates a whole `berth.toml`.
pub fn parse(text: &str) -> Result<ProjectFile, ProjectError> {
    let doc = DeTable::parse(text).map_err(|e| syntax_error(text, &e))?;
    let raw: RawFile = toml::from_str(text).map_err(|e| classify(text, doc.get_ref(), &e))?;

    let mut checker = Checker {
        text,
        errors: Vec::new(),
    };
    // Where each name was first declared.
    let mut declared: BTreeMap<String, usize> = BTreeMap::new();
    // Every dependency edge, checked once all names are known.
    let mut edges: Vec<(Kind, String, Spanned<String>)> = Vec::new();
    let mut project = ProjectFile::default();
    for (kind, table) in [(Kind::Agent, raw.agent), (Kind::Service, raw.service)] {
        for (name, process) in table {
            let process = process.into_inner();
            for (dep, _) in &process.depends_on.0 {
                edges.push((kind, name.get_ref().clone(), dep.clone()));
            }
            let spec = checker.process(kind, &name, process);
            let line = checker.line(&name);
            if let Some(other_line) = declared.get(name.get_ref()) {
                checker.errors.push(ProjectError::DuplicateName {
                    line: line.max(*other_line),
                    name: name.get_ref().clone(),
                    other_line: line.min(*other_line),
                });
            } else {
                declared.insert(name.get_ref().clone(), line);
            }
            let map = match kind {
                Kind::Agent => &mut project.agents,
                Kind::Service => &mut project.services,
            };
            map.insert(name.into_inner(), spec);
        }
    }
    for (kind, name, dep) in edges {
        if *dep.get_ref() != name && !declared.contains_key(dep.get_ref()) {
            let line = checker.line(&dep);
            checker.errors.push(ProjectError::UnknownDependency {
                line,
                kind,
                name,
                dependency: dep.into_inner(),
            });
        }
    }
    match checker.errors.into_iter().min_by_key(ProjectError::line) {
        Some(err) => Err(err),
        None => Ok(project),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::probe::ProbeCheck;

    const SPEC_EXAMPLE: &str = r#"[agent.fixer]
command = "claude --dangerously-skip-permissions"
restart = "on-failure"

[service.db]
command = "postgres -D .data/pg -k /tmp"
ready = { tcp = "127.0.0.1:5432" }

[service.web]
command = "npm run dev"
ready = { http = "http://127.0.0.1:3000/health", timeout = "60s" }
depends_on = ["db"]
"#;

    fn base_spec(kind: Kind, name: &str, command: &str) -> ProcessSpec {
        ProcessSpec {
            kind,
            name: name.into(),
            command: command.into(),
            cwd: None,
            env: BTreeMap::new(),
            restart: RestartPolicy::No,
            ready: None,
            liveness: None,
            stop_signal: "SIGTERM".into(),
            stop_grace: Duration::from_secs(10),
            depends_on: vec![],
            base: None,
            tty: false,
            scrollback: None,
            turn: None,
            turn_timeout: None,
        }
    }

    fn err(text: &str) -> ProjectError {
        match parse(text) {
            Ok(p) => panic!("accepted: {p:?}"),
            Err(e) => e,
        }
    }

    fn dep(name: &str, condition: Condition) -> Dependency {
        Dependency {
            name: name.into(),
            condition,
        }
    }

    #[test]
    fn the_spec_example_parses_exactly() {
        let project = parse(SPEC_EXAMPLE).unwrap();
        let fixer = ProcessSpec {
            restart: RestartPolicy::OnFailure,
            ..base_spec(
                Kind::Agent,
                "fixer",
                "claude --dangerously-skip-permissions",
            )
        };
        let db = ProcessSpec {
            ready: Some(ProbeSpec::new(ProbeCheck::Tcp {
                address: "127.0.0.1:5432".into(),
            })),
            ..base_spec(Kind::Service, "db", "postgres -D .data/pg -k /tmp")
        };
        let web = ProcessSpec {
            ready: Some(ProbeSpec {
                deadline: Some(Duration::from_secs(60)),
                ..ProbeSpec::new(ProbeCheck::Http {
                    url: "http://127.0.0.1:3000/health".into(),
                })
            }),
            depends_on: vec![dep("db", Condition::Ready)],
            ..base_spec(Kind::Service, "web", "npm run dev")
        };
        let expected = ProjectFile {
            agents: BTreeMap::from([("fixer".to_string(), fixer.clone())]),
            services: BTreeMap::from([("db".to_string(), db.clone()), ("web".to_string(), web)]),
        };
        assert_eq!(project, expected);
        assert_eq!(project.get("fixer"), Some(&fixer));
        assert_eq!(project.get("db"), Some(&db));
        assert_eq!(project.get("nope"), None);
        let names: Vec<&str> = project.all().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["fixer", "db", "web"]);
    }

    #[test]
    fn an_empty_file_declares_nothing() {
        assert_eq!(parse(""), Ok(ProjectFile::default()));
        assert_eq!(parse("# just a comment\n"), Ok(ProjectFile::default()));
    }

    #[test]
    fn every_key_is_read() {
        let project = parse(
            r#"[agent.fixer]
command = "claude"
cwd = "packages/app"
env = { RUST_LOG = "debug", EMPTY = "" }
restart = "always"
ready = { notify = true, interval = "1s", attempt_timeout = "2s", timeout = "3m", threshold = 1 }
liveness = { exec = "curl -f localhost", threshold = 5 }
stop_signal = "int"
stop_grace = "250ms"
depends_on = { db = "started", migrate = "completed", cache = "ready" }
base = "origin/main"
tty = true

[service.db]
command = "postgres"
[service.cache]
command = "redis-server"
[service.migrate]
command = "migrate up"
"#,
        )
        .unwrap();
        let fixer = project.get("fixer").unwrap();
        assert_eq!(fixer.kind, Kind::Agent);
        assert_eq!(fixer.cwd, Some(PathBuf::from("packages/app")));
        assert_eq!(
            fixer.env,
            BTreeMap::from([
                ("RUST_LOG".into(), "debug".into()),
                ("EMPTY".into(), String::new())
            ])
        );
        assert_eq!(fixer.restart, RestartPolicy::Always);
        assert_eq!(
            fixer.ready,
            Some(ProbeSpec {
                check: ProbeCheck::Notify,
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(2),
                threshold: 1,
                deadline: Some(Duration::from_secs(180)),
            })
        );
        assert_eq!(
            fixer.liveness,
            Some(ProbeSpec {
                threshold: 5,
                ..ProbeSpec::new(ProbeCheck::Exec {
                    command: "curl -f localhost".into()
                })
            })
        );
        assert_eq!(fixer.stop_signal, "SIGINT");
        assert_eq!(fixer.stop_grace, Duration::from_millis(250));
        assert_eq!(
            fixer.depends_on,
            [
                dep("cache", Condition::Ready),
                dep("db", Condition::Started),
                dep("migrate", Condition::Completed)
            ]
        );
        assert_eq!(fixer.base.as_deref(), Some("origin/main"));
        assert!(fixer.tty);
        assert!(
            !project.get("db").unwrap().tty,
            "tty is off unless asked for"
        );
    }

    #[test]
    fn a_turn_is_for_agents_without_a_terminal() {
        let project = parse(
            "[agent.bot]\ncommand = \"sleep 1\"\nturn = \"cat >> seen\"\nturn_timeout = \"2m\"\n",
        )
        .unwrap();
        let bot = project.get("bot").unwrap();
        assert_eq!(bot.turn.as_deref(), Some("cat >> seen"));
        assert_eq!(bot.turn_timeout, Some(Duration::from_secs(120)));
        for (text, what) in [
            (
                "[agent.a]\ncommand = \"x\"\nturn = \"y\"\ntty = true\n",
                "is sent messages by typing",
            ),
            (
                "[service.a]\ncommand = \"x\"\nturn = \"y\"\n",
                "only an agent",
            ),
            (
                "[agent.a]\ncommand = \"x\"\nturn_timeout = \"1m\"\n",
                "only an agent with a `turn`",
            ),
            (
                "[agent.a]\ncommand = \"x\"\nturn = \"y\"\nturn_timeout = \"soon\"\n",
                "soon",
            ),
        ] {
            let e = err(text).to_string();
            assert!(e.contains(what), "{text}: {e}");
        }
    }

    #[test]
    fn tty_is_a_boolean_for_agents_and_services() {
        let p = parse("[service.shell]\ncommand = \"bash -i\"\ntty = true\n").unwrap();
        assert!(p.get("shell").unwrap().tty);
        let e = err("[agent.a]\ncommand = \"x\"\n\ntty = \"yes\"\n");
        assert!(
            matches!(e, ProjectError::WrongType { line: 4, ref key, .. } if key == "tty"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("berth.toml line 4: wrong type for \"tty\""),
            "{e}"
        );
    }

    #[test]
    fn scrollback_is_for_terminal_processes_and_bounded() {
        let p = parse("[agent.a]\ncommand = \"x\"\ntty = true\nscrollback = 500\n").unwrap();
        assert_eq!(p.get("a").unwrap().scrollback, Some(500));
        let p = parse("[agent.a]\ncommand = \"x\"\ntty = true\n").unwrap();
        assert_eq!(p.get("a").unwrap().scrollback, None, "the default");
        for (text, says) in [
            (
                "[agent.a]\ncommand = \"x\"\nscrollback = 500\n",
                "only a process with `tty = true`",
            ),
            (
                "[agent.a]\ncommand = \"x\"\ntty = true\nscrollback = 100001\n",
                "at most 100000",
            ),
            (
                "[agent.a]\ncommand = \"x\"\ntty = true\nscrollback = -1\n",
                "0 or more",
            ),
        ] {
            let e = err(text).to_string();
            assert!(e.contains("scrollback") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn both_depends_on_forms_are_accepted() {
        let text = |deps: &str| {
            format!(
                "[service.a]\ncommand = \"x\"\n[service.b]\ncommand = \"x\"\n[service.web]\ncommand = \"x\"\ndepends_on = {deps}\n"
            )
        };
        let list = parse(&text(r#"["b", "a"]"#)).unwrap();
        assert_eq!(
            list.get("web").unwrap().depends_on,
            [dep("a", Condition::Ready), dep("b", Condition::Ready)]
        );
        let table = parse(&text(r#"{ b = "completed", a = "started" }"#)).unwrap();
        assert_eq!(
            table.get("web").unwrap().depends_on,
            [dep("a", Condition::Started), dep("b", Condition::Completed)]
        );
        assert!(
            parse(&text("[]"))
                .unwrap()
                .get("web")
                .unwrap()
                .depends_on
                .is_empty()
        );
        assert!(
            parse(&text("{}"))
                .unwrap()
                .get("web")
                .unwrap()
                .depends_on
                .is_empty()
        );
    }

    #[test]
    fn probes_may_also_be_written_as_tables() {
        let project = parse(
            r#"[service.db]
command = "postgres"

[service.db.ready]
tcp = "localhost:5432"
timeout = "2m"
"#,
        )
        .unwrap();
        let ready = project.get("db").unwrap().ready.clone().unwrap();
        assert_eq!(
            ready.check,
            ProbeCheck::Tcp {
                address: "localhost:5432".into()
            }
        );
        assert_eq!(ready.deadline, Some(Duration::from_secs(120)));
    }

    #[test]
    fn stop_signals_are_normalised() {
        for (written, normal) in [
            ("SIGTERM", "SIGTERM"),
            ("TERM", "SIGTERM"),
            ("sigint", "SIGINT"),
            ("hup", "SIGHUP"),
            ("QUIT", "SIGQUIT"),
            ("SIGUSR1", "SIGUSR1"),
            ("usr2", "SIGUSR2"),
            ("KILL", "SIGKILL"),
        ] {
            let project = parse(&format!(
                "[service.a]\ncommand = \"x\"\nstop_signal = \"{written}\"\n"
            ))
            .unwrap();
            assert_eq!(project.get("a").unwrap().stop_signal, normal, "{written}");
        }
    }

    #[test]
    fn unknown_keys_are_named_with_their_line_at_every_level() {
        // Top level.
        let e = err(r#"[agent.fixer]
command = "x"

[agents.other]
command = "y"
"#);
        assert_eq!(
            e,
            ProjectError::UnknownKey {
                line: 4,
                key: "agents".into(),
                table: String::new(),
                expected: "agent, service".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "berth.toml line 4: unknown key \"agents\" at the top level; expected one of agent, service"
        );

        // A process table: the spec's own example message.
        let e = err(r#"[service.db]
command = "postgres"

[service.web]
command = "npm run dev"
depends_on = ["db"]
comand = "npm start"
"#);
        assert_eq!(
            e.to_string(),
            "berth.toml line 7: unknown key \"comand\" in [service.web]; expected one of command, \
             cwd, env, restart, ready, liveness, stop_signal, stop_grace, depends_on, base, tty, \
             scrollback, turn, turn_timeout"
        );
        assert!(matches!(e, ProjectError::UnknownKey { line: 7, ref key, .. } if key == "comand"));

        // A probe, inline …
        let e = err(r#"[service.db]
command = "postgres"
ready = { tcp = "127.0.0.1:5432",
  intervall = "1s" }
"#);
        assert_eq!(
            e,
            ProjectError::UnknownKey {
                line: 4,
                key: "intervall".into(),
                table: "service.db.ready".into(),
                expected:
                    "exec, http, tcp, log, notify, interval, timeout, attempt_timeout, threshold"
                        .into()
            }
        );
        // … and as a table.
        let e = err(r#"[service.db]
command = "postgres"

[service.db.liveness]
tcp = "127.0.0.1:5432"
retries = 3
"#);
        assert!(
            matches!(e, ProjectError::UnknownKey { line: 6, ref key, ref table, .. }
                if key == "retries" && table == "service.db.liveness"),
            "{e:?}"
        );

        // Dotted keys point at the key's own line.
        let e = err("agent.a.command = \"x\"\nagent.a.comand = \"y\"\n");
        assert!(
            matches!(e, ProjectError::UnknownKey { line: 2, ref table, .. } if table == "agent.a"),
            "{e:?}"
        );
    }

    #[test]
    fn wrong_types_are_named_with_their_line() {
        let e = err(r#"[agent.fixer]
command = 5
"#);
        assert!(
            matches!(e, ProjectError::WrongType { line: 2, ref key, ref table, ref message }
                if key == "command" && table == "agent.fixer" && message.contains("expected a string")),
            "{e:?}"
        );

        let e = err(r#"[service.web]
command = "x"
env = { PORT = "3000",
        DEBUG = true }
"#);
        assert!(
            matches!(e, ProjectError::WrongType { line: 4, ref key, ref table, .. }
                if key == "DEBUG" && table == "service.web.env"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("berth.toml line 4: wrong type for \"DEBUG\" in [service.web.env]: ")
        );

        let e = err("[service.web]\ncommand = \"x\"\ndepends_on = \"db\"\n");
        assert!(
            matches!(e, ProjectError::WrongType { line: 3, ref key, .. } if key == "depends_on"),
            "{e:?}"
        );
        let e = err("[service.web]\ncommand = \"x\"\ndepends_on = { db = true }\n");
        assert!(
            matches!(e, ProjectError::WrongType { line: 3, ref key, .. } if key == "db"),
            "{e:?}"
        );
        let e = err("[service.web]\ncommand = \"x\"\nready = \"tcp:localhost:80\"\n");
        assert!(
            matches!(e, ProjectError::WrongType { line: 3, ref key, ref message, .. }
                if key == "ready" && message.contains("expected a probe table")),
            "{e:?}"
        );
        let e = err("\nservice = [1]\n");
        assert!(
            matches!(e, ProjectError::WrongType { line: 2, ref key, .. } if key == "service"),
            "{e:?}"
        );
        let e = err("[agent]\nfixer = \"claude\"\n");
        assert!(
            matches!(e, ProjectError::WrongType { line: 2, ref key, ref table, ref message }
                if key == "fixer" && table == "agent" && message.contains("expected a table")),
            "{e:?}"
        );
    }

    #[test]
    fn a_missing_command_is_reported_at_the_table_header() {
        let e = err(r#"[agent.fixer]
command = "x"

[service.web]
restart = "always"
"#);
        assert_eq!(
            e,
            ProjectError::MissingKey {
                line: 4,
                key: "command".into(),
                table: "service.web".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "berth.toml line 4: missing key \"command\" in [service.web]"
        );
        let e = err("[service.web]\ncommand = \"  \"\n");
        assert!(
            matches!(e, ProjectError::InvalidValue { line: 2, ref key, .. } if key == "command"),
            "{e:?}"
        );
    }

    #[test]
    fn invalid_names_are_reported_at_the_table_header() {
        let e = err(r#"[agent.ok]
command = "x"

[agent.Fixer]
command = "x"
"#);
        assert_eq!(
            e,
            ProjectError::InvalidName {
                line: 4,
                kind: Kind::Agent,
                name: "Fixer".into(),
                reason: "it must start with a lowercase letter or a digit"
            }
        );
        let e = err("[service.\"a b\"]\ncommand = \"x\"\n");
        assert!(
            matches!(
                e,
                ProjectError::InvalidName {
                    line: 1,
                    kind: Kind::Service,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("berth.toml line 1: invalid service name \"a b\""),
            "{e}"
        );
    }

    #[test]
    fn a_name_used_by_an_agent_and_a_service_is_rejected() {
        let e = err(r#"[service.db]
command = "postgres"

[agent.web]
command = "x"

[service.web]
command = "y"
"#);
        assert_eq!(
            e,
            ProjectError::DuplicateName {
                line: 7,
                name: "web".into(),
                other_line: 4
            }
        );
        assert_eq!(
            e.to_string(),
            "berth.toml line 7: \"web\" is declared both as an agent and as a service (also on line 4)"
        );
        // Whichever comes first in the file, the later declaration is reported.
        let e = err("[service.web]\ncommand = \"y\"\n[agent.web]\ncommand = \"x\"\n");
        assert_eq!(
            e,
            ProjectError::DuplicateName {
                line: 3,
                name: "web".into(),
                other_line: 1
            }
        );
    }

    #[test]
    fn unknown_and_self_dependencies_are_rejected() {
        let e = err(r#"[service.db]
command = "postgres"

[service.web]
command = "npm run dev"
depends_on = [
  "db",
  "cache",
]
"#);
        assert_eq!(
            e,
            ProjectError::UnknownDependency {
                line: 8,
                kind: Kind::Service,
                name: "web".into(),
                dependency: "cache".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "berth.toml line 8: [service.web] depends on \"cache\", which is neither an agent nor a service"
        );
        let e = err("[agent.a]\ncommand = \"x\"\ndepends_on = { ghost = \"ready\" }\n");
        assert!(
            matches!(e, ProjectError::UnknownDependency { line: 3, .. }),
            "{e:?}"
        );

        let e = err(r#"[service.web]
command = "npm run dev"
depends_on = ["web"]
"#);
        assert_eq!(
            e,
            ProjectError::SelfDependency {
                line: 3,
                kind: Kind::Service,
                name: "web".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "berth.toml line 3: [service.web] depends on itself"
        );
    }

    #[test]
    fn invalid_values_are_named_with_their_line() {
        let cases: &[(&str, usize, &str, &str)] = &[
            (
                "restart = \"sometimes\"",
                3,
                "restart",
                "invalid restart policy \"sometimes\"",
            ),
            (
                "stop_grace = \"soon\"",
                3,
                "stop_grace",
                "invalid duration \"soon\"",
            ),
            (
                "stop_signal = \"SIGSTOP\"",
                3,
                "stop_signal",
                "use one of SIGTERM, SIGINT",
            ),
            ("stop_signal = \"\"", 3, "stop_signal", "use one of"),
            ("cwd = \"/srv/app\"", 3, "cwd", "not absolute"),
            ("cwd = \"app/../../etc\"", 3, "cwd", "'..' is not allowed"),
            ("cwd = \"..\"", 3, "cwd", "'..' is not allowed"),
            ("cwd = \"\"", 3, "cwd", "it is empty"),
            ("env = { \"A=B\" = \"x\" }", 3, "A=B", "without '='"),
            (
                "depends_on = { db = \"healthy\" }",
                3,
                "db",
                "use started, ready or completed",
            ),
            (
                "depends_on = [\"db\", \"db\"]",
                3,
                "depends_on",
                "\"db\" is listed twice",
            ),
            (
                "ready = { tcp = \"db:5432\", timeout = \"forever\" }",
                3,
                "ready",
                "timeout: invalid duration",
            ),
            (
                "ready = { https = \"x\" }",
                3,
                "https",
                "expected one of exec",
            ),
            (
                "ready = { http = \"https://x/\" }",
                3,
                "ready",
                "https is not supported yet",
            ),
            ("ready = { tcp = \"db\" }", 3, "ready", "numeric port"),
            ("ready = { log = \"\" }", 3, "ready", "non-empty pattern"),
            (
                "ready = { exec = \"\" }",
                3,
                "ready",
                "the command is empty",
            ),
            (
                "ready = { tcp = \"db:1\", threshold = 0 }",
                3,
                "ready",
                "threshold must be between 1",
            ),
            (
                "ready = { tcp = \"db:1\", interval = \"0s\" }",
                3,
                "ready",
                "interval must be greater",
            ),
            (
                "liveness = { tcp = \"db:1\", http = \"http://a/\" }",
                3,
                "liveness",
                "exactly one of",
            ),
            ("liveness = {}", 3, "liveness", "exactly one of"),
        ];
        for (line_text, line, key, message) in cases {
            let text = format!(
                "[service.app]\ncommand = \"x\"\n{line_text}\n\n[service.db]\ncommand = \"y\"\n"
            );
            let e = err(&text);
            assert_eq!(e.line(), *line, "{line_text}: {e}");
            let shown = e.to_string();
            assert!(shown.contains(&format!("{key:?}")), "{line_text}: {shown}");
            assert!(shown.contains(message), "{line_text}: {shown}");
        }
        let e = err("[agent.a]\ncommand = \"echo a\\u0000b\"\n");
        assert_eq!(e.line(), 2, "{e}");
        assert!(e.to_string().contains("NUL byte"), "{e}");
        let e = err("[agent.a]\ncommand = \"x\"\nenv = { A = \"\\u0000\" }\n");
        assert!(e.to_string().contains("contains a NUL byte"), "{e}");
        let e = err("[service.db]\ncommand = \"x\"\n\nrestart = \"sometimes\"\n");
        assert_eq!(
            e,
            ProjectError::InvalidValue {
                line: 4,
                key: "restart".into(),
                table: "service.db".into(),
                message: "invalid restart policy \"sometimes\": use no, on-failure or always"
                    .into()
            }
        );
    }

    #[test]
    fn base_is_for_agents_only() {
        let e = err(r#"[agent.fixer]
command = "x"
base = "main"

[service.db]
command = "postgres"
base = "main"
"#);
        assert_eq!(
            e,
            ProjectError::ServiceBase {
                line: 7,
                name: "db".into()
            }
        );
        let e = err("[agent.fixer]\ncommand = \"x\"\nbase = \"\"\n");
        assert!(
            matches!(e, ProjectError::InvalidValue { line: 3, ref key, .. } if key == "base"),
            "{e:?}"
        );
    }

    #[test]
    fn the_earliest_problem_is_reported() {
        let e = err(r#"[service.b]
command = "x"
depends_on = ["ghost"]

[service.a]
command = "x"
restart = "sometimes"
"#);
        assert_eq!(e.line(), 3, "{e}");
    }

    #[test]
    fn invalid_toml_is_a_syntax_error_with_line_and_column() {
        let e = err("[agent.fixer]\ncommand = \"x\"\nrestart = on-failure\n");
        assert!(
            matches!(
                e,
                ProjectError::Syntax {
                    line: 3,
                    column: 11,
                    ..
                }
            ),
            "{e:?}"
        );
        let e = err("[agent.a]\ncommand = \"x\"\ncommand = \"y\"\n");
        assert!(matches!(e, ProjectError::Syntax { line: 3, .. }), "{e:?}");
        let e = err("[agent.a]\ncommand = \"x\"\n[agent.a]\n");
        assert!(matches!(e, ProjectError::Syntax { line: 3, .. }), "{e:?}");
        let e = err("é = [\n");
        assert!(matches!(e, ProjectError::Syntax { line: 1, .. }), "{e:?}");
    }

    #[test]
    fn line_col_counts_characters_and_tolerates_any_offset() {
        assert_eq!(line_col("ab\ncé\nd", 0), (1, 1));
        assert_eq!(line_col("ab\ncé\nd", 3), (2, 1));
        assert_eq!(line_col("ab\ncé\nd", 6), (2, 3));
        assert_eq!(line_col("ab\ncé\nd", 5), (2, 3), "mid-character");
        assert_eq!(line_col("ab\ncé\nd", 1000), (3, 2));
    }

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("[agent.a]\n".to_string()),
            Just("[service.b]\n".to_string()),
            Just("[service.b.ready]\n".to_string()),
            Just("command = \"x\"\n".to_string()),
            Just("depends_on = [\"a\", \"b\"]\n".to_string()),
            Just("depends_on = { a = \"completed\" }\n".to_string()),
            Just("ready = { tcp = \"h:1\" }\n".to_string()),
            Just("tcp = \"h:1\"\n".to_string()),
            Just("env = { A = \"1\" }\n".to_string()),
            Just("cwd = \"../x\"\n".to_string()),
            Just("base = \"main\"\n".to_string()),
            Just("stop_signal = \"kill\"\n".to_string()),
            "[a-z_=\\[\\]{}\". \n0-9]{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_text(text in ".*") {
            let _ = parse(&text);
        }

        #[test]
        fn parse_never_panics_on_near_valid_files(parts in proptest::collection::vec(fragment(), 0..12)) {
            let text = parts.concat();
            match parse(&text) {
                Ok(project) => {
                    for p in project.all() {
                        prop_assert!(names::validate(&p.name).is_ok());
                        for d in &p.depends_on {
                            prop_assert!(d.name != p.name && project.get(&d.name).is_some());
                        }
                    }
                }
                Err(e) => {
                    let lines = text.matches('\n').count() + 1;
                    prop_assert!(e.line() >= 1 && e.line() <= lines, "{e} in {text:?}");
                }
            }
        }
    }
}
