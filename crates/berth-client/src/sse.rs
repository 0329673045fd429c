//! A Server-Sent Events reader for the daemon's event stream.

use berth_proto::Event;
use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::ClientError;

/// One item of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Event(Event),
    /// Events `from..=to` were removed by retention before they could be sent.
    Gap {
        from: u64,
        to: u64,
    },
}

/// Reads events from an open `GET /v1/events` response.
pub struct EventStream {
    body: Incoming,
    buf: BytesMut,
}

impl EventStream {
    pub(crate) fn new(body: Incoming) -> EventStream {
        EventStream {
            body,
            buf: BytesMut::new(),
        }
    }

    /// The next item; `None` when the daemon closed the stream.
    pub async fn next(&mut self) -> Option<Result<StreamItem, ClientError>> {
        loop {
            if let Some(block) = take_block(&mut self.buf) {
                match parse_block(&block) {
                    Ok(Some(item)) => return Some(Ok(item)),
                    Ok(None) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Err(e) => return Some(Err(ClientError::http(e))),
            }
        }
    }
}

/// Splits off one complete block (terminated by a blank line). berth's daemon ends lines with
/// `\n`; stray `\r`s are dropped.
fn take_block(buf: &mut BytesMut) -> Option<String> {
    let text = &buf[..];
    let end = text.windows(2).position(|w| w == b"\n\n")?;
    let block = String::from_utf8_lossy(&text[..end]).replace('\r', "");
    buf.advance(end + 2);
    Some(block)
}

fn parse_block(block: &str) -> Result<Option<StreamItem>, ClientError> {
    let mut kind = "message";
    let mut data = String::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue; // comment (keep-alive)
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = value,
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    if data.is_empty() {
        return Ok(None);
    }
    let bad = |e: serde_json::Error| ClientError::Protocol(format!("bad event data: {e}"));
    match kind {
        "gap" => {
            let v: serde_json::Value = serde_json::from_str(&data).map_err(bad)?;
            let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or_default();
            Ok(Some(StreamItem::Gap {
                from: get("from"),
                to: get("to"),
            }))
        }
        _ => Ok(Some(StreamItem::Event(
            serde_json::from_str(&data).map_err(bad)?,
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_on_blank_lines_and_keep_alives_are_skipped() {
        let mut buf = BytesMut::from(
            &b": keep-alive\n\nid: 1\ndata: {\"seq\":1,\"time_ms\":5,\"kind\":\"k\"}\n\nid: 2\nda"
                [..],
        );
        let first = take_block(&mut buf).unwrap();
        assert_eq!(parse_block(&first).unwrap(), None);
        let second = take_block(&mut buf).unwrap();
        match parse_block(&second).unwrap() {
            Some(StreamItem::Event(e)) => assert_eq!((e.seq, e.kind.as_str()), (1, "k")),
            other => panic!("{other:?}"),
        }
        assert!(
            take_block(&mut buf).is_none(),
            "an incomplete block waits for more bytes"
        );
        assert_eq!(&buf[..], b"id: 2\nda");
    }

    #[test]
    fn gaps_are_understood() {
        let mut buf = BytesMut::from(&b"event: gap\ndata: {\"from\":3,\"to\":9}\n\n"[..]);
        let block = take_block(&mut buf).unwrap();
        assert_eq!(
            parse_block(&block).unwrap(),
            Some(StreamItem::Gap { from: 3, to: 9 })
        );
    }

    #[test]
    fn garbage_data_is_an_error_not_a_panic() {
        assert!(parse_block("data: {not json").is_err());
    }
}
