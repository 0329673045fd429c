//! The tools compared: berth and its peers, and what each one is measured on.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Berth,
    Unison,
    Syncthing,
    Cp,
    Rsync,
}

impl Tool {
    pub const ALL: [Tool; 5] = [
        Tool::Berth,
        Tool::Unison,
        Tool::Syncthing,
        Tool::Cp,
        Tool::Rsync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Berth => "berth",
            Tool::Unison => "unison",
            Tool::Syncthing => "syncthing",
            Tool::Cp => "cp",
            Tool::Rsync => "rsync",
        }
    }

    /// How the tool is shown in the report.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Berth => "berth",
            Tool::Unison => "Unison",
            Tool::Syncthing => "Syncthing",
            Tool::Cp => "`cp -a`",
            Tool::Rsync => "`rsync -a`",
        }
    }

    /// Keeps two directories in sync continuously (edit latency, rewrite, idle).
    pub fn is_live(self) -> bool {
        matches!(self, Tool::Berth | Tool::Unison | Tool::Syncthing)
    }

    /// Takes part in the first copy into an empty directory.
    pub fn copies(self) -> bool {
        !matches!(self, Tool::Syncthing)
    }

    pub fn parse_list(list: &str) -> Result<Vec<Tool>, String> {
        let mut tools = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let tool = Tool::ALL
                .into_iter()
                .find(|t| t.name() == name)
                .ok_or_else(|| {
                    format!("unknown tool {name:?} (known: berth, unison, syncthing, cp, rsync)")
                })?;
            if !tools.contains(&tool) {
                tools.push(tool);
            }
        }
        if tools.is_empty() {
            return Err("--tools names no tool".into());
        }
        // Report order is fixed, whatever order they were given in.
        tools.sort_by_key(|t| Tool::ALL.iter().position(|a| a == t));
        Ok(tools)
    }
}
