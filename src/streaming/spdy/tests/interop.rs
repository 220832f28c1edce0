//! A server for a manual run against a real spdystream client (client-go's
//! SPDY library), which these tests cannot include: start it with
//! `SPDY_INTEROP_ADDR=127.0.0.1:7777 cargo test --lib spdy::tests::interop
//! -- --ignored`, then connect a client that opens `error` (and closes its
//! side), `stdin` and `stdout` streams, sends on stdin and reads stdout back.

use std::collections::HashMap;

use tokio::io::AsyncWriteExt;
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
