//! `ssh://[user@]host[:port]/dir`: a tree on another machine, reached with the system's ssh
//! client as it is (the user's `~/.ssh/config`, agent and known hosts). The client command is
//! `ssh`, or `BERTH_SSH` run by the shell with the arguments appended (as git does with
//! `GIT_SSH_COMMAND`); it always gets `-o BatchMode=yes`, so it never prompts — an unknown host
//! key is refused, never accepted. What runs there is a script for a POSIX `sh` (whatever the
//! login shell is), which starts or installs berth ([`super::install`]). A dir that begins with
//! `/~/` is relative to the home directory.

use std::process::Command;

use super::RemoteError;

/// A parsed `ssh://` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The directory on the host (relative: to the home directory).
    pub dir: String,
}

impl SshTarget {
    /// `Ok(None)`: not an `ssh://` URL at all.
    pub fn parse(url: &str) -> Result<Option<SshTarget>, RemoteError> {
        let Some(rest) = url.strip_prefix("ssh://") else {
            return Ok(None);
        };
        let bad = |why: &str| RemoteError::BadTarget(format!("{url}: {why}"));
        let (authority, path) = rest
            .find('/')
            .map(|i| rest.split_at(i))
            .ok_or_else(|| bad("no directory (ssh://host/dir)"))?;
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        // An IPv6 address is in brackets (`[::1]`, `[::1]:2222`), so its colons are not a port.
        let (host, port) = match hostport.strip_prefix('[') {
            Some(bracketed) => {
                let (h, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| bad("an IPv6 address needs its closing ]"))?;
                if h.is_empty() || !h.contains(':') {
                    return Err(bad("only an IPv6 address goes in brackets"));
                }
                match after {
                    "" => (h, None),
                    p => (h, Some(port_of(p.strip_prefix(':').unwrap_or(p), &bad)?)),
                }
            }
            None => match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(port_of(p, &bad)?)),
                None => (hostport, None),
            },
        };
        if host.is_empty()
            || host.starts_with('-')
            || host.contains(['[', ']'])
            || user.as_deref().is_some_and(str::is_empty)
        {
            return Err(bad("no host"));
        }
        let dir = match path.strip_prefix("/~") {
            Some("") => ".".to_string(),
            Some(rel) if rel.starts_with('/') => rel[1..].to_string(),
            _ => path.to_string(),
        };
        if dir.is_empty() || dir.contains('\0') {
            return Err(bad("no directory (ssh://host/dir)"));
        }
        Ok(Some(SshTarget {
            user,
            host: host.to_string(),
            port,
            dir,
        }))
    }

    /// The command that runs `script` with `sh` there, its standard input and output the
    /// stream.
    pub fn shell(&self, script: &str) -> Command {
        let mut command = match std::env::var("BERTH_SSH")
            .ok()
            .filter(|s| !s.trim().is_empty())
        {
            Some(ssh) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("{ssh} \"$@\""), "berth-ssh"]);
                c
            }
            None => Command::new("ssh"),
        };
        command.args(["-o", "BatchMode=yes"]);
        if let Some(port) = self.port {
            command.args(["-p", &port.to_string()]);
        }
        if let Some(user) = &self.user {
            command.args(["-l", user]);
        }
        // ssh hands the command to the login shell, which may not be a POSIX one.
        command.args(["--", &self.host, &format!("sh -c {}", quote(script))]);
        command
    }
}

/// A port number, or the error `bad` makes.
fn port_of(p: &str, bad: &dyn Fn(&str) -> RemoteError) -> Result<u16, RemoteError> {
    p.parse::<u16>()
        .map_err(|_| bad("the port is not a number"))
}

/// `s` quoted for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_and_without_user_and_port() {
        let t = SshTarget::parse("ssh://me@box.example:2222/srv/work")
            .unwrap()
            .unwrap();
        assert_eq!(
            t,
            SshTarget {
                user: Some("me".into()),
                host: "box.example".into(),
                port: Some(2222),
                dir: "/srv/work".into()
            }
        );
        let t = SshTarget::parse("ssh://box/~/src/x").unwrap().unwrap();
        assert_eq!((t.user, t.port, t.dir.as_str()), (None, None, "src/x"));
        assert!(SshTarget::parse("/local/dir").unwrap().is_none());
        // IPv6 addresses, in brackets, with and without a port.
        let t = SshTarget::parse("ssh://me@[::1]:2222/srv")
            .unwrap()
            .unwrap();
        assert_eq!(
            (t.user.as_deref(), t.host.as_str(), t.port, t.dir.as_str()),
            (Some("me"), "::1", Some(2222), "/srv")
        );
        let t = SshTarget::parse("ssh://[fe80::1]/~/w").unwrap().unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.dir.as_str()),
            ("fe80::1", None, "w")
        );
        for bad in [
            "ssh://box",
            "ssh://:22/x",
            "ssh://box:port/x",
            "ssh://-oProxy=x/d",
            "ssh://[::1/x",
            "ssh://[]/x",
            "ssh://[box]/x",
            "ssh://[::1]x/d",
            "ssh://[::1]:port/d",
        ] {
            assert!(SshTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_script_is_quoted_for_the_login_shell_there() {
        let t = SshTarget::parse("ssh://box/it's here").unwrap().unwrap();
        let c = t.shell("echo 'x'");
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"BatchMode=yes".to_string()), "{args:?}");
        assert_eq!(args.last().unwrap(), r"sh -c 'echo '\''x'\'''");
        assert_eq!(t.dir, "/it's here");
    }
}
