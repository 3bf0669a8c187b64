//! How commands take their settings: defaults, then the file, then the environment, secrets
//! redacted, unknown keys named; `serve --config`; usage errors as JSON.

use std::process::Stdio;

use crate::support::{
    Server, cyberid, cyberid_command, cyberid_with_env, json_of, ok_json, refused_with,
};

/// `config check`: the file over the defaults, the environment over the file (legacy and
/// sectioned names), secrets redacted; an unknown key or a bad variable fails, naming it.
#[test]
fn config_check_prints_the_layered_settings_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[server]\nissuer = \"https://id.example\"\n\
         [store]\ndatabase_url = \"postgres://cyberid:pa55word@db/cyberid\"\n\
         [sign_in]\nlifetime_seconds = 120\ncode_seconds = 30\n",
    )
    .unwrap();
    let good = good.to_str().unwrap();
    let settings = ok_json(&["config", "check", "--config", good, "--json"]);
    assert_eq!(settings["server"]["issuer"], "https://id.example");
    assert_eq!(settings["server"]["listen"], "127.0.0.1:8080", "a default");
    assert_eq!(settings["sign_in"]["lifetime_seconds"], 120);
    assert_eq!(settings["sign_in"]["code_seconds"], 30);
    assert_eq!(settings["store"]["database_url"], "<redacted>");

    let environment = [
        ("CYBERID_CONFIG", good),
        ("CYBERID_SIGN_IN_CODE_SECONDS", "45"),
        ("CYBERID_LISTEN", "127.0.0.1:9999"),
        ("CYBERID_WALLET", "not a setting"),
    ];
    let output = cyberid_with_env(&["config", "check"], &environment);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("[sign_in]\nlifetime_seconds = 120\n"),
        "{text}"
    );
    assert!(text.contains("code_seconds = 45\n"), "{text}");
    assert!(text.contains("listen = \"127.0.0.1:9999\"\n"), "{text}");
    assert!(text.contains("database_url = \"<redacted>\"\n"), "{text}");
    assert!(!text.contains("pa55word"), "{text}");

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[sign_in]\nlifetim_seconds = 120\n").unwrap();
    let unknown = unknown.to_str().unwrap();
    let output = cyberid(&["config", "check", "--config", unknown, "--json"]);
    let error = refused_with(
        &output,
        &format!("unknown setting sign_in.lifetim_seconds in {unknown}"),
    );
    assert_eq!(error["error"], "invalid_settings");
    let output = cyberid(&["config", "check", "--config", unknown]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("sign_in.lifetim_seconds"),
        "{output:?}"
    );

    let output = cyberid_with_env(
        &["config", "check", "--json"],
        &[("CYBERID_LOCKOUT_PIN_ATTEMPTS", "none")],
    );
    refused_with(&output, "CYBERID_LOCKOUT_PIN_ATTEMPTS");
    // An empty CYBERID_CONFIG names no file, as an empty setting variable sets nothing.
    let defaults = cyberid_with_env(
        &["config", "check", "--json"],
        &[("CYBERID_CONFIG", ""), ("CYBERID_DATA", "")],
    );
    assert_eq!(json_of(&defaults)["store"]["data"], "cyberid-data");
    let output = cyberid(&["config", "check", "--config", "/nonexistent.toml", "--json"]);
    refused_with(&output, "/nonexistent.toml");
}

/// `serve --config`: the listening address and data directory come from the file, not
/// from flag defaults.
#[test]
fn serve_takes_its_settings_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-file");
    let file = dir.path().join("node.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[store]\ndata = {:?}\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut command = cyberid_command();
    command
        .args(["serve", "--config"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let server = Server::spawn(command);
    assert!(!server.url.ends_with(":8080"), "{}", server.url);
    assert!(data.join("keys").join("platform-keys.json").is_file());
    // An operator command finds the same store through the same file.
    let listed = ok_json(&[
        "admin",
        "rp",
        "list",
        "--config",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(listed["relying_parties"], serde_json::json!([]));

    // A bad key in the file: the node does not start, and says which key.
    std::fs::write(&file, "[sign_in]\nlifetime_secs = 300\n").unwrap();
    let refused = cyberid(&["serve", "--config", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("sign_in.lifetime_secs"), "{said}");
}

/// A variable shaped like a setting's but none (a typo) is ignored, as other commands'
/// variables are, with a warning that names it.
#[test]
fn a_misspelt_setting_variable_is_named_in_a_warning() {
    let output = cyberid_with_env(
        &["config", "check", "--json"],
        &[("CYBERID_SIGN_IN_LIFETIM_SECONDS", "5")],
    );
    assert!(output.status.success());
    assert_eq!(json_of(&output)["sign_in"]["lifetime_seconds"], 300);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("CYBERID_SIGN_IN_LIFETIM_SECONDS"), "{said}");
}

#[test]
fn usage_errors_with_json_are_json() {
    let output = cyberid(&["wallet", "show", "--json", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(json_of(&output)["error"], "invalid_arguments");
}
