//! Frames: a 4-byte big-endian length, then that many bytes of one message in `postcard`'s
//! format. A frame longer than [`MAX_FRAME`] is refused before anything is allocated for it, and
//! a message that does not decode is an error, never a panic.

use std::io::{BufReader, BufWriter, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest frame either end accepts (a scan's batch of entries, a chunk of content and the
/// rest all stay far below it).
pub const MAX_FRAME: usize = 8 << 20;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the stream ended")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a frame of {0} bytes announced, more than the {MAX_FRAME} allowed")]
    TooLarge(usize),
    #[error("a message that does not decode: {0}")]
    Malformed(#[from] postcard::Error),
}

/// Reads frames from a byte stream.
pub struct FrameReader<R: Read> {
    input: BufReader<R>,
}

impl<R: Read> FrameReader<R> {
    pub fn new(input: R) -> FrameReader<R> {
        FrameReader {
            input: BufReader::with_capacity(256 * 1024, input),
        }
    }

    /// The next message ([`FrameError::Closed`] at the end of the stream, between frames).
    pub fn read<T: DeserializeOwned>(&mut self) -> Result<T, FrameError> {
        let mut len = [0u8; 4];
        match self.input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(FrameError::Closed);
            }
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        let mut body = vec![0u8; len];
        self.input.read_exact(&mut body)?;
        Ok(postcard::from_bytes(&body)?)
    }
}

/// Writes frames to a byte stream (buffered: [`FrameWriter::flush`] sends them).
pub struct FrameWriter<W: Write> {
    output: BufWriter<W>,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(output: W) -> FrameWriter<W> {
        FrameWriter {
            output: BufWriter::with_capacity(256 * 1024, output),
        }
    }

    /// Queues one message.
    pub fn write<T: Serialize>(&mut self, message: &T) -> Result<(), FrameError> {
        let body = postcard::to_allocvec(message)?;
        if body.len() > MAX_FRAME {
            return Err(FrameError::TooLarge(body.len()));
        }
        self.output.write_all(&(body.len() as u32).to_be_bytes())?;
        self.output.write_all(&body)?;
        Ok(())
    }

    /// Sends what is queued.
    pub fn flush(&mut self) -> Result<(), FrameError> {
        Ok(self.output.flush()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_go_through_and_bad_frames_are_errors_not_panics() {
        let mut w = FrameWriter::new(Vec::new());
        w.write(&(7u32, b"bytes".to_vec())).unwrap();
        w.write(&String::from("second")).unwrap();
        w.flush().unwrap();
        let bytes = w.output.into_inner().unwrap();
        let mut r = FrameReader::new(bytes.as_slice());
        assert_eq!(r.read::<(u32, Vec<u8>)>().unwrap(), (7, b"bytes".to_vec()));
        assert_eq!(r.read::<String>().unwrap(), "second");
        assert!(matches!(r.read::<String>(), Err(FrameError::Closed)));
        // A length far over the limit (what a shell's greeting looks like as a length).
        let mut r = FrameReader::new(&b"Welcome to the machine\n"[..]);
        assert!(matches!(r.read::<String>(), Err(FrameError::TooLarge(_))));
        // A frame cut short, and one whose bytes are no such message.
        let mut r = FrameReader::new(&[0, 0, 0, 9, 1][..]);
        assert!(matches!(r.read::<String>(), Err(FrameError::Io(_))));
        let mut r = FrameReader::new(&[0, 0, 0, 2, 0xff, 0xff][..]);
        assert!(matches!(r.read::<String>(), Err(FrameError::Malformed(_))));
        // A vector claiming more elements than the frame holds allocates nothing for them.
        let mut r = FrameReader::new(&[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f][..]);
        assert!(r.read::<Vec<u64>>().is_err());
    }
}
