//! Bytes carried by ssh connections to the benchmark's server, from the kernel's own counters
//! of each TCP socket (`ss -tin`: `bytes_sent` and `bytes_received` of every established
//! connection whose far end is the server's port, read on the client's end). They count the
//! TCP payload — ssh's encrypted packets, padding and MACs included — but not TCP/IP headers.
//! Only one tool talks to the server at a time, so every such connection is the tool's.

use std::ops::Sub;
use std::process::{Command, Stdio};

/// Bytes so far on the client's ends: sent to the server (`up`) and received from it (`down`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bytes {
    pub up: u64,
    pub down: u64,
}

impl Sub for Bytes {
    type Output = Bytes;
    fn sub(self, before: Bytes) -> Bytes {
        Bytes {
            up: self.up.saturating_sub(before.up),
            down: self.down.saturating_sub(before.down),
        }
    }
}

/// Adds up the counters in `ss -tinH` output (each socket's details on a line of their own).
fn parse(ss: &str) -> Bytes {
    let mut b = Bytes::default();
    for field in ss.split_whitespace() {
        let counter = |name: &str| {
            field
                .strip_prefix(name)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        b.up += counter("bytes_sent:");
        b.down += counter("bytes_received:");
    }
    b
}

/// The counters of the connections to 127.0.0.1:`port` that are open now.
pub fn to_port(port: u16) -> Result<Bytes, String> {
    let out = Command::new("ss")
        .args(["-tinH", "state", "established"])
        .arg(format!("( dst 127.0.0.1 and dport = :{port} )"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ss ({e}): apt-get install iproute2"))?;
    if !out.status.success() {
        return Err(format!(
            "ss failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse(&String::from_utf8_lossy(&out.stdout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_of_every_connection_are_added_up() {
        let ss = "0 0 127.0.0.1:40000 127.0.0.1:2222\n\t cubic rto:204 bytes_sent:100 \
                  bytes_acked:101 bytes_received:2000 segs_out:9\n0 0 127.0.0.1:40002 \
                  127.0.0.1:2222\n\t cubic bytes_received:5 lastsnd:4\n";
        assert_eq!(
            parse(ss),
            Bytes {
                up: 100,
                down: 2005
            }
        );
        assert_eq!(parse(""), Bytes::default());
    }

    #[test]
    fn a_difference_never_goes_below_zero() {
        let (a, b) = (Bytes { up: 5, down: 1 }, Bytes { up: 3, down: 4 });
        assert_eq!(a - b, Bytes { up: 2, down: 0 });
    }
}
