//! Running the `cyberid` binary: one command and its `--json` answer, a `cyberid serve`
//! process, and a registry file imported into a fresh store that a test's processes share.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use cyberid_testkit::TestPostgres;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cyberid");

/// The binary, without the `CYBERID_*` variables of the test's own environment (which name
/// the test database and would otherwise configure the command).
pub fn cyberid_command() -> Command {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CYBERID_")) {
        command.env_remove(key);
    }
    command
}

pub fn cyberid(args: &[&str]) -> Output {
    cyberid_with_env(args, &[])
}

/// `cyberid args` with only the `CYBERID_*` variables of `env`.
pub fn cyberid_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    cyberid_command()
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// A command that failed with a `--json` error whose description mentions `fragment`.
pub fn refused_with(output: &Output, fragment: &str) -> Value {
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

/// The one line a `--json` command prints.
pub fn json_of(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "--json must print exactly one line: {stdout}"
    );
    serde_json::from_str(lines[0]).unwrap()
}

/// `cyberid args`, which must succeed, and its `--json` answer.
pub fn ok_json(args: &[&str]) -> Value {
    let output = cyberid(args);
    assert!(
        output.status.success(),
        "cyberid {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    json_of(&output)
}

/// A browser that follows no redirect, so that the test sees where it would be sent.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The sign-in's own page, named by the login page that `/authorize` answers with.
pub fn page_url(login_page: &str) -> String {
    login_page
        .split("data-page=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no sign-in page in {login_page}"))
        .to_owned()
}

/// A running `cyberid serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    pub fn start(data: &Path, database_url: Option<&str>, failpoint: Option<&str>) -> Self {
        Self::start_as(data, database_url, failpoint, "127.0.0.1:0", None)
    }

    pub fn start_as(
        data: &Path,
        database_url: Option<&str>,
        failpoint: Option<&str>,
        listen: &str,
        issuer: Option<&str>,
    ) -> Self {
        let mut command = cyberid_command();
        command
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
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
    pub fn spawn(mut command: Command) -> Self {
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

/// A generated registry of 300 people imported into a fresh store: SQLite in a data
/// directory of its own, or a fresh PostgreSQL schema.
pub struct Setup {
    dir: tempfile::TempDir,
    data: String,
    pub registry: PathBuf,
    pub database_url: Option<String>,
}

impl Setup {
    pub async fn sqlite() -> Self {
        Self::new(None)
    }

    pub async fn postgres(server: &TestPostgres) -> Self {
        Self::new(Some(server.fresh_schema().await))
    }

    fn new(database_url: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("registry.tsv");
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

    pub fn path<'a>(&self, path: &'a Path) -> &'a str {
        path.to_str().unwrap()
    }

    pub fn data(&self) -> &str {
        &self.data
    }

    pub fn server(&self, failpoint: Option<&str>) -> Server {
        Server::start(
            Path::new(self.data()),
            self.database_url.as_deref(),
            failpoint,
        )
    }

    /// ID number and name of the `n`-th registry line whose holder is an adult.
    pub fn adult(&self, n: usize) -> (String, String) {
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

    /// A face sample file of the person with `id` (an impostor's face when `impostor`).
    pub fn face(&self, id: &str, impostor: bool) -> String {
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

    /// A wallet directory's path (created by the first command that uses it).
    pub fn wallet(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// The accounts in the store, read directly.
    pub async fn accounts(&self) -> u64 {
        let location = match &self.database_url {
            Some(url) => cyberid_store::StoreLocation::Postgres {
                url: url.clone(),
                pool_size: 1,
                timeouts: cyberid_store::Timeouts::default(),
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

/// `cyberid wallet enrol` of the person `id`, `name` with the face in `face` (PIN 246802).
pub fn enrol(server: &Server, wallet: &str, id: &str, name: &str, face: &str) -> Output {
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
