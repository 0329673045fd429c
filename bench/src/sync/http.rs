//! A minimal HTTP/1.0 GET for Syncthing's REST API on 127.0.0.1 (one request per connection,
//! so no chunked bodies and no connection reuse to handle).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub fn get_json(addr: SocketAddr, path: &str, api_key: &str) -> Result<serde_json::Value, String> {
    let timeout = Duration::from_secs(5);
    let mut conn = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("GET {path} on {addr}: {e}"))?;
    conn.set_read_timeout(Some(timeout))
        .and_then(|_| conn.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nX-API-Key: {api_key}\r\n\r\n");
    conn.write_all(request.as_bytes())
        .map_err(|e| format!("GET {path} on {addr}: {e}"))?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)
        .map_err(|e| format!("GET {path} on {addr}: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path} on {addr}: malformed response"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("GET {path} on {addr}: {status}: {}", body.trim()));
    }
    serde_json::from_str(body).map_err(|e| format!("GET {path} on {addr}: {e}"))
}
