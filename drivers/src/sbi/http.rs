//! A small HTTP/1.1 client for loopback SBI device services: one request per connection (`Connection: close`),
//! the request head and body in one write (MOSIP's mock reads the body with a single `read()`), `Content-Length: N`
//! with exactly one space (the mock cuts the header at a fixed column), and a tolerant reader of the answer: any
//! reason phrase ("405 OK"), header names in any case, optional spaces after the colon, bytes after the body ignored,
//! no Content-Length meaning "up to the close". Every answer is bounded in size and time.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest answer head read.
const MAX_HEAD: usize = 64 * 1024;
/// The largest answer body read (a four-finger slap at 500 ppi with lossless records is a few MB).
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// What went wrong on the wire.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("nothing listens on 127.0.0.1:{0}")]
    Refused(u16),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("not an HTTP answer: {0}")]
    NotHttp(String),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the connection closed after {got} of the {stated} body bytes announced")]
    Truncated { got: usize, stated: usize },
}

/// An answer: status code and body (SBI services report errors in the body, with any status).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The head of an answer whose body is read on (the preview stream): headers, the connection and the body bytes
/// already read.
#[derive(Debug)]
pub(crate) struct OpenAnswer {
    pub headers: Vec<(String, String)>,
    pub stream: TcpStream,
    pub already: Vec<u8>,
}

fn request_bytes(port: u16, method: &str, path: &str, body: Option<&str>) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(b) = body {
        head.push_str("Content-Type: application/json\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    let mut v = head.into_bytes();
    if let Some(b) = body {
        v.extend_from_slice(b.as_bytes());
    }
    v
}

async fn connect(port: u16, connect_timeout: Duration) -> Result<TcpStream, WireError> {
    // Always loopback: SBI services are local by specification, and Tamga never speaks SBI to another host.
    match tokio::time::timeout(connect_timeout, TcpStream::connect(("127.0.0.1", port))).await {
        Err(_) => Err(WireError::Timeout(connect_timeout)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(WireError::Refused(port)),
        Ok(Err(e)) => Err(WireError::Io(e)),
        Ok(Ok(s)) => Ok(s),
    }
}

/// Reads up to the end of the head; returns status, headers and what was read after the head.
async fn read_head(stream: &mut TcpStream) -> Result<(u16, Vec<(String, String)>, Vec<u8>), WireError> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let (status, headers) = parse_head(&buf[..end])?;
            return Ok((status, headers, buf[end + 4..].to_vec()));
        }
        if buf.len() > MAX_HEAD {
            return Err(WireError::NotHttp("no end of the head in 64 KiB".into()));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(WireError::NotHttp(if buf.is_empty() {
                "the connection closed without an answer".into()
            } else {
                "the connection closed inside the head".into()
            }));
        }
        buf.extend_from_slice(&chunk[..n]);
        if !buf.is_empty() && !b"HTTP/".starts_with(&buf[..buf.len().min(5)]) && !buf.starts_with(b"HTTP/") {
            return Err(WireError::NotHttp("the answer does not start with HTTP/".into()));
        }
    }
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>), WireError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(WireError::NotHttp(format!("status line {status_line:?}")));
    }
    let status = parts
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| WireError::NotHttp(format!("status line {status_line:?}")))?;
    let headers = lines
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            Some((n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        })
        .collect();
    Ok((status, headers))
}

fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, WireError> {
    match headers.iter().find(|(n, _)| n == "content-length") {
        None => Ok(None),
        Some((_, v)) => v
            .parse::<usize>()
            .map(Some)
            .map_err(|_| WireError::NotHttp(format!("Content-Length {v:?}"))),
    }
}

/// One request, one answer, within `timeout` as a whole (connect within `connect_timeout`).
pub(crate) async fn exchange(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Answer, WireError> {
    let work = async {
        let mut stream = connect(port, connect_timeout).await?;
        stream.write_all(&request_bytes(port, method, path, body)).await?;
        let (status, headers, mut body) = read_head(&mut stream).await?;
        let stated = content_length(&headers)?;
        if let Some(n) = stated
            && n > MAX_BODY
        {
            return Err(WireError::TooLarge(MAX_BODY));
        }
        let want = stated.unwrap_or(MAX_BODY + 1);
        let mut chunk = vec![0u8; 64 * 1024];
        while body.len() < want {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
            if stated.is_none() && body.len() > MAX_BODY {
                return Err(WireError::TooLarge(MAX_BODY));
            }
        }
        if let Some(n) = stated {
            if body.len() < n {
                return Err(WireError::Truncated {
                    got: body.len(),
                    stated: n,
                });
            }
            // Bytes after the announced body (MOSIP's mock adds "\r\n\r\n") are not part of it.
            body.truncate(n);
        }
        Ok(Answer { status, body })
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(WireError::Timeout(timeout)),
        Ok(r) => r,
    }
}

/// Sends a request and reads only the answer's head (for the preview stream).
pub(crate) async fn open(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<OpenAnswer, WireError> {
    let work = async {
        let mut stream = connect(port, connect_timeout).await?;
        stream.write_all(&request_bytes(port, method, path, body)).await?;
        let (_status, headers, already) = read_head(&mut stream).await?;
        Ok(OpenAnswer {
            headers,
            stream,
            already,
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(WireError::Timeout(timeout)),
        Ok(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_one_space_content_length_and_body_in_one_buffer() {
        let b = request_bytes(4501, "RCAPTURE", "/capture", Some("{\"a\":1}"));
        let t = String::from_utf8(b).unwrap_or_default();
        assert!(t.starts_with("RCAPTURE /capture HTTP/1.1\r\n"));
        assert!(t.contains("\r\nContent-Length: 7\r\n"));
        assert!(t.ends_with("\r\n\r\n{\"a\":1}"));
    }

    #[test]
    fn head_parser_tolerates_405_ok_and_header_spacing() {
        let (s, h) = parse_head(b"HTTP/1.1 405 OK\r\nCONTENT-LENGTH:12\r\nX: y").unwrap_or_default();
        assert_eq!(s, 405);
        assert_eq!(content_length(&h).ok().flatten(), Some(12));
        assert!(parse_head(b"SSH-2.0-OpenSSH").is_err());
    }
}
