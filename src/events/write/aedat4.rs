//! AEDAT 4.0 out through our writer (`aedat4::writer`): stream 0 events, stream 1 frames when
//! the input has them; ZSTD-compressed packets, as DV records by default.

use std::fs::File;
use std::io::{BufWriter, Write};

use super::{io_error, EventWriter, Target, WriteError};
use crate::events::aedat4::writer::{Aedat4Writer, DeclKind, StreamDecl};
use crate::events::aedat4::Compression;
use crate::events::{Event, Frame};

pub struct Aedat4Out {
    path: String,
    out: Aedat4Writer<BufWriter<File>>,
    frames: bool,
}

impl Aedat4Out {
    pub fn create(target: &Target, size: (u16, u16)) -> Result<Self, WriteError> {
        let file = File::create(&target.path).map_err(io_error(&target.path))?;
        let source = "safed convert".to_string();
        let mut streams =
            vec![StreamDecl { id: 0, name: "events".into(), kind: DeclKind::Events, size, source: source.clone() }];
        if target.frames {
            streams.push(StreamDecl { id: 1, name: "frames".into(), kind: DeclKind::Frames, size, source });
        }
        let out = Aedat4Writer::new(BufWriter::with_capacity(1 << 20, file), Compression::Zstd, &streams, true)
            .map_err(io_error(&target.path))?;
        Ok(Aedat4Out { path: target.path.clone(), out, frames: target.frames })
    }
}

impl EventWriter for Aedat4Out {
    fn write_events(&mut self, events: &[Event]) -> Result<(), WriteError> {
        if events.is_empty() {
            return Ok(());
        }
        self.out.write_events(0, events).map_err(io_error(&self.path))
    }

    fn write_frame(&mut self, frame: &Frame) -> Result<(), WriteError> {
        self.out.write_frame(1, frame).map_err(io_error(&self.path))
    }

    fn accepts_frames(&self) -> bool {
        self.frames
    }

    fn finish(self: Box<Self>) -> Result<(), WriteError> {
        let path = self.path;
        self.out.into_inner().and_then(|mut w| w.flush()).map_err(io_error(&path))
    }
}
