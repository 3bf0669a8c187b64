//! `cyberid demo --once`: the whole story in one command, and what it tells the reader to
//! run next.

use crate::support::cyberid;

#[test]
fn demo_enrols_and_presents() {
    let output = cyberid(&[
        "demo",
        "--once",
        "--listen",
        "127.0.0.1:0",
        "--people",
        "200",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("network number: "), "{stdout}");
    assert!(stdout.contains("sees: age_over_18=true"), "{stdout}");
    // The PIN and a command for each level, so that nobody guesses the PIN (and locks it).
    assert!(stdout.contains("the wallet's PIN: 135790"), "{stdout}");
    let commands: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("cargo run --release -- wallet --wallet "))
        .filter(|line| line.contains(" approve "))
        .collect();
    assert_eq!(commands.len(), 3, "{stdout}");
    assert!(
        commands[0].ends_with("approve <login page URL>"),
        "{stdout}"
    );
    assert!(commands[1].ends_with("--pin 135790"), "{stdout}");
    assert!(
        commands[2].contains("--pin 135790 --face ") && commands[2].ends_with("face-sample.json"),
        "{stdout}"
    );
}
