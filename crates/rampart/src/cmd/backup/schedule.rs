//! Backup jobs and restore drills on their schedules, inside
//! `rampart serve` (`schedule` and `drill` of `[backup.jobs.NAME]`).
//!
//! One thread runs the due tasks one after another. When each task last
//! ran is kept in `DATA_DIR/backup-schedule.json`, so a restart neither
//! repeats a run nor forgets one. A run that fails at any target, a drill
//! that fails, and a run that was due long before it could start (the
//! server was down, or an earlier run took too long) each raise an alert
//! event; every run is also recorded target by target (`backup-run`,
//! `backup-drill`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rampart_core::config::BackupJob;
use rampart_core::{Config, Event, Kind, Outcome, Schedule};
use serde::{Deserialize, Serialize};

/// How often the thread looks at the clock and re-reads the configuration.
const TICK: Duration = Duration::from_millis(500);
const RELOAD: Duration = Duration::from_secs(10);

/// Where an event goes (the running audit log).
pub type Record = Arc<dyn Fn(Event) + Send + Sync>;
/// The current configuration, re-read now and then (reloads apply).
pub type Current = Arc<dyn Fn() -> Option<Config> + Send + Sync>;

/// The running scheduler; stops when dropped.
pub struct Scheduler {
    stop: Arc<AtomicBool>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// When each task last ran: `{"jobs": {"NAME": {"backup": secs, "drill": secs,
/// "backup-started": secs, "backup-since": secs, ...}}}`: `TASK` when it
/// last finished, `TASK-started` when it last started (later than `TASK`:
/// it was interrupted), `TASK-since` when the schedule first saw it (the
/// base of a daily or weekly schedule that never ran).
#[derive(Default, Serialize, Deserialize)]
struct State {
    jobs: BTreeMap<String, BTreeMap<String, u64>>,
}

impl State {
    /// The saved state; none yet, or a damaged file (said so), is an
    /// empty one: interval tasks then run now, daily and weekly ones at
    /// their next time.
    fn load(path: &Path) -> State {
        let Ok(bytes) = std::fs::read(path) else { return State::default() };
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(file = %path.display(), error = %e, "the backup schedule's state is damaged; starting afresh");
            State::default()
        })
    }

    fn save(&self, path: &Path) {
        let tmp = path.with_extension("json.tmp");
        let ok = serde_json::to_vec_pretty(self)
            .ok()
            .is_some_and(|b| std::fs::write(&tmp, b).is_ok() && std::fs::rename(&tmp, path).is_ok());
        if !ok {
            tracing::warn!(file = %path.display(), "cannot save the backup schedule's state");
        }
    }

    fn last(&self, job: &str, task: &str) -> Option<SystemTime> {
        self.jobs.get(job)?.get(task).map(|s| UNIX_EPOCH + Duration::from_secs(*s))
    }

    fn ran(&mut self, job: &str, task: &str, at: SystemTime) {
        let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.jobs.entry(job.to_string()).or_default().insert(task.to_string(), secs);
    }

    /// When the schedule first saw `task` (now, the first time).
    fn since(&mut self, job: &str, task: &str, now: SystemTime) -> SystemTime {
        let key = format!("{task}-since");
        if let Some(t) = self.last(job, &key) {
            return t;
        }
        self.ran(job, &key, now);
        now
    }

    /// Whether `task` started after it last finished: the server stopped
    /// in the middle of it.
    fn interrupted(&self, job: &str, task: &str) -> bool {
        let started = self.last(job, &format!("{task}-started"));
        started.is_some_and(|s| self.last(job, task).is_none_or(|done| s > done))
    }
}

/// When `task` is next due: after its last run; a daily or weekly task that
/// never ran counts from when the schedule first saw it; an interval task
/// that never ran is due at once.
fn due(
    schedule: &Schedule,
    last: Option<SystemTime>,
    since: impl FnOnce() -> SystemTime,
    now: SystemTime,
) -> SystemTime {
    match (last, schedule) {
        (Some(l), _) => schedule.next_after(Some(l), now),
        (None, Schedule::Every(_)) => now,
        (None, _) => schedule.next_after(Some(since()), now),
    }
}

/// Starts the scheduler when a job has a schedule or a drill (and later
/// reloads may add some: it always runs).
pub fn start(data_dir: &Path, current: Current, record: Record) -> std::io::Result<Scheduler> {
    let stop = Arc::new(AtomicBool::new(false));
    let state_file = data_dir.join("backup-schedule.json");
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("rampart-backup-schedule".into())
        .spawn(move || run(&state_file, &current, &record, &flag))?;
    Ok(Scheduler { stop })
}

fn run(state_file: &Path, current: &Current, record: &Record, stop: &AtomicBool) {
    let mut state = State::load(state_file);
    // Tasks the last server stopped in the middle of: alerted, run again.
    let mut rerun: std::collections::BTreeSet<(String, String)> = state
        .jobs
        .keys()
        .flat_map(|job| ["backup", "drill"].map(|task| (job.clone(), task.to_string())))
        .filter(|(job, task)| state.interrupted(job, task))
        .collect();
    for (job, task) in &rerun {
        record(
            Event::new("file", format!("{task}-interrupted"))
                .kind(Kind::Alert)
                .outcome(Outcome::Failure)
                .severity(4)
                .label("backup.job", job.clone())
                .reason(format!("the {task} of job {job} was under way when the server stopped; it runs again now")),
        );
    }
    let mut config: Option<Config> = None;
    let mut loaded = SystemTime::UNIX_EPOCH;
    while !stop.load(Ordering::Relaxed) {
        let now = SystemTime::now();
        if now.duration_since(loaded).unwrap_or(RELOAD) >= RELOAD {
            if let Some(c) = current() {
                config = Some(c);
            }
            loaded = now;
        }
        if let Some(config) = &config {
            for (name, job) in &config.backup.jobs {
                for (task, schedule) in [("backup", job.schedule), ("drill", job.drill)] {
                    let Some(schedule) = schedule else { continue };
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let now = SystemTime::now();
                    let last = state.last(name, task);
                    let again = rerun.remove(&(name.clone(), task.to_string()));
                    let mut first_seen = false;
                    let due_at = if again {
                        now
                    } else {
                        due(
                            &schedule,
                            last,
                            || {
                                first_seen = true;
                                state.since(name, task, now)
                            },
                            now,
                        )
                    };
                    if first_seen {
                        state.save(state_file);
                    }
                    if now < due_at {
                        continue;
                    }
                    if last.is_some() && !again {
                        check_missed(name, task, &schedule, due_at, now, record);
                    }
                    state.ran(name, &format!("{task}-started"), now);
                    state.save(state_file);
                    run_task(config, name, job, task, record);
                    state.ran(name, task, now);
                    state.save(state_file);
                }
            }
        }
        std::thread::sleep(TICK);
    }
}

/// A run that starts long after it was due was missed: alert.
fn check_missed(name: &str, task: &str, schedule: &Schedule, due: SystemTime, now: SystemTime, record: &Record) {
    let late = now.duration_since(due).unwrap_or_default();
    let grace = (schedule.period() / 10).max(Duration::from_secs(60));
    if late > grace {
        tracing::warn!(job = name, task, late_s = late.as_secs(), "a scheduled backup task was missed");
        record(
            Event::new("file", format!("{task}-missed"))
                .kind(Kind::Alert)
                .outcome(Outcome::Failure)
                .severity(4)
                .label("backup.job", name.to_string())
                .label("backup.late_s", late.as_secs().to_string())
                .reason(format!(
                    "the {task} of job {name} ({schedule}) was due {} s before it could run",
                    late.as_secs()
                )),
        );
    }
}

fn run_task(config: &Config, name: &str, job: &BackupJob, task: &str, record: &Record) {
    let password = match super::password(None, config) {
        Ok(p) => p,
        Err(e) => return alert(name, task, &[format!("{e}")], record),
    };
    let forward = |e: Event| record(e);
    let outcome = if task == "backup" {
        super::job::backup(name, job, &password, true, &config.data_dir(), &forward)
    } else {
        super::job::drill(name, job, &password, &config.data_dir(), &forward)
    };
    let failures = outcome.failures();
    if failures.is_empty() {
        tracing::info!(job = name, task, targets = job.targets.len(), "scheduled backup task done");
    } else {
        alert(name, task, &failures, record);
    }
}

/// A failed run or drill: one alert naming every failed target.
fn alert(name: &str, task: &str, failures: &[String], record: &Record) {
    tracing::error!(job = name, task, failures = %failures.join("; "), "a scheduled backup task failed");
    record(
        Event::new("file", format!("{task}-failed"))
            .kind(Kind::Alert)
            .outcome(Outcome::Failure)
            .severity(if task == "drill" { 5 } else { 4 })
            .label("backup.job", name.to_string())
            .reason(failures.join("; ")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn a_daily_task_that_never_ran_is_due_at_its_time() {
        let daily: Schedule = "daily 02:30".parse().unwrap();
        let first_seen = t(10 * 86_400 + 3600); // 01:00
                                                // Seen at 01:00: due at 02:30 the same day, and stays so as time goes.
        for now in [first_seen, t(10 * 86_400 + 2 * 3600), t(10 * 86_400 + 9000)] {
            assert_eq!(due(&daily, None, || first_seen, now), t(10 * 86_400 + 9000));
        }
        // An interval task that never ran: now.
        let every = Schedule::Every(Duration::from_secs(600));
        assert_eq!(due(&every, None, || first_seen, t(5)), t(5));
        assert_eq!(due(&every, Some(t(100)), || first_seen, t(5)), t(700));
    }

    #[test]
    fn a_damaged_state_file_is_an_empty_state() {
        let dir = std::env::temp_dir().join(format!("rampart-schedule-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("backup-schedule.json");
        std::fs::write(&file, b"{\"jobs\": {\"site\": ").unwrap();
        assert!(State::load(&file).jobs.is_empty());
        let mut state = State::default();
        state.ran("site", "backup", t(100));
        state.save(&file);
        assert_eq!(State::load(&file).last("site", "backup"), Some(t(100)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_task_started_after_it_last_finished_was_interrupted() {
        let mut state = State::default();
        assert!(!state.interrupted("site", "backup"));
        state.ran("site", "backup-started", t(100));
        assert!(state.interrupted("site", "backup"), "never finished");
        state.ran("site", "backup", t(100));
        assert!(!state.interrupted("site", "backup"));
        state.ran("site", "backup-started", t(200));
        assert!(state.interrupted("site", "backup"));
    }
}
