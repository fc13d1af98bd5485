//! The live AEDAT4 stream, as DV and dv-processing's NetworkWriter serve it: `tcp://HOST:PORT`
//! or `unix:///PATH`. The bytes are the file format without the magic line (see `aedat4`);
//! the stream ends when the server closes the connection.

use std::io::{self, BufReader, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::aedat4::Aedat4Source;
use super::{EventError, EventSource};

/// How long to wait for the connection and for the IO header; after that, how long a read may
/// block (None: a quiet camera may legitimately send nothing for a long time).
#[derive(Debug, Clone, Copy)]
pub struct NetOptions {
    pub connect_timeout: Duration,
    pub header_timeout: Duration,
    pub read_timeout: Option<Duration>,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            connect_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(5),
            read_timeout: None,
        }
    }
}

/// Where a live stream is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(String),
    Unix(String),
}

impl Endpoint {
    /// `tcp://HOST:PORT` or `unix:///PATH`; `None` for anything else (a file path).
    pub fn parse(source: &str) -> Option<Endpoint> {
        if let Some(addr) = source.strip_prefix("tcp://") {
            Some(Endpoint::Tcp(addr.trim_end_matches('/').to_string()))
        } else {
            source.strip_prefix("unix://").map(|path| Endpoint::Unix(path.to_string()))
        }
    }
}

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_read_timeout(t),
            Socket::Unix(s) => s.set_read_timeout(t),
        }
    }

    fn try_clone(&self) -> io::Result<Socket> {
        Ok(match self {
            Socket::Tcp(s) => Socket::Tcp(s.try_clone()?),
            Socket::Unix(s) => Socket::Unix(s.try_clone()?),
        })
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

fn connect(endpoint: &Endpoint, opts: &NetOptions) -> io::Result<Socket> {
    match endpoint {
        Endpoint::Tcp(addr) => {
            let mut last = io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing");
            for a in addr.to_socket_addrs()? {
                match TcpStream::connect_timeout(&a, opts.connect_timeout) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        return Ok(Socket::Tcp(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        Endpoint::Unix(path) => UnixStream::connect(path).map(Socket::Unix),
    }
}

/// Connects and reads the IO header.
pub fn open(source: &str, endpoint: &Endpoint, opts: &NetOptions) -> Result<Box<dyn EventSource>, EventError> {
    let io_err = |err| EventError::Io { input: source.to_string(), offset: 0, err };
    let socket = connect(endpoint, opts).map_err(io_err)?;
    let control = socket.try_clone().map_err(io_err)?;
    control.set_read_timeout(Some(opts.header_timeout)).map_err(io_err)?;
    let src = Aedat4Source::open_stream(BufReader::with_capacity(256 << 10, socket), source)?;
    control.set_read_timeout(opts.read_timeout).map_err(io_err)?;
    Ok(Box::new(src))
}
