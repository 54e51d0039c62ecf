use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::Instant;

fn connect(upstream: &EchoUpstream) -> (TcpStream, BufReader<TcpStream>) {
    let socket = TcpStream::connect(upstream.addr()).unwrap();
    // A hung server fails the test instead of hanging it.
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reader = BufReader::new(socket.try_clone().unwrap());
    (socket, reader)
}

/// Reads one sized response: the head (status line and headers, lowercased) and the body.
fn read_response(reader: &mut BufReader<TcpStream>) -> (String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "connection closed inside a head: {head:?}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .map_or(0, |value| value.trim().parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (head, body)
}

fn echo_of(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[test]
fn echoes_and_records_the_request() {
    let upstream = EchoUpstream::start().unwrap();
    let mut response = crate::envoy::http_client()
        .post(format!("{}/echo?q=1", upstream.url()))
        .header("x-test", "yes")
        .send("payload")
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers().get("content-type").unwrap(), "application/json");
    let echo: serde_json::Value =
        serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/echo?q=1");
    assert_eq!(echo["headers"]["x-test"], "yes");
    assert_eq!(echo["body"], "payload");
    assert_eq!(echo.get("body_base64"), None);
    let received = upstream.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("X-Test"), Some("yes"));
    upstream.clear();
    assert!(upstream.received().is_empty());
}

#[test]
fn a_responder_scripts_fixed_replies() {
    let upstream = EchoUpstream::start_with(|req| {
        if req.path == "/missing" {
            Reply::json(404, &serde_json::json!({"error":"nope"}))
        } else {
            Reply::text(201, "made")
        }
    })
    .unwrap();
    let client = crate::envoy::http_client();
    let mut missing = client.get(format!("{}/missing", upstream.url())).call().unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(missing.body_mut().read_to_string().unwrap(), r#"{"error":"nope"}"#);
    let mut made = client.get(format!("{}/other", upstream.url())).call().unwrap();
    assert_eq!(made.status().as_u16(), 201);
    assert_eq!(made.body_mut().read_to_string().unwrap(), "made");
}

#[test]
fn fixed_replies_are_sized_whatever_framing_headers_the_script_gives() {
    let upstream = EchoUpstream::start_with(|_| Reply::Fixed {
        status: 404,
        headers: vec![
            ("x-a".into(), "b".into()),
            ("Content-Length".into(), "999".into()),
            ("transfer-encoding".into(), "chunked".into()),
        ],
        body: b"gone".to_vec(),
    })
    .unwrap();
    let (mut socket, mut reader) = connect(&upstream);
    socket.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let (head, body) = read_response(&mut reader);
    assert!(head.starts_with("http/1.1 404 not found\r\n"), "{head}");
    assert!(head.contains("x-a: b\r\n") && head.contains("content-length: 4\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert_eq!(body, b"gone");
}

#[test]
fn an_unsendable_scripted_reply_becomes_a_500() {
    let upstream = EchoUpstream::start_with(|req| Reply::Fixed {
        status: if req.path == "/status" { 1000 } else { 200 },
        headers: vec![("x".into(), if req.path == "/header" { "a\r\nevil: 1".into() } else { "ok".into() })],
        body: Vec::new(),
    })
    .unwrap();
    let client = crate::envoy::http_client();
    for path in ["/status", "/header"] {
        let response = client.get(format!("{}{path}", upstream.url())).call().unwrap();
        assert_eq!(response.status().as_u16(), 500, "{path}");
        assert_eq!(response.headers().get("evil"), None);
    }
}

#[test]
fn a_chunked_request_body_is_read_whole_after_100_continue() {
    let upstream = EchoUpstream::start().unwrap();
    let (mut socket, mut reader) = connect(&upstream);
    socket
        .write_all(
            b"POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nexpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let (interim, _) = read_response(&mut reader);
    assert!(interim.starts_with("http/1.1 100 continue"), "{interim}");
    socket.write_all(b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: t\r\n\r\n").unwrap();
    let (head, body) = read_response(&mut reader);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(echo_of(&body)["body"], "abcde");
    assert_eq!(upstream.received()[0].body, b"abcde");
}

#[test]
fn a_binary_body_is_echoed_in_base64_too() {
    let upstream = EchoUpstream::start().unwrap();
    let (mut socket, mut reader) = connect(&upstream);
    socket.write_all(b"PUT /bin HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\n\xff\x00a").unwrap();
    let (_, body) = read_response(&mut reader);
    assert_eq!(echo_of(&body)["body_base64"], "/wBh");
}

#[test]
fn a_stream_arrives_chunk_by_chunk() {
    let upstream = EchoUpstream::start_with(|_| {
        Reply::sse([(Duration::ZERO, "data: one\n\n"), (Duration::from_millis(300), "data: two\n\n")])
    })
    .unwrap();
    let (mut socket, mut reader) = connect(&upstream);
    socket.write_all(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let started = Instant::now();
    let mut head = String::new();
    let mut line = String::new();
    while !line.starts_with("data: one") {
        head.push_str(&line);
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended before the first event");
    }
    // The first event must not wait for the delayed second one.
    assert!(started.elapsed() < Duration::from_millis(250), "first chunk took {:?}", started.elapsed());
    assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    // The body ends at the zero-length chunk; the socket stays open, so read up to it, not to EOF.
    let mut rest = String::new();
    while !rest.ends_with("\r\n0\r\n\r\n") {
        assert!(reader.read_line(&mut rest).unwrap() > 0, "stream ended early: {rest:?}");
    }
    assert!(rest.contains("data: two"), "{rest}");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn concurrent_keep_alive_connections_are_served_at_once() {
    const CLIENTS: usize = 10;
    const REQUESTS_EACH: usize = 4;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most_in_flight = Arc::new(AtomicUsize::new(0));
    let upstream = {
        let (in_flight, most_in_flight) = (Arc::clone(&in_flight), Arc::clone(&most_in_flight));
        EchoUpstream::start_with(move |_| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most_in_flight.fetch_max(now, Ordering::SeqCst);
            // Held until every client has a request in flight, which only happens if no connection waits
            // behind another; the deadline turns a queueing server into a failed assertion, not a hang.
            let deadline = Instant::now() + Duration::from_secs(5);
            while most_in_flight.load(Ordering::SeqCst) < CLIENTS && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Reply::Echo
        })
        .unwrap()
    };
    let start_together = Arc::new(Barrier::new(CLIENTS));
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (upstream, start_together) = (&upstream, Arc::clone(&start_together));
            scope.spawn(move || {
                // One connection per client, reused for every request.
                let (mut socket, mut reader) = connect(upstream);
                start_together.wait();
                for n in 0..REQUESTS_EACH {
                    write!(socket, "GET /c{client}/r{n} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
                    let (head, body) = read_response(&mut reader);
                    assert!(head.starts_with("http/1.1 200"), "{head}");
                    assert_eq!(echo_of(&body)["path"], format!("/c{client}/r{n}"));
                }
            });
        }
    });
    assert_eq!(most_in_flight.load(Ordering::SeqCst), CLIENTS);
    assert_eq!(upstream.received().len(), CLIENTS * REQUESTS_EACH);
}

#[test]
fn garbage_gets_a_400_and_is_not_recorded() {
    let upstream = EchoUpstream::start().unwrap();
    let (mut socket, mut reader) = connect(&upstream);
    socket.write_all(b"nonsense\r\n\r\n").unwrap();
    let (head, _) = read_response(&mut reader);
    assert!(head.starts_with("http/1.1 400"), "{head}");
    assert!(upstream.received().is_empty());
}

#[test]
fn dropping_the_upstream_closes_its_port_and_open_connections() {
    let upstream = EchoUpstream::start().unwrap();
    let addr = upstream.addr();
    let (mut socket, mut reader) = connect(&upstream);
    socket.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    read_response(&mut reader);
    drop(upstream);
    let mut rest = Vec::new();
    assert_eq!(reader.read_to_end(&mut rest).unwrap(), 0, "the kept-alive connection stayed open");
    assert!(TcpStream::connect(addr).is_err(), "the port still accepts connections");
}
