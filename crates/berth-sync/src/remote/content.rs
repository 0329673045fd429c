//! A file's content on the endpoint's side of the stream: sent as chunks of at most
//! [`CHUNK`] bytes, then the blake3 digest of all of them; received the same way, checked
//! against that digest before the apply may rename it into place.

use std::io::Read;

use super::frame::{FrameError, FrameReader};
use super::message::{CHUNK, Fault, Request, Response};

/// Sends `source`'s bytes as chunks, then their digest; a read that fails midway ends the
/// content with [`Response::Failed`] instead.
pub fn send_content<R: Read>(
    mut source: R,
    mut send: impl FnMut(Response) -> Result<(), FrameError>,
) -> Result<(), FrameError> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match source.read(&mut buf) {
            Ok(0) => return send(Response::End(*hasher.finalize().as_bytes())),
            Ok(n) => {
                hasher.update(&buf[..n]);
                send(Response::Chunk(buf[..n].to_vec()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return send(Response::Failed(Fault::Io {
                    path: String::new(),
                    errno: e.raw_os_error(),
                    message: e.to_string(),
                }));
            }
        }
    }
}

/// The content of an apply, read from the request stream: the chunks up to the end, whose
/// digest must match. Whatever the apply did not read is consumed by [`ChunkReader::finish`],
/// so the next request is read from the right place.
pub struct ChunkReader<'a, R: Read> {
    input: &'a mut FrameReader<R>,
    hasher: blake3::Hasher,
    chunk: Vec<u8>,
    at: usize,
    ended: bool,
    /// The stream itself broke (not just this content): the endpoint must stop.
    broken: Option<FrameError>,
}

impl<'a, R: Read> ChunkReader<'a, R> {
    pub fn new(input: &'a mut FrameReader<R>) -> ChunkReader<'a, R> {
        ChunkReader {
            input,
            hasher: blake3::Hasher::new(),
            chunk: Vec::new(),
            at: 0,
            ended: false,
            broken: None,
        }
    }

    /// Reads the rest of the content, if the apply stopped early; an error only if the stream
    /// broke.
    pub fn finish(mut self) -> Result<(), FrameError> {
        while !self.ended && self.broken.is_none() {
            let _ = self.next_chunk();
        }
        self.broken.map_or(Ok(()), Err)
    }

    /// Reads the next message of the content into `chunk`.
    fn next_chunk(&mut self) -> std::io::Result<()> {
        let request = match self.input.read::<Request>() {
            Ok(r) => r,
            Err(e) => {
                let message = e.to_string();
                self.broken = Some(e);
                return Err(std::io::Error::other(message));
            }
        };
        match request {
            Request::Chunk(bytes) => {
                self.hasher.update(&bytes);
                self.chunk = bytes;
                self.at = 0;
                Ok(())
            }
            Request::End(digest) => {
                self.ended = true;
                if digest == *self.hasher.finalize().as_bytes() {
                    Ok(())
                } else {
                    Err(std::io::Error::other(
                        "the content arrived damaged (its digest does not match)",
                    ))
                }
            }
            Request::Abort(why) => {
                self.ended = true;
                Err(std::io::Error::other(format!(
                    "the sending side could not read it: {why}"
                )))
            }
            other => {
                self.ended = true;
                self.broken = Some(FrameError::Io(std::io::Error::other(format!(
                    "expected content, got {other:?}"
                ))));
                Err(std::io::Error::other("the content was cut off"))
            }
        }
    }
}

impl<R: Read> Read for ChunkReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.ended {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
