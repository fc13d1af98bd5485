//! An AEDAT 4.0 writer (events and frames), for the synthetic datasets, the tests' stream
//! servers, and anyone who wants to save what safed received. What it writes is read back by
//! dv-processing's own reader in the interop tests.

use std::io::{self, Write};

use flatbuffers::{FlatBufferBuilder, Push, PushAlignment, WIPOffset};

use super::schema::FbEvent;
use super::{Compression, MAGIC};
use crate::events::{Event, Frame, PixelFormat};

/// A stream to declare in the IO header.
#[derive(Debug, Clone)]
pub struct StreamDecl {
    pub id: u32,
    /// `originalOutputName`: "events", "frames", ...
    pub name: String,
    /// Events or frames.
    pub kind: DeclKind,
    pub size: (u16, u16),
    /// The camera name (`source` attribute).
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclKind {
    Events,
    Frames,
}

impl DeclKind {
    fn type_id(self) -> &'static str {
        match self {
            DeclKind::Events => "EVTS",
            DeclKind::Frames => "FRME",
        }
    }
}

impl Push for FbEvent {
    type Output = FbEvent;
    unsafe fn push(&self, dst: &mut [u8], _written_len: usize) {
        dst[..16].copy_from_slice(&self.0);
    }
    fn alignment() -> PushAlignment {
        PushAlignment::new(8)
    }
}

fn slot(n: u16) -> u16 {
    4 + 2 * n
}

pub struct Aedat4Writer<W: Write> {
    out: W,
    compression: Compression,
    builder: FlatBufferBuilder<'static>,
    records: Vec<FbEvent>,
}

impl<W: Write> Aedat4Writer<W> {
    /// A file (`with_magic`), or the byte stream a network server sends (no magic line).
    pub fn new(mut out: W, compression: Compression, streams: &[StreamDecl], with_magic: bool) -> io::Result<Self> {
        if with_magic {
            out.write_all(MAGIC)?;
        }
        let mut b = FlatBufferBuilder::new();
        let xml = b.create_string(&info_node(streams, compression));
        let table = b.start_table();
        let code = match compression {
            Compression::None => 0i32,
            Compression::Lz4 => 1,
            Compression::Zstd => 3,
        };
        b.push_slot_always::<i32>(slot(0), code);
        b.push_slot_always::<i64>(slot(1), -1); // no file data table
        b.push_slot_always::<WIPOffset<_>>(slot(2), xml);
        let root = b.end_table(table);
        b.finish_size_prefixed(root, Some("IOHE"));
        out.write_all(b.finished_data())?;
        Ok(Aedat4Writer { out, compression, builder: FlatBufferBuilder::new(), records: Vec::new() })
    }

    pub fn write_events(&mut self, stream: u32, events: &[Event]) -> io::Result<()> {
        self.records.clear();
        self.records.extend(events.iter().map(|e| {
            let mut r = [0u8; 16];
            r[..8].copy_from_slice(&e.t.to_le_bytes());
            r[8..10].copy_from_slice(&e.x.to_le_bytes());
            r[10..12].copy_from_slice(&e.y.to_le_bytes());
            r[12] = u8::from(e.p);
            FbEvent(r)
        }));
        let b = &mut self.builder;
        b.reset();
        let elements = b.create_vector(&self.records);
        let table = b.start_table();
        b.push_slot_always::<WIPOffset<_>>(slot(0), elements);
        let root = b.end_table(table);
        b.finish_size_prefixed(root, Some("EVTS"));
        self.write_packet(stream)
    }

    pub fn write_frame(&mut self, stream: u32, frame: &Frame) -> io::Result<()> {
        let b = &mut self.builder;
        b.reset();
        let pixels = b.create_vector(&frame.pixels);
        let table = b.start_table();
        b.push_slot_always::<i64>(slot(0), frame.t);
        b.push_slot_always::<i64>(slot(1), frame.exposure_start);
        b.push_slot_always::<i64>(slot(2), frame.exposure_end);
        b.push_slot_always::<i64>(slot(3), frame.exposure_start);
        b.push_slot_always::<i64>(slot(4), frame.exposure_end);
        let format: i8 = match frame.format {
            PixelFormat::Gray => 0,
            PixelFormat::Bgr => 16,
            PixelFormat::Bgra => 24,
        };
        b.push_slot_always::<i8>(slot(5), format);
        b.push_slot_always::<i16>(slot(6), frame.width as i16);
        b.push_slot_always::<i16>(slot(7), frame.height as i16);
        b.push_slot_always::<i16>(slot(8), frame.position.0);
        b.push_slot_always::<i16>(slot(9), frame.position.1);
        b.push_slot_always::<WIPOffset<_>>(slot(10), pixels);
        b.push_slot_always::<i64>(slot(11), frame.exposure_end - frame.exposure_start);
        let root = b.end_table(table);
        b.finish_size_prefixed(root, Some("FRME"));
        self.write_packet(stream)
    }

    fn write_packet(&mut self, stream: u32) -> io::Result<()> {
        let data = self.builder.finished_data();
        let body = match self.compression {
            Compression::None => std::borrow::Cow::Borrowed(data),
            Compression::Lz4 => {
                let mut enc = lz4::EncoderBuilder::new().level(1).build(Vec::with_capacity(data.len() / 2))?;
                enc.write_all(data)?;
                let (buf, result) = enc.finish();
                result?;
                buf.into()
            }
            Compression::Zstd => zstd::bulk::compress(data, 1)?.into(),
        };
        let size =
            i32::try_from(body.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet over 2 GiB"))?;
        self.out.write_all(&(stream as i32).to_le_bytes())?;
        self.out.write_all(&size.to_le_bytes())?;
        self.out.write_all(&body)
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The infoNode XML, in DV's layout.
fn info_node(streams: &[StreamDecl], compression: Compression) -> String {
    let comp = match compression {
        Compression::None => "NONE",
        Compression::Lz4 => "LZ4",
        Compression::Zstd => "ZSTD",
    };
    let mut x = String::from("<dv version=\"2.0\">\n    <node name=\"outInfo\" path=\"/outInfo/\">\n");
    for s in streams {
        let (id, name, source) = (s.id, escape(&s.name), escape(&s.source));
        x.push_str(&format!(
            "        <node name=\"{id}\" path=\"/outInfo/{id}/\">\n\
             \x20           <attr key=\"compression\" type=\"string\">{comp}</attr>\n\
             \x20           <attr key=\"originalModuleName\" type=\"string\">safed</attr>\n\
             \x20           <attr key=\"originalOutputName\" type=\"string\">{name}</attr>\n\
             \x20           <attr key=\"typeIdentifier\" type=\"string\">{}</attr>\n\
             \x20           <node name=\"info\" path=\"/outInfo/{id}/info/\">\n\
             \x20               <attr key=\"sizeX\" type=\"int\">{}</attr>\n\
             \x20               <attr key=\"sizeY\" type=\"int\">{}</attr>\n\
             \x20               <attr key=\"source\" type=\"string\">{source}</attr>\n\
             \x20           </node>\n        </node>\n",
            s.kind.type_id(),
            s.size.0,
            s.size.1
        ));
    }
    x.push_str("    </node>\n</dv>\n");
    x
}
