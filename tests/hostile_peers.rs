//! Hosts that never bind, trickle bytes or guess passwords must not keep a good operator
//! out: a real listener on 127.0.0.1, flood connections from other loopback addresses
//! (127.0.0.0/8 is all local on Linux, so a test can play many hosts), and a good client
//! binding and getting its permit during each flood.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use support::TestGateway;
use support::smpp::{BIND_TRANSCEIVER, Client, ESME_RBINDFAIL, ESME_RINVPASWD};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

/// A connection to `addr` from the loopback address `from`.
async fn connect_from(addr: SocketAddr, from: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.expect("connect")
}

/// Binds from `from` as demo/demo and asks for a permit for `document`: the answer must be
/// an acknowledged MO and a reply granting it.
async fn good_client_gets_its_permit(addr: SocketAddr, from: Ipv4Addr, document: &str) {
    let mut c = Client::from_stream(connect_from(addr, from).await);
    c.gets_its_permit(document).await;
}

/// How many of `conns` the server has closed (end of stream) within `limit`.
async fn closed(conns: &mut [TcpStream], limit: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    let mut n = 0;
    for s in conns.iter_mut() {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout_at(deadline, tokio::io::AsyncReadExt::read(s, &mut byte)).await
        {
            n += 1;
        }
    }
    n
}

/// Which of `conns` the server closed within `limit` (counted) and which it holds.
async fn split_closed(conns: Vec<TcpStream>, limit: Duration) -> (usize, Vec<TcpStream>) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut open = Vec::new();
    let mut n = 0;
    for mut s in conns {
        let mut byte = [0u8; 1];
        // A closed one answers at once, even past the deadline (the read is polled first).
        match tokio::time::timeout_at(deadline, tokio::io::AsyncReadExt::read(&mut s, &mut byte))
            .await
        {
            Ok(Ok(0) | Err(_)) => n += 1,
            _ => open.push(s),
        }
    }
    (n, open)
}

#[tokio::test]
async fn one_host_opening_a_thousand_idle_connections_keeps_no_operator_out() {
    let gw = TestGateway::start("max_unbound_per_address = 8\nbind_timeout = \"10s\"", "").await;
    let flooder = Ipv4Addr::new(127, 0, 0, 1);
    let mut flood = Vec::new();
    for _ in 0..1000 {
        flood.push(connect_from(gw.addr, flooder).await);
    }
    // All but the host's share are turned away at once; a good client from another address
    // is served meanwhile (before the flood's 8 reach their bind timeout).
    assert_eq!(closed(&mut flood[8..], Duration::from_secs(5)).await, 992);
    good_client_gets_its_permit(gw.addr, Ipv4Addr::new(127, 0, 0, 2), "AZE 11111111").await;
    assert!(gw.gateway.admission.refused_connections() >= 992);
}

#[tokio::test]
async fn a_flood_from_many_hosts_trickling_bytes_is_closed_and_known_operators_keep_their_room() {
    // 100 connections in all, 4 kept for the operator's known address; hosts may hold 8
    // unbound connections each, and have 1 s to bind and 1 s to finish a PDU.
    let gw = TestGateway::start(
        "max_connections = 100\nmax_unbound_per_address = 8\nbind_timeout = \"1s\"\npdu_timeout = \"1s\"",
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nmax_binds = 4\nallowed_ips = [\"127.0.0.2\"]\n",
    )
    .await;
    let mut flood = Vec::new();
    for host in 10..30u8 {
        for _ in 0..8 {
            flood.push(connect_from(gw.addr, Ipv4Addr::new(127, 0, 0, host)).await);
        }
    }
    // 160 tried, 96 held (the free slots), the rest turned away.
    let (turned_away, mut held) = split_closed(flood, Duration::from_millis(300)).await;
    assert_eq!((held.len(), turned_away), (96, 64));
    // The held ones trickle: the start of a bind's header, a byte at a time.
    for s in held.iter_mut() {
        let _ = s.write_all(&[0]).await;
    }
    // Every general slot is taken, yet the operator binding from its known address gets in.
    good_client_gets_its_permit(gw.addr, Ipv4Addr::new(127, 0, 0, 2), "AZE 22222222").await;
    // The flood does not outlive its deadlines, however it trickles.
    let trickle = async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for s in held.iter_mut() {
                let _ = s.write_all(&[0]).await;
            }
        }
    };
    trickle.await;
    assert_eq!(closed(&mut held, Duration::from_secs(2)).await, 96);
    // Room again for anyone: a connection from another host is held, not turned away.
    let again = connect_from(gw.addr, Ipv4Addr::new(127, 0, 0, 3)).await;
    let (closed_now, open) = split_closed(vec![again], Duration::from_millis(300)).await;
    assert_eq!((closed_now, open.len()), (0, 1));
    good_client_gets_its_permit(gw.addr, Ipv4Addr::new(127, 0, 0, 2), "AZE 33333333").await;
}

#[tokio::test]
async fn a_connection_that_talks_without_binding_is_closed_at_the_bind_timeout() {
    let gw = TestGateway::start("bind_timeout = \"1s\"", "").await;
    let mut c = Client::from_stream(connect_from(gw.addr, Ipv4Addr::new(127, 0, 0, 5)).await);
    // enquire_link is answered, but it is not a bind.
    for _ in 0..3 {
        let seq = c.send(support::smpp::ENQUIRE_LINK, &[]).await;
        let r = c.read().await.expect("enquire_link answered");
        assert_eq!(r.seq, seq);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(c.closed_within(Duration::from_secs(2)).await);
}

#[tokio::test]
async fn guessing_passwords_is_slowed_then_locked_out_while_others_bind() {
    let gw = TestGateway::start(
        "bind_failures = 3\nbind_failure_window = \"60s\"\nbind_lockout = \"300s\"",
        "",
    )
    .await;
    let guesser = Ipv4Addr::new(127, 0, 0, 7);
    for (k, password) in ["aaaa", "bbbb", "cccc"].into_iter().enumerate() {
        let mut c = Client::from_stream(connect_from(gw.addr, guesser).await);
        let started = tokio::time::Instant::now();
        assert_eq!(
            c.bind(BIND_TRANSCEIVER, "demo", password).await,
            ESME_RINVPASWD
        );
        // Each failure in the window waits 100 ms longer before its answer.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) * (k as u32 + 1),
            "guess {k} answered after {waited:?}"
        );
        assert!(c.closed_within(Duration::from_secs(5)).await);
    }
    // Locked out: even the right password is refused from that address.
    let mut c = Client::from_stream(connect_from(gw.addr, guesser).await);
    assert_eq!(
        c.bind(BIND_TRANSCEIVER, "demo", "demo").await,
        ESME_RBINDFAIL
    );
    // The operator on its own address is not affected.
    good_client_gets_its_permit(gw.addr, Ipv4Addr::new(127, 0, 0, 8), "AZE 44444444").await;
    assert_eq!(gw.gateway.admission.failed_binds(), 4);
}
