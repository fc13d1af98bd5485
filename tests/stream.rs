//! The live AEDAT4 stream over TCP and Unix sockets, against servers in this test that send the
//! bytes of a real DV recording (its IO header already says: no data table) without the magic
//! line, as DV's network outputs do. dv-processing's own NetworkWriter is in `interop.rs`.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::thread;
use std::time::{Duration, Instant};

use common::{csv_of, data};
use safed::events::aedat4_net::NetOptions;
use safed::events::{open_with, EventError, OpenOptions};

const RECORDING: &str = "davis346_aedat-crate_trimmed.aedat4";

fn stream_bytes() -> Vec<u8> {
    let file = std::fs::read(data(RECORDING)).unwrap();
    assert!(file.starts_with(b"#!AER-DAT4.0\r\n"));
    file[14..].to_vec()
}

fn expected() -> String {
    std::fs::read_to_string(data(&format!("{RECORDING}.expected.csv"))).unwrap()
}

/// Serves `payload` to one client in small writes, then closes.
fn serve_tcp(payload: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        for chunk in payload.chunks(4096) {
            if conn.write_all(chunk).is_err() {
                return;
            }
        }
    });
    format!("tcp://{addr}")
}

#[test]
fn tcp_stream_decodes_like_the_file() {
    let source = open_with(&serve_tcp(stream_bytes()), &OpenOptions::default()).unwrap();
    assert_eq!(source.info().format, safed::events::Format::Aedat4Stream);
    assert_eq!(source.info().streams.len(), 4);
    assert!(csv_of(source).unwrap() == expected());
}

#[test]
fn unix_stream_decodes_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dv.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let payload = stream_bytes();
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(&payload).unwrap();
    });
    let source = open_with(&format!("unix://{}", path.display()), &OpenOptions::default()).unwrap();
    assert!(csv_of(source).unwrap() == expected());
}

#[test]
fn garbage_on_the_socket_is_an_error_naming_the_source() {
    let url = serve_tcp(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec());
    let err = open_with(&url, &OpenOptions::default()).map(|_| ()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with(&url), "{msg}");
    assert!(
        matches!(err, EventError::TooLarge { .. } | EventError::Truncated { .. } | EventError::Malformed { .. }),
        "{msg}"
    );
}

#[test]
fn a_server_closing_mid_packet_is_truncated() {
    let mut bytes = stream_bytes();
    bytes.truncate(bytes.len() / 2);
    let err = csv_of(open_with(&serve_tcp(bytes), &OpenOptions::default()).unwrap()).unwrap_err();
    assert!(matches!(err, EventError::Truncated { .. }), "{err}");
}

#[test]
fn a_silent_server_times_out_on_the_header() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let keep = thread::spawn(move || {
        let conn = listener.accept().unwrap();
        thread::sleep(Duration::from_secs(2));
        drop(conn);
    });
    let opts = OpenOptions {
        net: NetOptions { header_timeout: Duration::from_millis(200), ..NetOptions::default() },
        ..OpenOptions::default()
    };
    let start = Instant::now();
    let err = open_with(&url, &opts).map(|_| ()).unwrap_err();
    assert!(matches!(err, EventError::Io { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(2), "the header timeout bounds the wait");
    keep.join().unwrap();
}

#[test]
fn nobody_listening_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = open_with(&url, &OpenOptions::default()).map(|_| ()).unwrap_err();
    assert!(err.to_string().starts_with(&url) && err.to_string().contains("refused"), "{err}");
}
