//! The `cyberid` binary end to end, exactly as the README runs it: registry files, a real
//! `cyberid serve` process on a free port, the wallet commands, the demo, and a crash in
//! the middle of an enrolment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cyberid");

fn cyberid(args: &[&str]) -> Output {
    cyberid_with_env(args, &[])
}

/// `cyberid args` with only the `CYBERID_*` variables of `env`.
fn cyberid_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CYBERID_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

/// A command that failed with a `--json` error whose description mentions `fragment`.
fn refused_with(output: &Output, fragment: &str) -> Value {
    assert!(!output.status.success());
    let error = json_of(output);
    assert!(
        error["error_description"]
            .as_str()
            .is_some_and(|d| d.contains(fragment)),
        "{error}"
    );
    error
}

fn json_of(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "--json must print exactly one line: {stdout}"
    );
    serde_json::from_str(lines[0]).unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let output = cyberid(args);
    assert!(
        output.status.success(),
        "cyberid {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    json_of(&output)
}

/// Whether to run the PostgreSQL variant; CI (CYBERID_REQUIRE_POSTGRES) insists on it.
fn postgres_enabled() -> bool {
    cyberid_testkit::postgres().is_some()
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path, database_url: Option<&str>, failpoint: Option<&str>) -> Self {
        Self::start_as(data, database_url, failpoint, "127.0.0.1:0", None)
    }

    fn start_as(
        data: &Path,
        database_url: Option<&str>,
        failpoint: Option<&str>,
        listen: &str,
        issuer: Option<&str>,
    ) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CYBERID_")) {
            command.env_remove(key);
        }
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        if let Some(point) = failpoint {
            command.env("CYBERID_FAILPOINT", point);
        }
        if let Some(issuer) = issuer {
            command.args(["--issuer", issuer]);
        }
        Self::spawn(command)
    }

    /// Runs `command` (a `cyberid serve`) and waits for the line with its URL.
    fn spawn(mut command: Command) -> Self {
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("server start");
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "unexpected first line {line:?}"
        );
        Self { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    dir: tempfile::TempDir,
    data: String,
    registry: PathBuf,
    database_url: Option<String>,
}

impl Setup {
    async fn new(postgres: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry.tsv");
        let database_url = if postgres {
            let server = cyberid_testkit::postgres().expect("PostgreSQL is configured");
            Some(server.fresh_schema().await)
        } else {
            None
        };
        let data = dir.path().join("data").to_str().unwrap().to_owned();
        let setup = Self {
            dir,
            data,
            registry,
            database_url,
        };
        let generated = ok_json(&[
            "registry",
            "generate",
            "--count",
            "300",
            "--seed",
            "11",
            "--out",
            setup.path(&setup.registry),
            "--json",
        ]);
        assert_eq!(generated["records"], 300);
        let mut import = vec![
            "registry",
            "import",
            setup.path(&setup.registry),
            "--data",
            setup.data(),
            "--json",
        ];
        if let Some(url) = &setup.database_url {
            import.extend(["--database-url", url.as_str()]);
        }
        let imported = ok_json(&import);
        assert_eq!(imported["records"], 300);
        setup
    }

    fn path<'a>(&self, path: &'a Path) -> &'a str {
        path.to_str().unwrap()
    }

    fn data(&self) -> &str {
        &self.data
    }

    fn server(&self, failpoint: Option<&str>) -> Server {
        Server::start(
            Path::new(self.data()),
            self.database_url.as_deref(),
            failpoint,
        )
    }

    /// ID number and name of the `n`-th registry line whose holder is an adult.
    fn adult(&self, n: usize) -> (String, String) {
        let today = time::OffsetDateTime::now_utc().date();
        let text = std::fs::read_to_string(&self.registry).unwrap();
        text.lines()
            .skip(1)
            .map(|line| line.split('\t').collect::<Vec<_>>())
            .filter(|fields| {
                let birth = time::Date::parse(
                    fields[2],
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .unwrap();
                cyberid_domain::age_on(birth, today).unwrap() >= 18
            })
            .nth(n)
            .map(|fields| (fields[0].to_owned(), fields[1].to_owned()))
            .unwrap()
    }

    fn face(&self, id: &str, impostor: bool) -> String {
        let out = self.dir.path().join(format!("face-{id}-{impostor}.json"));
        let mut args = vec![
            "registry",
            "face-sample",
            "--registry",
            self.path(&self.registry),
            "--id-number",
            id,
            "--out",
            out.to_str().unwrap(),
            "--json",
        ];
        if impostor {
            args.push("--impostor");
        }
        ok_json(&args);
        out.to_str().unwrap().to_owned()
    }

    fn wallet(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    async fn accounts(&self) -> u64 {
        let location = match &self.database_url {
            Some(url) => cyberid_store::StoreLocation::Postgres {
                url: url.clone(),
                pool_size: 1,
            },
            None => cyberid_store::StoreLocation::Sqlite {
                data_dir: PathBuf::from(self.data()),
                durability: cyberid_store::Durability::Full,
            },
        };
        cyberid_store::open(&location)
            .await
            .unwrap()
            .counts()
            .await
            .unwrap()
            .accounts
    }
}

fn enrol(server: &Server, wallet: &str, id: &str, name: &str, face: &str) -> Output {
    cyberid(&[
        "wallet",
        "--wallet",
        wallet,
        "enrol",
        "--server",
        &server.url,
        "--id-number",
        id,
        "--name",
        name,
        "--face",
        face,
        "--pin",
        "246802",
        "--json",
    ])
}

async fn enrol_show_present(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let server = setup.server(None);
    let (id, name) = setup.adult(0);
    let face = setup.face(&id, false);
    let wallet = setup.wallet("wallet");

    let enrolled = enrol(&server, &wallet, &id, &name, &face);
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stdout)
    );
    let enrolled = json_of(&enrolled);
    let number = enrolled["network_number"].as_str().unwrap().to_owned();
    assert_eq!(enrolled["claims"]["name"], name.as_str());

    let shown = ok_json(&["wallet", "--wallet", &wallet, "show", "--json"]);
    assert_eq!(shown["network_number"], number.as_str());
    assert_eq!(shown["claims"]["real_name_verified"], true);

    // A presentation disclosing only age_over_18, verified by independent libraries.
    let presented = cyberid(&[
        "wallet",
        "--wallet",
        &wallet,
        "present",
        "--disclose",
        "age_over_18",
        "--audience",
        "https://shop.example",
        "--nonce",
        "n-42",
    ]);
    assert!(presented.status.success());
    let presentation = String::from_utf8(presented.stdout)
        .unwrap()
        .trim()
        .to_owned();
    let parsed = sd_jwt_payload::SdJwt::parse(&presentation).unwrap();
    let kb = parsed.key_binding_jwt().unwrap().to_string();
    let disclosed = parsed
        .into_disclosed_object(&sd_jwt_payload::Sha256Hasher::new())
        .unwrap();
    assert_eq!(disclosed["age_over_18"], true);
    for hidden in ["name", "birthdate", "network_number", "region"] {
        assert!(disclosed.get(hidden).is_none(), "{hidden} was disclosed");
    }
    let holder: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(disclosed["cnf"]["jwk"].clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["https://shop.example"]);
    validation.set_required_spec_claims(&["aud"]);
    let kb_claims = jsonwebtoken::decode::<Value>(
        &kb,
        &jsonwebtoken::DecodingKey::from_jwk(&holder).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(kb_claims["nonce"], "n-42");
    assert_eq!(
        jsonwebtoken::decode_header(&kb).unwrap().typ.as_deref(),
        Some("kb+jwt")
    );

    // The same person again, from another wallet: refused with the platform's code.
    let again = enrol(&server, &setup.wallet("second"), &id, &name, &face);
    assert!(!again.status.success());
    assert_eq!(json_of(&again)["error"], "already_enrolled");
    // An impostor's face.
    let (other_id, other_name) = setup.adult(1);
    let impostor = setup.face(&other_id, true);
    let refused = enrol(
        &server,
        &setup.wallet("third"),
        &other_id,
        &other_name,
        &impostor,
    );
    assert_eq!(json_of(&refused)["error"], "identity_mismatch");
    assert_eq!(setup.accounts().await, 1);
}

#[tokio::test]
async fn enrol_show_present_on_sqlite() {
    enrol_show_present(false).await;
}

#[tokio::test]
async fn enrol_show_present_on_postgres() {
    if postgres_enabled() {
        enrol_show_present(true).await;
    }
}

/// The server process dies inside the enrolment transaction (as with a power cut); after
/// a restart there is no half account and the person can enrol.
async fn crash_mid_enrolment(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let (id, name) = setup.adult(2);
    let face = setup.face(&id, false);
    for point in ["enrol-after-account-insert", "enrol-before-commit"] {
        let mut server = setup.server(Some(point));
        let failed = enrol(
            &server,
            &setup.wallet(&format!("crash-{point}")),
            &id,
            &name,
            &face,
        );
        assert!(!failed.status.success());
        assert_eq!(json_of(&failed)["error"], "network_error");
        let exit = server.child.wait().unwrap();
        assert!(
            !exit.success(),
            "the failpoint must have aborted the server"
        );
        assert_eq!(
            setup.accounts().await,
            0,
            "half an account survived the crash at {point}"
        );
    }
    // Now the answer is lost after the commit: the account exists, and the same wallet's
    // retry (same device key) receives the credential instead of being locked out.
    let wallet = setup.wallet("after-crash");
    let mut server = setup.server(Some("enrol-after-commit"));
    let lost = enrol(&server, &wallet, &id, &name, &face);
    assert_eq!(json_of(&lost)["error"], "network_error");
    assert!(!server.child.wait().unwrap().success());
    assert_eq!(setup.accounts().await, 1);
    let server = setup.server(None);
    let enrolled = enrol(&server, &wallet, &id, &name, &face);
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stdout)
    );
    let shown = ok_json(&["wallet", "--wallet", &wallet, "show", "--json"]);
    assert_eq!(shown["claims"]["name"], name.as_str());
    assert_eq!(setup.accounts().await, 1);
    // Another wallet (another device) is still refused.
    let other = enrol(&server, &setup.wallet("other-device"), &id, &name, &face);
    assert_eq!(json_of(&other)["error"], "already_enrolled");
}

#[tokio::test]
async fn crash_mid_enrolment_on_sqlite() {
    crash_mid_enrolment(false).await;
}

#[tokio::test]
async fn crash_mid_enrolment_on_postgres() {
    if postgres_enabled() {
        crash_mid_enrolment(true).await;
    }
}

/// The sign-in's own page, named by the login page that `/authorize` answers with.
fn page_url(login_page: &str) -> String {
    login_page
        .split("data-page=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no sign-in page in {login_page}"))
        .to_owned()
}

#[test]
fn registry_generation_is_deterministic_and_import_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.tsv");
    let b = dir.path().join("b.tsv");
    for out in [&a, &b] {
        ok_json(&[
            "registry",
            "generate",
            "--count",
            "50",
            "--seed",
            "3",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]);
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let mut text = std::fs::read_to_string(&a).unwrap();
    text.push_str("11010519491231002X\tnobody\n");
    let bad = dir.path().join("bad.tsv");
    std::fs::write(&bad, text).unwrap();
    let data = dir.path().join("data");
    let output = cyberid(&[
        "registry",
        "import",
        bad.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    let error = refused_with(&output, "line 52");
    assert_eq!(error["error"], "invalid_registry_file");
    // The 50 good lines before the bad one were not imported either, and the import's
    // scratch file is gone.
    let registry_people = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = cyberid_store::open(&cyberid_store::StoreLocation::Sqlite {
            data_dir: data.clone(),
            durability: cyberid_store::Durability::Full,
        })
        .await
        .unwrap();
        store.counts().await.unwrap().registry_people
    });
    assert_eq!(registry_people, 0);
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().contains("scratch"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn usage_errors_with_json_are_json() {
    let output = cyberid(&["wallet", "show", "--json", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(json_of(&output)["error"], "invalid_arguments");
}

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
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--config"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CYBERID_")) {
        command.env_remove(key);
    }
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
}

#[test]
fn wallet_input_errors_are_reported_without_contacting_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("w");
    let face = dir.path().join("face.json");
    std::fs::write(&face, "{}").unwrap();
    let output = cyberid(&[
        "wallet",
        "--wallet",
        wallet.to_str().unwrap(),
        "enrol",
        "--server",
        "http://127.0.0.1:9",
        "--id-number",
        "123",
        "--name",
        "x",
        "--face",
        face.to_str().unwrap(),
        "--pin",
        "246802",
        "--json",
    ]);
    assert_eq!(json_of(&output)["error"], "invalid_input");
    let output = cyberid(&[
        "wallet",
        "--wallet",
        wallet.to_str().unwrap(),
        "show",
        "--json",
    ]);
    assert_eq!(json_of(&output)["error"], "not_enrolled");
}

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

/// `admin rp` against a running server: a new client works at once, a suspended one is
/// refused at once, a resumed one works again, all without restarting the server.
async fn operator_commands(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let server = setup.server(None);
    let mut store_flags = vec!["--data", setup.data()];
    if let Some(url) = &setup.database_url {
        store_flags.extend(["--database-url", url.as_str()]);
    }
    let admin = |args: &[&str]| {
        let mut all: Vec<&str> = vec!["admin", "rp"];
        all.extend_from_slice(args);
        all.extend_from_slice(&store_flags);
        all.push("--json");
        cyberid(&all)
    };
    let added = admin(&[
        "add",
        "--name",
        "Tax Office",
        "--redirect-uri",
        "https://tax.example/cb",
        "--claims",
        "age_over_18,name",
        "--legal-basis",
        "Tax Act §3",
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stdout)
    );
    let added = json_of(&added);
    let client_id = added["client_id"].as_str().unwrap().to_owned();
    assert!(added["client_secret"].as_str().unwrap().len() >= 43);

    let refused = admin(&[
        "add",
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/cb",
        "--claims",
        "name",
    ]);
    refused_with(&refused, "legal-basis");
    let listed = json_of(&admin(&["list"]));
    assert_eq!(listed["relying_parties"].as_array().unwrap().len(), 1);
    assert_eq!(
        listed["relying_parties"][0]["claims"],
        serde_json::json!(["age_over_18", "name"])
    );

    let authorize = format!(
        "{}/authorize?response_type=code&scope=openid&client_id={client_id}&redirect_uri=https%3A%2F%2Ftax.example%2Fcb&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        server.url
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(browser.get(&authorize).send().await.unwrap().status(), 200);
    assert_eq!(
        json_of(&admin(&["suspend", &client_id]))["status"],
        "suspended"
    );
    assert_eq!(browser.get(&authorize).send().await.unwrap().status(), 403);
    assert_eq!(json_of(&admin(&["resume", &client_id]))["status"], "active");
    assert_eq!(browser.get(&authorize).send().await.unwrap().status(), 200);
    assert_eq!(
        json_of(&admin(&["suspend", "rp_nobody"]))["error"],
        "not_found"
    );
}

#[tokio::test]
async fn operator_commands_on_sqlite() {
    operator_commands(false).await;
}

#[tokio::test]
async fn operator_commands_on_postgres() {
    if postgres_enabled() {
        operator_commands(true).await;
    }
}

/// Two `cyberid serve` processes behind one public URL (node A's): a sign-in begun at A is
/// approved and completed at B, because all its state is in the store.
async fn two_nodes(postgres: bool) {
    let setup = Setup::new(postgres).await;
    let port_a = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port_a}");
    let node_a = Server::start_as(
        Path::new(setup.data()),
        setup.database_url.as_deref(),
        None,
        &format!("127.0.0.1:{port_a}"),
        Some(&issuer),
    );
    let node_b = Server::start_as(
        Path::new(setup.data()),
        setup.database_url.as_deref(),
        None,
        "127.0.0.1:0",
        Some(&issuer),
    );
    assert_eq!(node_a.url, issuer);

    let mut add = vec![
        "admin",
        "rp",
        "add",
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/cb",
        "--data",
        setup.data(),
        "--json",
    ];
    if let Some(url) = &setup.database_url {
        add.extend(["--database-url", url.as_str()]);
    }
    let client = ok_json(&add);
    let (client_id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );

    // The holder's wallet talks to node B.
    let (id, name) = setup.adult(3);
    let face = setup.face(&id, false);
    let wallet = setup.wallet("two-nodes");
    let b_url = node_b.url.clone();
    let enrolled = enrol(&node_b, &wallet, &id, &name, &face);
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stdout)
    );

    // RFC 7636's example verifier and challenge.
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let started = browser
        .get(format!("{}/authorize?response_type=code&scope=openid&client_id={client_id}&redirect_uri=https%3A%2F%2Fshop.example%2Fcb&state=xyz&nonce=n1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", node_a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let cookie = started.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let login_page = page_url(&started.text().await.unwrap());
    let at_b = login_page.replace(&issuer, &b_url);
    let approved = ok_json(&[
        "wallet", "--wallet", &wallet, "approve", &at_b, "--yes", "--json",
    ]);
    assert_eq!(approved["status"], "approved");

    let back = browser
        .get(&at_b)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    let query: std::collections::HashMap<String, String> =
        form_urlencoded_parse(location.split_once('?').unwrap().1);
    assert_eq!(
        (query["state"].as_str(), query["iss"].as_str()),
        ("xyz", issuer.as_str())
    );
    let tokens: Value = reqwest::Client::new()
        .post(format!("{b_url}/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", query["code"].as_str()),
            ("redirect_uri", "https://shop.example/cb"),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"));
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{b_url}/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[&issuer]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["nonce"], "n1");
    assert_eq!(claims["cyberid_verified"], true);
}

fn form_urlencoded_parse(query: &str) -> std::collections::HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decoded = reqwest::Url::parse(&format!("http://x/?v={v}")).unwrap();
            let value = decoded
                .query_pairs()
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            (k.to_owned(), value)
        })
        .collect()
}

#[tokio::test]
async fn two_serve_processes_share_a_sign_in_on_sqlite() {
    two_nodes(false).await;
}

#[tokio::test]
async fn two_serve_processes_share_a_sign_in_on_postgres() {
    if postgres_enabled() {
        two_nodes(true).await;
    }
}

/// Without --yes the wallet asks for the number on the login page: the right number and a
/// yes approve; a wrong number declines.
#[tokio::test]
async fn interactive_approval_checks_the_number() {
    use std::io::Write;
    let setup = Setup::new(false).await;
    let server = setup.server(None);
    let client = ok_json(&[
        "admin",
        "rp",
        "add",
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/cb",
        "--data",
        setup.data(),
        "--json",
    ]);
    let client_id = client["client_id"].as_str().unwrap();
    let (id, name) = setup.adult(4);
    let face = setup.face(&id, false);
    let wallet = setup.wallet("interactive");
    assert!(enrol(&server, &wallet, &id, &name, &face).status.success());
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let begin = || async {
        let started = browser
            .get(format!("{}/authorize?response_type=code&scope=openid&client_id={client_id}&redirect_uri=https%3A%2F%2Fshop.example%2Fcb&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", server.url))
            .send()
            .await
            .unwrap();
        let page = started.text().await.unwrap();
        let login = page_url(&page);
        let number = page.split("id=\"number-match\">").nth(1).unwrap()[..2].to_owned();
        (login, number)
    };
    let approve = |login: &str, answers: String| {
        let mut child = Command::new(BIN)
            .args(["wallet", "--wallet", &wallet, "approve", login])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answers.as_bytes())
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    let (login, number) = begin().await;
    let said = approve(&login, format!("{number}\ny\n"));
    assert!(said.contains("Sign-in approved."), "{said}");
    let (login, number) = begin().await;
    let wrong = if number == "00" {
        "01".to_owned()
    } else {
        "00".to_owned()
    };
    let said = approve(&login, format!("{wrong}\n"));
    assert!(
        said.contains("numbers differ") && said.contains("Sign-in declined."),
        "{said}"
    );
    // --json never asks: it needs a decision flag.
    let refused = cyberid(&["wallet", "--wallet", &wallet, "approve", &login, "--json"]);
    assert_eq!(json_of(&refused)["error"], "invalid_input");
}

/// The load drivers complete every operation against a real server (full sign-ins at L1
/// and L2, with and without a holder who takes time, code exchanges, enrolments), report
/// the server's CPU and memory, and refuse a server that is not on this machine.
#[tokio::test]
async fn bench_commands_drive_a_server() {
    let setup = Setup::new(false).await;
    let server = setup.server(None);
    let pid = server.child.id().to_string();
    let run = |mode: &str, extra: &[&str]| {
        let mut args = vec![
            "bench",
            mode,
            "--server",
            &server.url,
            "--registry",
            setup.path(&setup.registry),
            "--count",
            "12",
            "--concurrency",
            "3",
            "--server-pid",
            &pid,
            "--json",
        ];
        if mode != "enrol" {
            args.extend(["--data", setup.data()]);
        }
        args.extend_from_slice(extra);
        ok_json(&args)
    };
    let mut cpu_figures = 0;
    for (mode, extra) in [
        ("login", vec!["--level", "1"]),
        // The login page's status request held while the holder takes 200 ms: each answers
        // once the decision is taken (an answer of "pending" would count as an error; the
        // same-node wake-up itself is tested in the platform's login tests).
        ("login", vec!["--level", "1", "--hold-ms", "200"]),
        ("login", vec!["--level", "2"]),
        ("token", vec![]),
        ("enrol", vec!["--skip", "40"]),
    ] {
        let report = run(mode, &extra);
        assert_eq!(
            (report["completed"].as_u64(), report["errors"].as_u64()),
            (Some(12), Some(0)),
            "{mode} {extra:?}: {report}"
        );
        // A run this short may stay below one tick of the kernel's CPU clock: then there
        // is no CPU figure rather than a false one; when there is one, the two agree.
        let cpu = &report["server_cpu_ms_per_op"];
        if let Some(ms) = cpu.as_f64() {
            let per_second = report["ops_per_server_cpu_second"].as_f64().unwrap();
            assert!((ms * per_second - 1000.0).abs() < 1e-6, "{report}");
            cpu_figures += 1;
        }
        assert!(report["server_rss_mb"].as_f64().unwrap() > 1.0, "{report}");
        let p = &report["latency_ms"];
        let (p50, p99) = (p["p50"].as_f64().unwrap(), p["p99"].as_f64().unwrap());
        assert!(0.0 < p50 && p50 <= p99, "{report}");
        if extra.contains(&"--hold-ms") {
            // Every sign-in waited for its holder.
            assert!(p50 >= 200.0, "{report}");
        }
    }
    // Twelve sign-ins of a debug build take well over a tick: --server-pid is read.
    assert!(cpu_figures > 0, "no run reported the server's CPU");
    // A holder may take up to 20 s (a held status request answers after 25 s).
    for hold in ["20001", "-1", "soon"] {
        let refused = cyberid(&[
            "bench",
            "login",
            "--server",
            &server.url,
            "--registry",
            setup.path(&setup.registry),
            "--data",
            setup.data(),
            "--hold-ms",
            hold,
            "--json",
        ]);
        assert_eq!(
            json_of(&refused)["error"],
            "invalid_arguments",
            "--hold-ms {hold}"
        );
    }
    // Code exchanges are approved untimed: a holder's time has no meaning there.
    let refused = cyberid(&[
        "bench",
        "token",
        "--server",
        &server.url,
        "--registry",
        setup.path(&setup.registry),
        "--data",
        setup.data(),
        "--hold-ms",
        "200",
        "--json",
    ]);
    assert_eq!(
        refused_with(&refused, "--hold-ms")["error"],
        "invalid_input"
    );
    for mode in ["login", "token", "enrol"] {
        for target in ["http://192.0.2.1:8080", "http://127.0.0.1:1@192.0.2.1:8080"] {
            let mut args = vec![
                "bench",
                mode,
                "--server",
                target,
                "--registry",
                setup.path(&setup.registry),
                "--count",
                "1",
                "--json",
            ];
            if mode != "enrol" {
                args.extend(["--data", setup.data()]);
            }
            let refused = cyberid(&args);
            let refused = refused_with(&refused, "this machine");
            assert_eq!(refused["error"], "invalid_input", "{mode} {target}");
        }
    }
}

/// `bench floor` times the sign-in's unavoidable cryptography in its own process: every part
/// is measured, the floor is the sum of L1's parts, and L2's adds the PIN's two.
#[test]
fn bench_floor_times_the_cryptography_of_both_levels() {
    let report = ok_json(&["bench", "floor", "--count", "20", "--json"]);
    let figure = |name: &str| report[name].as_f64().unwrap_or_default();
    let (verify, sign, floor) = (figure("verify_us"), figure("sign_us"), figure("floor_us"));
    assert!(verify > 0.0 && sign > 0.0, "{report}");
    assert!((floor - (verify + sign)).abs() <= 0.02, "{report}");
    let (evaluate, proof, l2_floor) = (
        figure("pin_evaluate_us"),
        figure("pin_verify_us"),
        figure("l2_floor_us"),
    );
    assert!(evaluate > 0.0 && proof > 0.0, "{report}");
    assert!(
        (l2_floor - (floor + evaluate + proof)).abs() <= 0.04,
        "{report}"
    );
    assert!(
        (figure("l2_over_l1") - l2_floor / floor).abs() <= 0.01,
        "{report}"
    );
    assert_eq!(report["per_round"], 20);
    for count in ["0", "-1", "x", "1000001"] {
        let refused = cyberid(&["bench", "floor", "--count", count, "--json"]);
        assert_eq!(
            json_of(&refused)["error"],
            "invalid_arguments",
            "--count {count}"
        );
    }
}

/// `bench populate` creates registry and accounts through the bulk paths; people who already
/// have an account are passed over, and an offset adds new people.
#[tokio::test]
async fn bench_populate_builds_populations() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let first = ok_json(&[
        "bench",
        "populate",
        "--accounts",
        "300",
        "--registry",
        "800",
        "--seed",
        "5",
        "--data",
        data,
        "--json",
    ]);
    assert_eq!(
        (
            first["accounts"].as_u64(),
            first["registry_records"].as_u64()
        ),
        (Some(300), Some(800))
    );
    assert!(first["sqlite_bytes_added"].as_u64().unwrap() > 300 * 200);
    let again = ok_json(&[
        "bench",
        "populate",
        "--accounts",
        "10",
        "--registry",
        "800",
        "--seed",
        "5",
        "--data",
        data,
        "--json",
    ]);
    assert_eq!(again["accounts"], 0, "the same people are passed over");
    let more = ok_json(&[
        "bench",
        "populate",
        "--accounts",
        "50",
        "--registry",
        "100",
        "--seed",
        "5",
        "--offset",
        "800",
        "--data",
        data,
        "--json",
    ]);
    assert_eq!(more["total_accounts"], 350);
    let store = cyberid_store::open(&cyberid_store::StoreLocation::Sqlite {
        data_dir: data.into(),
        durability: cyberid_store::Durability::Full,
    })
    .await
    .unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!(
        (
            counts.accounts,
            counts.devices,
            counts.credentials,
            counts.registry_people
        ),
        (350, 350, 350, 900)
    );
}
