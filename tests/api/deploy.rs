//! The deploy files, checked without a container engine: `docker-compose.yml` (services, images and
//! builds, commands, environment, health checks, start order) and the `Dockerfile`'s essentials.

use serde_yaml::Value;

fn repo_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{} must exist: {e}", path.display()))
}

/// The compose file with its `<<: *anchor` merges applied, as Compose reads it.
fn compose() -> Value {
    let mut compose: Value = serde_yaml::from_str(&repo_file("docker-compose.yml")).expect("valid YAML");
    compose.apply_merge().expect("merge keys resolve");
    compose
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("a list, got {value:?}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn compose_runs_web_workers_postgres_and_redis() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    let mut names: Vec<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["postgres", "redis", "web", "workers"]);

    for name in ["web", "workers"] {
        let service = &compose["services"][name];
        assert_eq!(service["build"]["context"].as_str(), Some("."), "{name} builds this repository's Dockerfile");
        assert!(service["image"].as_str().is_some(), "{name} names its image, so web and workers share one build");
        let env = &service["environment"];
        let database = env["DATABASE_URL"].as_str().unwrap_or_else(|| panic!("{name}: DATABASE_URL"));
        assert!(database.contains("postgres://") && database.contains("@postgres:5432/"), "{name}: {database}");
        let redis = env["REDIS_URL"].as_str().unwrap_or_else(|| panic!("{name}: REDIS_URL"));
        assert!(redis.contains("redis://redis:6379"), "{name}: {redis}");
        let env_file = &service["env_file"][0];
        assert_eq!(env_file["path"].as_str(), Some(".env"), "{name} reads .env beside the compose file");
        assert_eq!(env_file["required"].as_bool(), Some(false), "{name} starts without a .env");
        for dependency in ["postgres", "redis"] {
            assert_eq!(
                service["depends_on"][dependency]["condition"].as_str(),
                Some("service_healthy"),
                "{name} waits for a healthy {dependency}"
            );
        }
    }
    assert_eq!(strings(&compose["services"]["web"]["command"]), ["squirrel", "serve", "--addr", "0.0.0.0:8000"]);
    assert_eq!(strings(&compose["services"]["workers"]["command"]), ["squirrel", "workers"]);
    let ports = strings(&compose["services"]["web"]["ports"]);
    assert!(ports.iter().any(|p| p.ends_with(":8000")), "web publishes port 8000: {ports:?}");

    assert!(compose["services"]["postgres"]["image"].as_str().unwrap().starts_with("postgres:"));
    assert!(compose["services"]["redis"]["image"].as_str().unwrap().starts_with("redis:"));
    assert!(compose["services"]["postgres"]["volumes"].as_sequence().is_some_and(|v| !v.is_empty()));
}

#[test]
fn every_compose_service_has_a_health_check_that_probes_it() {
    let compose = compose();
    let expected = [("web", "/health/ready"), ("workers", "--queue"), ("postgres", "pg_isready"), ("redis", "ping")];
    for (name, probe) in expected {
        let check = &compose["services"][name]["healthcheck"];
        let test = strings(&check["test"]);
        assert!(test[0] == "CMD" || test[0] == "CMD-SHELL", "{name}: {test:?}");
        assert!(test.iter().any(|part| part.contains(probe)), "{name} probes with {probe}: {test:?}");
        assert!(check["interval"].as_str().is_some() && check["retries"].as_u64().is_some(), "{name}: {check:?}");
    }
}

#[test]
fn compose_paths_are_relative_to_the_compose_file() {
    let text = repo_file("docker-compose.yml");
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(!line.contains("/work/") && !line.contains("$PWD"), "an absolute or cwd-based path: {line}");
    }
    let example = repo_file(".env.example");
    for setting in ["DATABASE_URL", "REDIS_URL", "RETENTION_DAYS", "SQUIRREL_TRACK_RATE_LIMIT", "PUBLIC_URL"] {
        assert!(example.contains(setting), ".env.example mentions {setting}");
    }
}

/// `FROM … AS name` lines, and the instructions of the last stage.
fn dockerfile() -> (Vec<String>, Vec<String>) {
    let text = repo_file("Dockerfile").replace("\\\n", " ");
    let lines: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect();
    let froms: Vec<String> = lines.iter().filter(|l| l.starts_with("FROM ")).cloned().collect();
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).expect("a FROM line");
    (froms, lines[last_from..].to_vec())
}

#[test]
fn the_dockerfile_builds_in_stages_and_runs_unprivileged_with_a_health_check() {
    let (froms, runtime) = dockerfile();
    assert!(froms.len() >= 2, "multi-stage: {froms:?}");
    assert!(froms[0].starts_with("FROM rust:") && froms[0].ends_with(" AS builder"), "{froms:?}");
    let base = &froms[froms.len() - 1];
    assert!(base.contains("distroless") || base.contains("-slim"), "the final image is small, not the builder: {base}");
    let instruction = |name: &str| runtime.iter().filter(|l| l.starts_with(&format!("{name} "))).collect::<Vec<_>>();
    let user = instruction("USER");
    assert_eq!(user.len(), 1, "{runtime:?}");
    let who = user[0].trim_start_matches("USER ").split(':').next().unwrap().trim();
    assert!(who != "root" && who != "0", "runs as a non-root user: {who}");
    assert!(runtime.iter().any(|l| l.starts_with("COPY --from=builder") && l.contains("squirrel")));
    let health = instruction("HEALTHCHECK");
    assert!(health.len() == 1 && health[0].contains("healthcheck") && health[0].contains("/health/live"), "{health:?}");
    assert_eq!(instruction("EXPOSE"), ["EXPOSE 8000"]);
    assert_eq!(instruction("CMD"), [r#"CMD ["squirrel", "serve", "--addr", "0.0.0.0:8000"]"#]);
    assert!(instruction("VOLUME").iter().any(|l| l.contains("/data")), "a volume for the SQLite default");
    assert!(instruction("WORKDIR").iter().any(|l| l.ends_with("/data")), "sqlite://squirrel.db lands in /data");
}

#[test]
fn the_dependency_layer_is_built_before_the_sources_are_copied() {
    let text = repo_file("Dockerfile");
    let manifests = text.find("COPY Cargo.toml Cargo.lock").expect("manifests copied on their own");
    let sources = text.find("COPY src").expect("sources copied");
    let first_build = text.find("cargo build --release --locked").expect("a locked release build");
    assert!(manifests < first_build && first_build < sources, "dependencies build before the sources arrive");
    let ignore = repo_file(".dockerignore");
    for excluded in ["target", ".git", ".env"] {
        assert!(
            ignore.lines().any(|l| l.trim().trim_end_matches('/') == excluded),
            ".dockerignore keeps out {excluded}"
        );
    }
}

fn healthcheck(args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squirrel"))
        .current_dir(std::env::temp_dir())
        .arg("healthcheck")
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("squirrel runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_command_exits_0_only_for_a_2xx_answer() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    let base = app.base.clone();
    let (ok, out) = tokio::task::spawn_blocking(move || healthcheck(&["--url", &format!("{base}/health/live")], &[]))
        .await
        .unwrap();
    assert!(ok, "{out}");
    let base = app.base.clone();
    let (ok, out) =
        tokio::task::spawn_blocking(move || healthcheck(&["--url", &format!("{base}/health/nothing")], &[]))
            .await
            .unwrap();
    assert!(!ok && out.contains("404"), "{out}");
    let stopped = app.base.clone();
    app.shutdown().await;
    let (ok, out) =
        tokio::task::spawn_blocking(move || healthcheck(&["--url", &format!("{stopped}/health/live")], &[]))
            .await
            .unwrap();
    assert!(!ok, "nothing listens any more: {out}");
}

#[test]
fn the_queue_healthcheck_fails_without_a_registered_worker() {
    let url = std::env::var("REDIS_URL_FOR_TESTS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("squirrel:t:{}:", uuid::Uuid::new_v4().simple());
    let (ok, out) =
        healthcheck(&["--queue"], &[("REDIS_URL", url.as_str()), ("SQUIRREL_REDIS_PREFIX", prefix.as_str())]);
    assert!(!ok && out.contains("no worker is registered"), "{out}");
    let (ok, out) = healthcheck(&["--queue"], &[("REDIS_URL", "redis://127.0.0.1:1")]);
    assert!(!ok && out.contains("Redis"), "{out}");
}
