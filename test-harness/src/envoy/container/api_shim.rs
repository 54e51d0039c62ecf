//! A unix socket in front of an older Docker engine that rewrites the API version in request paths
//! (`/v1.53/containers/create` to `/v1.41/containers/create`), so `testcontainers`, which does not negotiate,
//! can speak to it. Answers pass through untouched. Only paths change: the calls the launcher makes (create,
//! start, inspect, logs, remove) mean the same in both versions, and the engine ignores body fields it
//! does not know.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Listens on a socket of its own for the rest of the process and returns its path.
pub(super) fn start(engine: PathBuf, from: Vec<u8>, to: Vec<u8>) -> io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("{SOCKET_PREFIX}{}.sock", std::process::id()));
    // A process cannot remove its socket as it exits, so each removes those of processes that are gone.
    remove_stale_sockets();
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::thread::Builder::new().name("docker-api-shim".to_owned()).spawn(move || {
        for client in listener.incoming().flatten() {
            // A connection that fails is the client's error to see; the shim keeps serving.
            let _ = relay(client, &engine, from.clone(), to.clone());
        }
    })?;
    Ok(path)
}

const SOCKET_PREFIX: &str = "tollgate-docker-api-";

fn remove_stale_sockets() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|name| name.strip_prefix(SOCKET_PREFIX)?.strip_suffix(".sock"));
        if pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Copies one connection both ways on two threads, rewriting what the client sends.
fn relay(client: UnixStream, engine: &Path, from: Vec<u8>, to: Vec<u8>) -> io::Result<()> {
    let upstream = UnixStream::connect(engine)?;
    let (client_reader, upstream_writer) = (client.try_clone()?, upstream.try_clone()?);
    std::thread::Builder::new().name("docker-api-shim-up".to_owned()).spawn(move || {
        let _ = copy_rewriting(client_reader, &upstream_writer, &from, &to);
        let _ = upstream_writer.shutdown(Shutdown::Write);
    })?;
    std::thread::Builder::new().name("docker-api-shim-down".to_owned()).spawn(move || {
        let (mut upstream, mut client) = (upstream, client);
        let _ = io::copy(&mut upstream, &mut client);
        let _ = client.shutdown(Shutdown::Write);
    })?;
    Ok(())
}

/// Copies `reader` to `writer`, replacing every `from` with `to`. Bytes that might start a `from` split
/// across two reads wait for the next read; everything else goes out at once, so a request is never held.
fn copy_rewriting(mut reader: impl Read, mut writer: impl Write, from: &[u8], to: &[u8]) -> io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = reader.read(&mut buf)?;
        if read == 0 {
            writer.write_all(&pending)?;
            return writer.flush();
        }
        pending.extend_from_slice(buf.get(..read).unwrap_or_default());
        pending = replace_all(&pending, from, to);
        let ready = pending.len() - partial_match_at_end(&pending, from);
        writer.write_all(pending.get(..ready).unwrap_or_default())?;
        writer.flush()?;
        pending.drain(..ready);
    }
}

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = find(rest, from) {
        out.extend_from_slice(rest.get(..at).unwrap_or_default());
        out.extend_from_slice(to);
        rest = rest.get(at + from.len()..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The length of the longest end of `bytes` that is a proper beginning of `pattern`.
fn partial_match_at_end(bytes: &[u8], pattern: &[u8]) -> usize {
    (1..pattern.len().min(bytes.len() + 1))
        .rev()
        .find(|&len| bytes.ends_with(pattern.get(..len).unwrap_or_default()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes a few at a time, as a socket may.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(self.0.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn rewrites_the_version_even_when_split_across_reads() {
        let requests = b"GET /v1.53/containers/abc/json HTTP/1.1\r\n\r\nPOST /v1.53/containers/abc/start HTTP/1.1\r\n\r\n";
        for chunk in 1..12 {
            let mut out = Vec::new();
            copy_rewriting(Trickle(requests, chunk), &mut out, b"/v1.53/", b"/v1.41/").unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "GET /v1.41/containers/abc/json HTTP/1.1\r\n\r\nPOST /v1.41/containers/abc/start HTTP/1.1\r\n\r\n",
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn holds_back_only_what_could_start_the_pattern() {
        assert_eq!(partial_match_at_end(b"GET /v1.", b"/v1.53/"), 4);
        assert_eq!(partial_match_at_end(b"{\"a\":1}", b"/v1.53/"), 0);
        assert_eq!(partial_match_at_end(b"x/", b"/v1.53/"), 1);
    }
}
