use std::path::PathBuf;
use std::time::Instant;

use diesel::Connection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// Serializes template creation across test processes ("havenTPL").
const TEMPLATE_LOCK: i64 = 0x6861_7665_6e54_504c;

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// A fresh, migrated Postgres database for one test, cloned from a template database
/// (migrated once per set of migrations, shared by every test process), dropped on drop.
///
/// The server comes from `DATABASE_URL` (default
/// `postgres://haven:haven@127.0.0.1:5432/haven`); the role needs `CREATEDB`.
#[derive(Debug)]
pub struct TestDb {
    admin_url: String,
    url: String,
    name: String,
}

impl TestDb {
    /// Creates the database (and the template on first use) and prints how long the clone took.
    pub async fn new() -> Self {
        let admin_url = Self::server_url();
        let template = TEMPLATE
            .get_or_init(|| ensure_template(admin_url.clone()))
            .await
            .clone();
        let name = format!("haven_test_{}", uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let mut conn = admin(&admin_url).await;
        // The template may be briefly busy (another process checking it): retry.
        let mut attempts = 0;
        loop {
            let result = diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .execute(&mut conn)
                .await;
            match result {
                Ok(_) => break,
                Err(e)
                    if attempts < 50 && e.to_string().contains("being accessed by other users") =>
                {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot create test database {name}: {e}"),
            }
        }
        eprintln!(
            "TestDb: created {name} from {template} in {} ms",
            started.elapsed().as_millis()
        );
        let url = with_database(&admin_url, &name);
        Self {
            admin_url,
            url,
            name,
        }
    }

    /// `DATABASE_URL` or the local default.
    pub fn server_url() -> String {
        std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://haven:haven@127.0.0.1:5432/haven".to_owned())
    }

    /// The URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // A plain thread with its own runtime: Drop may run inside (or outside) a runtime.
        let dropper = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&admin_url).await {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        });
        let _ = dropper.join();
    }
}

async fn admin(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach PostgreSQL at {}: {e}; {}",
            redact_password(url),
            crate::START_HINT
        )
    })
}

fn migrations_dir() -> PathBuf {
    crate::workspace_root().join("migrations")
}

/// SHA-256 over every migration file's path (relative to `migrations/`, so every checkout of
/// the same migrations shares one template) and content: a changed migration gets a new
/// template.
fn migrations_fingerprint() -> String {
    let mut files = Vec::new();
    let mut stack = vec![migrations_dir()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let root = migrations_dir();
    let mut hasher = Sha256::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap_or(&file);
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&file).unwrap_or_default());
    }
    hex::encode(&hasher.finalize()[..8])
}

async fn ensure_template(admin_url: String) -> String {
    let template = format!("haven_tpl_{}", migrations_fingerprint());
    let mut conn = admin(&admin_url).await;
    diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("advisory lock: {e}"));
    let exists = diesel::sql_query(format!(
        "SELECT 1 AS one FROM pg_database WHERE datname = '{template}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap_or(0)
        == 1;
    if !exists {
        let building = format!("{template}_building");
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        diesel::sql_query(format!("CREATE DATABASE {building}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create template database: {e}"));
        let url = with_database(&admin_url, &building);
        tokio::task::spawn_blocking(move || {
            let mut c = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(&url)
                .unwrap_or_else(|e| panic!("cannot connect to the template database: {e}"));
            let source = FileBasedMigrations::from_path(migrations_dir())
                .unwrap_or_else(|e| panic!("cannot read migrations: {e}"));
            c.run_pending_migrations(source)
                .unwrap_or_else(|e| panic!("migrations failed on the template: {e}"));
        })
        .await
        .unwrap_or_else(|e| panic!("migration task: {e}"));
        diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {template}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot rename the template: {e}"));
        // Templates of other migration sets are left alone: another checkout (a branch with
        // a migration more) may be running its tests from one right now.
    }
    let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
        .execute(&mut conn)
        .await;
    template
}

fn with_database(url: &str, name: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_path(&format!("/{name}"));
            parsed.to_string()
        }
        Err(e) => panic!("bad DATABASE_URL: {e}"),
    }
}

fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
