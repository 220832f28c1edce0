//! Servers for manual runs against a real spdystream client (client-go's
//! SPDY library), which these tests cannot include. Start one with
//! `SPDY_INTEROP_ADDR=127.0.0.1:7777 cargo test --lib
//! spdy::tests::interop::NAME -- --ignored`, then connect the client:
//! for `serve_one_spdystream_client` it opens `error` (closing its side),
//! `stdin` and `stdout`, sends on stdin and reads the echo on stdout; for
//! `serve_one_port_forward_client` it opens ten (error, data) pairs with
//! `port: 8080`, echoes 1 MiB on each, resets a `resize` stream and sends
//! GOAWAY.

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::super::{Session, SessionConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn serve_one_spdystream_client() {
    let addr = std::env::var("SPDY_INTEROP_ADDR").unwrap_or_else(|_| "127.0.0.1:7777".into());
    let listener = TcpListener::bind(&addr).await.unwrap();
    let (sock, _) = listener.accept().await.unwrap();
    let (session, mut incoming) = Session::server(sock, SessionConfig::default());
    let mut streams = HashMap::new();
    while streams.len() < 3 {
        let s = incoming.next().await.unwrap().unwrap();
        let kind = s.header("streamtype").unwrap().to_string();
        assert_eq!(s.header("requestid"), Some("0"));
        streams.insert(kind, s);
    }
    let mut error = streams.remove("error").unwrap();
    let mut stdin = streams.remove("stdin").unwrap();
    let mut stdout = streams.remove("stdout").unwrap();
    let n = tokio::io::copy(&mut stdin, &mut stdout).await.unwrap();
    stdout.shutdown().await.unwrap();
    error.write_all(b"ok").await.unwrap();
    error.shutdown().await.unwrap();
    println!("echoed {n} bytes");
    // As kubelet does: streams done, then GOAWAY and close.
    session.close();
    session.closed().await;
}

/// Port-forward-like: many (error, data) pairs, a stream the client
/// resets, then the client's GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn serve_one_port_forward_client() {
    let addr = std::env::var("SPDY_INTEROP_ADDR").unwrap_or_else(|_| "127.0.0.1:7777".into());
    let listener = TcpListener::bind(&addr).await.unwrap();
    let (sock, _) = listener.accept().await.unwrap();
    let (session, mut incoming) = Session::server(sock, SessionConfig::default());
    let mut tasks = Vec::new();
    while let Some(s) = incoming.next().await {
        let mut s = s.unwrap();
        assert_eq!(s.header("port"), Some("8080"));
        let kind = s.header("streamtype").unwrap().to_string();
        tasks.push(tokio::spawn(async move {
            match kind.as_str() {
                "data" => {
                    let (mut rd, mut wr) = tokio::io::split(s);
                    let n = tokio::io::copy(&mut rd, &mut wr).await.unwrap();
                    wr.shutdown().await.unwrap();
                    format!("data {n}")
                }
                "error" => {
                    let mut rest = Vec::new();
                    s.read_to_end(&mut rest).await.unwrap();
                    "error".to_string()
                }
                _ => {
                    let mut rest = Vec::new();
                    let err = s.read_to_end(&mut rest).await.unwrap_err();
                    format!("{kind} {:?} after {} bytes", err.kind(), rest.len())
                }
            }
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    println!("{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| *o == "data 1048576").count(), 10);
    assert!(
        outcomes
            .iter()
            .any(|o| o.starts_with("resize ConnectionReset"))
    );
    session.closed().await;
}
