//! The examples' own start-up: two of them on one port say which port and
//! how to move (`PORT`), instead of a raw `AddrInUse`; and their package.

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

/// The examples package names its targets (`autoexamples = false`, so that
/// its own manifest says which need a feature): a file in `examples/` it
/// does not name would never be built, linted or run.
#[test]
fn every_example_file_is_a_target_of_the_examples_package() {
    let manifest = include_str!("../../examples/Cargo.toml");
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut examples = 0;
    for entry in std::fs::read_dir(directory).expect("examples/") {
        let file = entry.expect("an entry").file_name();
        let file = file.to_str().expect("a UTF-8 file name");
        let Some(name) = file.strip_suffix(".rs") else {
            continue;
        };
        let target = format!("[[example]]\nname = \"{name}\"\npath = \"{file}\"\n");
        assert!(
            manifest.contains(&target),
            "examples/{file} is not an [[example]] of examples/Cargo.toml"
        );
        examples += 1;
    }
    assert_eq!(manifest.matches("[[example]]").count(), examples);
}
