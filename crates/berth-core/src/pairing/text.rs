//! Wording the messages of blockers, notices and states share.

/// `berth/<agent>`.
pub fn agent_branch(agent: &str) -> String {
    format!("berth/{agent}")
}

pub(super) fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
