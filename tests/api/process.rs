//! The real `squirrel` binary as child processes (`serve`, `workers`, the CLI) with their logs, the
//! servers the fault tests break (a private PostgreSQL, a private Redis), and the load clients that
//! record which pageviews were acknowledged.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use squirrel::store::Store;

use crate::helpers::MAC_CHROME;

/// The binary in a temp working dir (no stray `.env`), on `database_url`, with none of the
/// caller's `SQUIRREL_*`, `OTEL_*`, `AXIOM_*` or `REDIS_URL` settings.
pub fn squirrel(database_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_squirrel"));
    cmd.current_dir(std::env::temp_dir());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if ["SQUIRREL_", "OTEL_", "AXIOM_"].iter().any(|p| key.starts_with(p)) || key == "REDIS_URL" {
            cmd.env_remove(&key);
        }
    }
    cmd.env("DATABASE_URL", database_url).env_remove("TRUSTED_PROXIES").env("SQUIRREL_LOG", "info");
    cmd
}

/// Exit code, stdout and stderr of a command run to completion.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("squirrel runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A user and a site through the CLI; returns the site's identifier.
pub fn create_site(database_url: &str) -> String {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (code, _, err) = run(squirrel(database_url).args(["create-user", "--email", &email, "--password", PASSWORD]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(squirrel(database_url).args(["create-site", "--owner", &email, "--name", "Faults"]));
    assert_eq!(code, 0, "{err}");
    out.lines().last().unwrap().to_string()
}

pub const PASSWORD: &str = "correct horse battery";

/// A running `squirrel` subcommand whose stderr lines are collected as they come.
pub struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// `serve`: where it listens (`http://127.0.0.1:PORT`).
    pub base: String,
}

impl Process {
    /// `squirrel serve` on a free loopback port; returns once it listens.
    pub fn serve(cmd: Command) -> Process {
        Process::spawn_serve(cmd).listening()
    }

    /// `squirrel serve` on a free loopback port, started but maybe not listening yet (several
    /// start side by side this way); [`Process::listening`] waits for it.
    pub fn spawn_serve(mut cmd: Command) -> Process {
        cmd.args(["serve", "--addr", "127.0.0.1:0"]);
        Process::spawn(cmd)
    }

    /// Waits until a `serve` process listens, and keeps its address.
    pub fn listening(mut self) -> Process {
        let line = self.wait_for_line("serve logs its address", Duration::from_secs(60), |l| l.contains("addr="));
        let addr = line.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap();
        self.base = format!("http://{addr}");
        self
    }

    /// Any subcommand (already in `cmd`'s arguments).
    pub fn spawn(mut cmd: Command) -> Process {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("squirrel starts");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        Process { child, lines, reader: Some(reader), base: String::new() }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until a log line matches, or panics (with the log) at the deadline or if the process exits.
    pub fn wait_for_line(&mut self, what: &str, deadline: Duration, matches: impl Fn(&str) -> bool) -> String {
        self.wait_for_lines(what, deadline, 1, matches).pop().unwrap()
    }

    /// Waits until `count` log lines match; returns them.
    pub fn wait_for_lines(
        &mut self,
        what: &str,
        deadline: Duration,
        count: usize,
        matches: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let end = Instant::now() + deadline;
        loop {
            let found: Vec<String> = self.lines().into_iter().filter(|l| matches(l)).collect();
            if found.len() >= count {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{what}: the process exited ({status}) first:\n{}", self.lines().join("\n"));
            }
            assert!(Instant::now() < end, "{what}: not logged within {deadline:?}:\n{}", self.lines().join("\n"));
            std::thread::sleep(Duration::from_millis(20)); // polling a log, not waiting out a race
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no handler runs, nothing is flushed.
    pub fn kill9(mut self) {
        signal(self.pid(), "KILL");
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit code and the whole log.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        signal(self.pid(), "TERM");
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader"); // ends at EOF, after the exit
        }
        (status.code(), self.lines())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().unwrap().success();
    assert!(ok, "kill -{name} {pid}");
}

/// Where load goes: one serve's base URL and a site identifier.
#[derive(Clone, Debug)]
pub struct Target {
    pub base: String,
    pub site: String,
}

/// What the load clients saw, per answer.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `(site identifier, path)` of every pageview answered 200: each must be stored.
    pub acknowledged: Vec<(String, String)>,
    /// 503 with `Retry-After`.
    pub unavailable: u64,
    /// No answer (refused, reset): the server was down.
    pub no_answer: u64,
    /// Anything else (a 503 without `Retry-After`, a 4xx or 500): must stay empty.
    pub unexpected: Vec<String>,
    /// The slowest answer, of any status.
    pub slowest: Duration,
}

/// Concurrent clients, each sending pageviews with paths of its own (`/<tag>/<client>/<n>`) in
/// turn to every target until stopped. Each client is one visitor (its own User-Agent).
pub struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicU64>,
    unavailable: Arc<AtomicU64>,
    clients: Vec<tokio::task::JoinHandle<Outcome>>,
}

impl Load {
    pub fn start(targets: &[Target], clients: usize, tag: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(AtomicU64::new(0));
        let unavailable = Arc::new(AtomicU64::new(0));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let clients = (0..clients)
            .map(|c| {
                let (targets, http, tag) = (targets.to_vec(), http.clone(), tag.to_string());
                let (stop, acknowledged, unavailable) = (stop.clone(), acknowledged.clone(), unavailable.clone());
                tokio::spawn(async move {
                    let mut outcome = Outcome::default();
                    let agent = format!("{MAC_CHROME} client/{c}");
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let target = &targets[(c + i) % targets.len()];
                        let path = format!("/{tag}/{c}/{i}");
                        let started = Instant::now();
                        let sent = http
                            .get(format!("{}/api/v1/pv?sid={}&p={path}", target.base, target.site))
                            .header("user-agent", &agent)
                            .send()
                            .await;
                        outcome.slowest = outcome.slowest.max(started.elapsed());
                        match sent {
                            Ok(r) if r.status() == 200 => {
                                outcome.acknowledged.push((target.site.clone(), path));
                                acknowledged.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) if r.status() == 503 && r.headers().contains_key("retry-after") => {
                                outcome.unavailable += 1;
                                unavailable.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            Ok(r) => {
                                let status = r.status();
                                outcome
                                    .unexpected
                                    .push(format!("{path}: {status} {}", r.text().await.unwrap_or_default()));
                            }
                            Err(_) => {
                                outcome.no_answer += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    outcome
                })
            })
            .collect();
        Load { stop, acknowledged, unavailable, clients }
    }

    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    pub fn unavailable(&self) -> u64 {
        self.unavailable.load(Ordering::Relaxed)
    }

    /// Waits until `more` further pageviews are acknowledged (panics after `deadline`).
    pub async fn until_acknowledged(&self, more: u64, deadline: Duration) {
        self.until("acknowledged pageviews", deadline, || self.acknowledged(), more).await;
    }

    /// Waits until `more` further 503s are answered (panics after `deadline`).
    pub async fn until_unavailable(&self, more: u64, deadline: Duration) {
        self.until("503 answers", deadline, || self.unavailable(), more).await;
    }

    async fn until(&self, what: &str, deadline: Duration, count: impl Fn() -> u64, more: u64) {
        let goal = count() + more;
        let end = Instant::now() + deadline;
        while count() < goal {
            assert!(Instant::now() < end, "{what}: {} of {goal} within {deadline:?}", count());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the clients after their current request and merges what they saw.
    pub async fn stop(self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Outcome::default();
        for client in self.clients {
            let outcome = client.await.expect("load client");
            all.acknowledged.extend(outcome.acknowledged);
            all.unavailable += outcome.unavailable;
            all.no_answer += outcome.no_answer;
            all.unexpected.extend(outcome.unexpected);
            all.slowest = all.slowest.max(outcome.slowest);
        }
        all
    }
}

/// `(site identifier, path)` of every stored pageview of these sites, read through a fresh connection.
pub async fn stored_paths(database_url: &str, sites: &[String]) -> BTreeSet<(String, String)> {
    let store = Store::connect(&squirrel::config::Config::for_tests(database_url).store).await.expect("database opens");
    let mut stored = BTreeSet::new();
    for identifier in sites {
        let site = store.site_by_identifier(identifier).await.unwrap().expect("site exists");
        let rows = store.pageviews_of_site(site.id).await.unwrap();
        let count = rows.len();
        stored.extend(rows.into_iter().map(|p| (identifier.clone(), p.row.path)));
        assert_eq!(stored.iter().filter(|(s, _)| s == identifier).count(), count, "no pageview stored twice");
    }
    store.close().await;
    stored
}

/// Every acknowledged pageview is stored; returns how many were stored without an answer (those in
/// flight when the fault hit).
pub fn assert_every_acknowledged_stored(
    outcome: &Outcome,
    stored: &BTreeSet<(String, String)>,
    context: &str,
) -> usize {
    assert!(outcome.unexpected.is_empty(), "{context}: unexpected answers: {:?}", outcome.unexpected);
    let acknowledged: BTreeSet<_> = outcome.acknowledged.iter().cloned().collect();
    assert_eq!(acknowledged.len(), outcome.acknowledged.len(), "{context}: paths are unique");
    let lost: Vec<_> = acknowledged.difference(stored).take(5).collect();
    assert!(lost.is_empty(), "{context}: acknowledged but not stored (first 5): {lost:?}");
    stored.len() - acknowledged.len()
}

/// A PostgreSQL server of the test's own (initdb in a temp dir, a free loopback port), so it can be
/// stopped and started while the shared one keeps serving everyone else. PostgreSQL refuses to run
/// as root, so its commands run as the `postgres` user (`runuser`) when the tests run as root.
pub struct OwnPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl OwnPostgres {
    pub fn start() -> OwnPostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries in /usr/lib/postgresql (scripts/test installs them)")
            .map(|e| e.unwrap().path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = OwnPostgres { port, dir, bin };
        Command::new("chown").arg("postgres").arg(pg.dir.path()).status().unwrap();
        pg.run_as_postgres("initdb", &["-D", &pg.data(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        pg.up();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run_as_postgres(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let as_root = Command::new("id").arg("-u").output().unwrap().stdout.starts_with(b"0");
        let out = if as_root {
            Command::new("runuser").arg("-u").arg("postgres").arg("--").arg(&program).args(args).output()
        } else {
            Command::new(&program).args(args).output()
        }
        .unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run_as_postgres("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }

    /// `pg_ctl stop -m fast`: open connections are terminated, as in a restart for an upgrade.
    pub fn down(&self) {
        self.run_as_postgres("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// A tmpfs of `size` mounted on a temp dir: a disk that can really fill up. Needs root (as the
/// tests run here and in CI); a failure to mount is a failing test, not a skipped one.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a {size} tmpfs (needs root or CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the free space with a ballast file (writes until ENOSPC).
    pub fn fill(&self) {
        use std::io::Write;
        let mut ballast = std::fs::File::create(self.ballast()).unwrap();
        let block = vec![0xA5u8; 64 * 1024];
        loop {
            match ballast.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = ballast.sync_all();
    }

    /// Frees the space again.
    pub fn free(&self) {
        std::fs::remove_file(self.ballast()).unwrap();
    }

    fn ballast(&self) -> PathBuf {
        self.dir.path().join("ballast")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// A Redis server of the test's own on a free loopback port, with an append-only file in a temp
/// dir, so it can be stopped and started again with its data, as production Redis (AOF) would.
pub struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = OwnRedis { port, dir: tempfile::tempdir().unwrap(), child: None };
        redis.up();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn up(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        self.child = Some(child);
        // Ready when it answers PING; redis-cli retries the connection itself.
        for _ in 0..100 {
            let out = Command::new("redis-cli").args(["-p", &self.port.to_string(), "ping"]).output().unwrap();
            if String::from_utf8_lossy(&out.stdout).contains("PONG") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50)); // a process start, not a race
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// SIGTERM: Redis writes its AOF and exits.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
