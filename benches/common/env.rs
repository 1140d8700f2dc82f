//! A setting read from the environment, for the benches that take theirs
//! there (`inbox`, `burndown`).

/// `name`'s value parsed as a `T`, or `default` where it is unset; a value
/// that does not parse stops the bench, naming it.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a valid value")),
        Err(_) => default,
    }
}
