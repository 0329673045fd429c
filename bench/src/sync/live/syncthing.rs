//! Syncthing: two instances with separate homes, everything on 127.0.0.1 (GUI/API and sync
//! listeners on distinct ports), discovery, relays, NAT traversal and usage reporting off, the
//! two devices introduced to each other by static address, sharing one folder watched with the
//! smallest watcher delay (1 s). Idle is read from the REST API with each instance's API key.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::super::group::Group;
use super::super::http;

const FOLDER: &str = "bench";

struct Instance {
    name: &'static str,
    home: PathBuf,
    id: String,
    listen: u16,
    api: SocketAddr,
    key: String,
}

pub struct Pair {
    sides: [Instance; 2],
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run syncthing: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `count` distinct free ports on 127.0.0.1 (held open together so they differ).
fn free_ports(count: usize) -> Result<Vec<u16>, String> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}")))
        .collect::<Result<_, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string()))
        .collect()
}

/// Keys and certificate from `syncthing generate`, then the device ID they give.
fn generate(name: &'static str, home: PathBuf, listen: u16, api: u16) -> Result<Instance, String> {
    run(Command::new("syncthing")
        .args(["generate", "--no-default-folder", "--home"])
        .arg(&home))?;
    let id = run(Command::new("syncthing")
        .args(["serve", "--device-id", "--home"])
        .arg(&home))?;
    if id.len() < 50 {
        return Err(format!("syncthing printed no device ID for {name}: {id:?}"));
    }
    Ok(Instance {
        name,
        home,
        id,
        listen,
        api: SocketAddr::from(([127, 0, 0, 1], api)),
        key: format!("berth-bench-{name}-{}", std::process::id()),
    })
}

fn config(me: &Instance, path: &Path, sides: &[Instance; 2]) -> String {
    let devices: String = sides
        .iter()
        .map(|d| {
            format!(
                "    <device id=\"{}\" name=\"{}\" compression=\"metadata\" introducer=\"false\">\n        \
                 <address>tcp://127.0.0.1:{}</address>\n    </device>\n",
                d.id, d.name, d.listen
            )
        })
        .collect();
    let members: String = sides
        .iter()
        .map(|d| format!("        <device id=\"{}\"></device>\n", d.id))
        .collect();
    format!(
        r#"<configuration version="36">
    <folder id="{FOLDER}" label="{FOLDER}" path="{path}" type="sendreceive" rescanIntervalS="86400" fsWatcherEnabled="true" fsWatcherDelayS="1" ignorePerms="false" autoNormalize="true">
{members}        <minDiskFree unit="%">0</minDiskFree>
        <markerName>.stfolder</markerName>
    </folder>
{devices}    <gui enabled="true" tls="false">
        <address>{api}</address>
        <apikey>{key}</apikey>
    </gui>
    <options>
        <listenAddress>tcp://127.0.0.1:{listen}</listenAddress>
        <globalAnnounceEnabled>false</globalAnnounceEnabled>
        <localAnnounceEnabled>false</localAnnounceEnabled>
        <relaysEnabled>false</relaysEnabled>
        <natEnabled>false</natEnabled>
        <urAccepted>-1</urAccepted>
        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
        <startBrowser>false</startBrowser>
        <crashReportingEnabled>false</crashReportingEnabled>
        <announceLANAddresses>false</announceLANAddresses>
        <setLowPriority>false</setLowPriority>
        <minHomeDiskFree unit="%">0</minHomeDiskFree>
    </options>
</configuration>
"#,
        path = path.display(),
        api = me.api,
        key = me.key,
        listen = me.listen,
    )
}

pub fn start(work: &Path, alpha: &Path, beta: &Path) -> Result<(Vec<Group>, Pair), String> {
    let ports = free_ports(4)?;
    let sides = [
        generate("alpha", work.join("syncthing-alpha"), ports[0], ports[1])?,
        generate("beta", work.join("syncthing-beta"), ports[2], ports[3])?,
    ];
    let mut groups = Vec::new();
    for (side, root) in sides.iter().zip([alpha, beta]) {
        let marker = root.join(".stfolder");
        std::fs::create_dir_all(&marker).map_err(|e| format!("{}: {e}", marker.display()))?;
        let file = side.home.join("config.xml");
        std::fs::write(&file, config(side, root, &sides))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let mut cmd = Command::new("syncthing");
        cmd.args([
            "serve",
            "--no-browser",
            "--no-restart",
            "--no-upgrade",
            "--home",
        ])
        .arg(&side.home)
        .env("STNODEFAULTFOLDER", "1")
        .env("STNOUPGRADE", "1");
        let log = work.join(format!("syncthing-{}.log", side.name));
        groups.push(Group::spawn(&format!("syncthing ({})", side.name), cmd, &log, false)?.0);
    }
    Ok((groups, Pair { sides }))
}

impl Instance {
    fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        http::get_json(self.api, path, &self.key)
    }

    fn connected_to(&self, other: &Instance) -> bool {
        self.get("/rest/system/connections")
            .is_ok_and(|v| v["connections"][&other.id]["connected"] == true)
    }

    /// `None` when idle with nothing left to pull; otherwise what it is doing.
    fn busy(&self) -> Result<Option<String>, String> {
        let s = self.get(&format!("/rest/db/status?folder={FOLDER}"))?;
        let state = s["state"].as_str().unwrap_or("?");
        let need = s["needTotalItems"].as_u64().unwrap_or(u64::MAX);
        if state == "idle" && need == 0 {
            Ok(None)
        } else {
            Ok(Some(format!(
                "{}: state {state}, {need} items needed",
                self.name
            )))
        }
    }
}

fn poll(
    deadline: Instant,
    what: &str,
    mut step: impl FnMut() -> Result<Option<String>, String>,
) -> Result<(), String> {
    loop {
        let last = match step() {
            Ok(None) => return Ok(()),
            Ok(Some(why)) => why,
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!("Syncthing {what} in time: {last}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Pair {
    /// Both APIs answer and the two devices are connected.
    pub fn wait_connected(&self, deadline: Instant) -> Result<(), String> {
        let [a, b] = &self.sides;
        poll(deadline, "devices did not connect", || {
            if a.connected_to(b) && b.connected_to(a) {
                Ok(None)
            } else {
                Ok(Some("not connected yet".into()))
            }
        })
    }

    /// Both folders idle with nothing left to pull.
    pub fn wait_idle(&self, deadline: Instant) -> Result<(), String> {
        let [a, b] = &self.sides;
        poll(deadline, "folders did not become idle", || {
            Ok(a.busy()?.or(b.busy()?))
        })
    }
}
