//! SQLite WAL checkpoints, off the write path.
//!
//! In WAL mode a commit appends to the WAL file without fsync (`synchronous=NORMAL`); copying the
//! WAL back into the database file (a checkpoint) is what fsyncs. SQLite's automatic checkpoint runs
//! inside whichever commit crosses the threshold, so the ingest writer — and every request waiting
//! on it — would stall on the disk. This task checkpoints from its own connection instead, in
//! PASSIVE mode, which never blocks writers or readers.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Dialect, Store};

/// Often enough that the WAL stays far below the automatic threshold at full ingest speed
/// (~60 MB of WAL per second on 2 cores).
const INTERVAL: Duration = Duration::from_millis(250);

impl Store {
    /// Checkpoints the WAL every [`INTERVAL`] until `stop`, then once more. Returns at once on PostgreSQL.
    pub async fn run_checkpointer(self, stop: CancellationToken) {
        if self.dialect != Dialect::Sqlite {
            return;
        }
        let mut ticks = tokio::time::interval(INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.checkpoint("PRAGMA wal_checkpoint(PASSIVE)").await,
                () = stop.cancelled() => break,
            }
        }
    }

    /// Copies the WAL into the database file and truncates it: used once writes have stopped.
    pub async fn checkpoint_all(&self) {
        if self.dialect == Dialect::Sqlite {
            self.checkpoint("PRAGMA wal_checkpoint(TRUNCATE)").await;
        }
    }

    async fn checkpoint(&self, sql: &'static str) {
        // Not traced: a span a second of housekeeping would drown the statements people look for.
        if let Err(err) = sqlx::query(sql).execute(&self.pool).await {
            // Not fatal: the WAL only grows until the next attempt (or SQLite's own safety net).
            tracing::debug!(error = %err, "WAL checkpoint skipped");
        }
    }
}
