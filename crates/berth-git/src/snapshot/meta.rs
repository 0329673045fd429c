//! The self-describing commit message of a snapshot.
//!
//! ```text
//! berth snapshot: <message or reason>
//!
//! berth-snapshot-id: 20261123-013612-ab12
//! berth-branch: refs/heads/main          (or "(detached)")
//! berth-head: <oid>                      (or "(unborn)")
//! berth-time-ms: 1795397382762
//! berth-reason: <why it was taken>
//! berth-message: <the user's -m text>    (optional)
//! berth-pairing: <pairing id>            (optional)
//! berth-warning: <what was not captured exactly>   (zero or more)
//! ```
//!
//! Values are single lines (newlines in user text are replaced by spaces), so the database can
//! be lost and every snapshot still describes itself.

pub use berth_proto::SnapshotMeta;

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Renders the commit message.
pub fn render(m: &SnapshotMeta, warnings: &[String]) -> String {
    let title = m.message.as_deref().unwrap_or(&m.reason);
    let mut s = format!("berth snapshot: {}\n\n", one_line(title));
    s += &format!("berth-snapshot-id: {}\n", m.id);
    s += &format!(
        "berth-branch: {}\n",
        m.branch.as_deref().unwrap_or("(detached)")
    );
    s += &format!("berth-head: {}\n", m.head.as_deref().unwrap_or("(unborn)"));
    s += &format!("berth-time-ms: {}\n", m.time_ms);
    s += &format!("berth-reason: {}\n", one_line(&m.reason));
    if let Some(msg) = &m.message {
        s += &format!("berth-message: {}\n", one_line(msg));
    }
    if let Some(p) = &m.pairing {
        s += &format!("berth-pairing: {}\n", one_line(p));
    }
    for w in warnings {
        s += &format!("berth-warning: {}\n", one_line(w));
    }
    s
}

/// Parses a message body (everything after the commit headers); `None` if it is not a snapshot.
pub fn parse(text: &str) -> Option<(SnapshotMeta, Vec<String>)> {
    let mut id = None;
    let mut branch = None;
    let mut head = None;
    let mut time_ms = None;
    let mut reason = None;
    let mut message = None;
    let mut pairing = None;
    let mut warnings = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let value = value.to_string();
        match key {
            "berth-snapshot-id" => id = Some(value),
            "berth-branch" => branch = Some((value != "(detached)").then_some(value)),
            "berth-head" => head = Some((value != "(unborn)").then_some(value)),
            "berth-time-ms" => time_ms = value.parse().ok(),
            "berth-reason" => reason = Some(value),
            "berth-message" => message = Some(value),
            "berth-pairing" => pairing = Some(value),
            "berth-warning" => warnings.push(value),
            _ => {}
        }
    }
    let meta = SnapshotMeta {
        id: id?,
        branch: branch?,
        head: head?,
        time_ms: time_ms?,
        reason: reason.unwrap_or_default(),
        message,
        pairing,
    };
    Some((meta, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SnapshotMeta {
        SnapshotMeta {
            id: "20261123-013612-ab12".into(),
            branch: Some("refs/heads/main".into()),
            head: Some("a".repeat(40)),
            time_ms: 1_795_397_382_762,
            reason: "berth stash save".into(),
            message: Some("before\nthe demo".into()),
            pairing: None,
        }
    }

    #[test]
    fn round_trips_with_warnings() {
        let m = sample();
        let w = vec!["submodule lib has changes of its own".to_string()];
        let text = render(&m, &w);
        let (back, warnings) = parse(&text).unwrap();
        assert_eq!(back.message.as_deref(), Some("before the demo"));
        assert_eq!(
            SnapshotMeta {
                message: m.message.clone(),
                ..back.clone()
            },
            m
        );
        assert_eq!(warnings, w);
    }

    #[test]
    fn detached_and_unborn_round_trip() {
        let m = SnapshotMeta {
            branch: None,
            head: None,
            pairing: Some("p1".into()),
            ..sample()
        };
        assert_eq!(
            parse(&render(&m, &[])).unwrap().0,
            SnapshotMeta {
                message: Some("before the demo".into()),
                ..m
            }
        );
    }

    #[test]
    fn other_messages_are_not_snapshots() {
        assert_eq!(parse("WIP on main: fix"), None);
        assert_eq!(parse("berth-snapshot-id: x\n"), None);
        assert_eq!(parse(""), None);
    }
}
