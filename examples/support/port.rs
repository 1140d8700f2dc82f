//! The examples' port: `PORT`, 3000 by default, and an error that says what
//! to do when another process holds it.

/// The port `PORT` names, 3000 when it is unset.
pub fn port() -> Result<u16, String> {
    match std::env::var("PORT") {
        Err(std::env::VarError::NotPresent) => Ok(3000),
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port} is not a port number (0 to 65535)")),
        Err(std::env::VarError::NotUnicode(_)) => Err("PORT is not UTF-8".into()),
    }
}

/// A listener on 127.0.0.1:`port`. An address in use is an error naming the
/// port and `PORT`, since the examples share 3000 by default.
pub async fn bind(port: u16) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AddrInUse => format!(
                "127.0.0.1:{port} is already in use (another example still running?): \
                 stop it, or set PORT to a free port, e.g. PORT=3001"
            ),
            _ => format!("cannot listen on 127.0.0.1:{port}: {error}"),
        })
}
