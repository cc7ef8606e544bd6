//! The `squirrel` binary as a user runs it: subcommands, configuration errors (SIGTERM: shutdown.rs).

use std::process::Command;

use crate::helpers::*;

fn squirrel(db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_squirrel"));
    // A temp working dir, so no stray ./.env or ./squirrel.db is read or written.
    let dir = std::env::temp_dir();
    cmd.current_dir(dir).env("DATABASE_URL", &db.url).env_remove("SQUIRREL_ADDR").env_remove("TRUSTED_PROXIES");
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("squirrel runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn users_sites_and_counts_through_the_cli(backend: Backend) {
    let db = TestDb::create(backend).await;
    let (code, out, err) = run(squirrel(&db).arg("migrate"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Migrations applied"));
    let (code, _, err) =
        run(squirrel(&db).args(["create-user", "--email", "cli@example.com", "--password", "hunter2hunter2"]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(squirrel(&db).args(["create-user", "--email", "x@example.com", "--password", "short"]));
    assert_eq!(code, 1);
    assert!(err.contains("at least 8 characters"), "{err}");
    let (code, out, err) = run(squirrel(&db).args(["create-site", "--owner", "CLI@example.com", "--name", "Docs"]));
    assert_eq!(code, 0, "{err}");
    let identifier = out.lines().last().unwrap().to_string();
    assert!(squirrel::accounts::identifier::is_well_formed(&identifier), "{out}");

    // Send a pageview through a server on the same database, then read the count back.
    let app = spawn_app_with(backend, |c| c.store.database_url = db.url.clone()).await;
    assert_eq!(app.get_pv(&format!("sid={identifier}&p=/"), MAC_CHROME).await.status(), 200);
    assert_eq!(app.get_pv(&format!("sid={identifier}&p=/"), GOOGLEBOT).await.status(), 200);
    let (code, out, err) = run(squirrel(&db).args(["sites", "--json"]));
    assert_eq!(code, 0, "{err}");
    let sites: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sites[0]["identifier"], identifier.as_str());
    assert_eq!(sites[0]["owner"], "cli@example.com");
    assert_eq!(sites[0]["pageview_count"], 1, "the bot is not counted");
    assert_eq!(sites[0]["id"].as_str().unwrap().len(), 36);
    let (code, out, _) = run(squirrel(&db).arg("sites"));
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).unwrap().contains(&identifier), "{out}");
}

crate::on_both_backends!(users_sites_and_counts_through_the_cli);

#[test]
fn malformed_settings_fail_at_start_naming_the_variable() {
    let cases = [
        ("DATABASE_URL", "mysql://root@localhost/x", "DATABASE_URL must be sqlite://PATH"),
        ("TRUSTED_PROXIES", "10.0.0.1,not-an-ip", "TRUSTED_PROXIES must be comma-separated IPs or CIDRs"),
        ("SQUIRREL_ADDR", "localhost", "SQUIRREL_ADDR must be HOST:PORT"),
        ("SQUIRREL_SQLITE_SYNC", "sometimes", "sometimes"),
    ];
    for (var, value, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_squirrel"))
            .current_dir(std::env::temp_dir())
            .arg("serve")
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {err}");
        assert!(err.contains(expected), "{var}: {err}");
    }
}

#[test]
fn env_file_supplies_settings_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("prod.env");
    let db_path = dir.path().join("from-env-file.db");
    std::fs::write(&env_file, format!("DATABASE_URL=sqlite://{}\n", db_path.display())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_squirrel"))
        .current_dir(dir.path())
        .args(["--env-file", env_file.to_str().unwrap(), "migrate"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(db_path.exists(), "the file named in the env file was created");

    // The default: ./squirrel.db in the working directory, created on first run.
    let out = Command::new(env!("CARGO_BIN_EXE_squirrel"))
        .current_dir(dir.path())
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(dir.path().join("squirrel.db").exists());

    // ./.env is read when present; a variable already in the environment is not overridden.
    std::fs::write(dir.path().join(".env"), "DATABASE_URL=mysql://wrong\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_squirrel"))
        .current_dir(dir.path())
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), ".env was read");
    let out = Command::new(env!("CARGO_BIN_EXE_squirrel"))
        .current_dir(dir.path())
        .arg("migrate")
        .env("DATABASE_URL", format!("sqlite://{}", db_path.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "the environment wins over .env");
}
