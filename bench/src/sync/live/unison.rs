//! Unison: `-repeat watch` with the crates.io `unison-fsmonitor` on `PATH`, and one `-batch` run
//! for the first copy. Each run gets its own `HOME` and `UNISON` directory, so no archive is
//! shared between runs. Over ssh BETA is `ssh://127.0.0.1:PORT//BETA`, the client gets the
//! benchmark's configuration (`-sshargs -F …`), and the server (`-servercmd`) the same `PATH`
//! (for `unison-fsmonitor`) and an archive directory of its own in the run's.

use std::path::Path;
use std::process::Command;

use super::super::Env;
use super::super::group::Group;

fn command(env: &Env, work: &Path, alpha: &Path, beta: &Path) -> Result<Command, String> {
    let home = work.join("unison-home");
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let mut cmd = Command::new("unison");
    cmd.env("PATH", &env.path)
        .env("HOME", &home)
        .env("UNISON", home.join(".unison"))
        .arg(alpha);
    match &env.ssh {
        Some(ssh) => {
            let server = work.join("unison-server");
            std::fs::create_dir_all(&server).map_err(|e| format!("{}: {e}", server.display()))?;
            cmd.arg(format!("ssh://127.0.0.1:{}/{}", ssh.port, beta.display()))
                .arg("-sshargs")
                .arg(format!("-F {}", ssh.config.display()))
                .arg("-servercmd")
                .arg(format!(
                    "env PATH={} UNISON={} unison",
                    env.path.to_string_lossy(),
                    server.display()
                ))
        }
        None => cmd.arg(beta),
    };
    cmd.args([
        "-batch",
        "-auto",
        "-times",
        "-confirmbigdel=false",
        "-ui",
        "text",
    ]);
    Ok(cmd)
}

/// `unison ALPHA BETA -repeat watch -batch -auto -times -prefer ALPHA -confirmbigdel=false`.
pub fn start(env: &Env, work: &Path, alpha: &Path, beta: &Path) -> Result<Group, String> {
    let mut cmd = command(env, work, alpha, beta)?;
    cmd.args(["-repeat", "watch", "-prefer"]).arg(alpha);
    Group::spawn("unison -repeat watch", cmd, &work.join("unison.log"), false).map(|(g, _)| g)
}

/// One batch run into an empty directory.
pub fn once_command(env: &Env, work: &Path, src: &Path, dst: &Path) -> Result<Command, String> {
    command(env, work, src, dst)
}
