//! The examples' own start-up: two of them on one port say which port and
//! how to move (`PORT`), instead of a raw `AddrInUse`.

#[path = "../../examples/support/port.rs"]
#[allow(dead_code)] // `port()` reads `PORT`, which a test must leave alone
mod port;

#[tokio::test]
async fn a_port_in_use_names_the_port_and_the_variable() {
    let taken = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("a free port on the loopback");
    let number = taken.local_addr().expect("its address").port();
    let error = port::bind(number).await.expect_err("the port is taken");
    assert!(
        error.contains(&format!("127.0.0.1:{number} is already in use")),
        "{error}"
    );
    assert!(error.contains("set PORT"), "{error}");
}
