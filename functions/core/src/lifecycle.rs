//! The job lifecycle, in one place: which step moves a job from which states
//! to which, what a worker does with the outcome of a claim, and the retry
//! policy after a failed attempt. The job stores (Postgres, in-memory) only
//! persist what is decided here: each store's state-changing statement takes
//! its `from` states from [`Step::from`], and the tests below hold every step
//! inside the graph of [`JobState::can_become`].
//!
//! The rule for failures, for both workers (issue #13):
//! - a failure no retry can fix ([`Permanent`]: a bad file, a request the job
//!   cannot carry out) fails the job at once with its reason;
//! - any other failure hands the job back to the queue after
//!   [`retry_backoff`], until its [`MAX_ATTEMPTS`]th attempt, which fails it;
//! - the message of a failed job is dead-lettered, not deleted: it is made
//!   visible again at once, the queue's redrive policy moves it to the
//!   queue's dead-letter queue after maxReceiveCount receives, and every
//!   failed job of either kind is then found (and alarmed on, infra/alarms.tf)
//!   in its queue's DLQ for 14 days, next to its job's reason.

use std::time::Duration;

use crate::job::{Claim, Job, JobState};

/// A change of a job's state, and the only ones there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The import's file reached the bucket (its S3 event was matched).
    UploadArrived,
    /// A worker takes the job: a queued one, or a running one whose
    /// worker's lease lapsed (the worker died).
    Claim,
    /// The worker holding the job finished it.
    Succeed,
    /// The worker holding the job hands it back after a transient failure.
    Requeue,
    /// The job fails with a reason a person can act on.
    Fail,
    /// The owner aborts an import still waiting for its file.
    CancelUpload,
    /// An import's upload URLs expired before its file arrived.
    ExpireUpload,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::UploadArrived,
        Step::Claim,
        Step::Succeed,
        Step::Requeue,
        Step::Fail,
        Step::CancelUpload,
        Step::ExpireUpload,
    ];

    /// The states the step starts from. A store changes a job only when it
    /// is in one of them (for [`Step::Claim`] from `running`, only once the
    /// lease lapsed; for the steps of a running job, only for the worker
    /// holding its lease).
    pub fn from(self) -> &'static [JobState] {
        use JobState::*;
        match self {
            Step::UploadArrived | Step::CancelUpload | Step::ExpireUpload => &[AwaitingUpload],
            Step::Claim => &[Queued, Running],
            Step::Succeed | Step::Requeue => &[Running],
            Step::Fail => &[AwaitingUpload, Queued, Running],
        }
    }

    /// The state the step ends in.
    pub fn to(self) -> JobState {
        match self {
            Step::UploadArrived | Step::Requeue => JobState::Queued,
            Step::Claim => JobState::Running,
            Step::Succeed => JobState::Succeeded,
            Step::Fail | Step::ExpireUpload => JobState::Failed,
            Step::CancelUpload => JobState::Cancelled,
        }
    }

    /// [`Step::from`] as state names, for a store's `state = any($n)`.
    pub fn from_names(self) -> Vec<&'static str> {
        self.from().iter().map(|s| s.as_str()).collect()
    }

    /// Whether a job in `state` may take this step.
    pub fn applies_to(self, state: JobState) -> bool {
        self.from().contains(&state)
    }
}

/// Attempts a job gets before a failure that might be transient fails it.
pub const MAX_ATTEMPTS: i32 = 3;

/// An error no retry can fix (a bad file, a request the job cannot carry
/// out): the job fails with this reason at once.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Permanent(pub String);

/// How long a job waits before its next attempt after a transient failure:
/// 5 s after the first, then 4 times longer each time (20 s, 80 s, 320 s),
/// never more than 15 minutes. The worker shortens the queue message's
/// visibility to this (SQS `ChangeMessageVisibility`), so a retry comes in
/// seconds, not after the queue's visibility timeout (at least six times the
/// function's timeout, AWS Lambda's guidance for SQS event sources).
pub fn retry_backoff(failed_attempts: u32) -> Duration {
    let n = failed_attempts.clamp(1, 8) - 1;
    Duration::from_secs((5u64 * 4u64.pow(n)).min(15 * 60))
}

/// What follows a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Hand the job back to the queue; the next attempt is due `after` this.
    Requeue { after: Duration },
    /// Fail the job with the error as its reason (and dead-letter its message).
    Fail,
}

/// The decision after attempt number `attempt` (1-based) failed, the
/// failure being [`Permanent`] or not.
pub fn after_failure(permanent: bool, attempt: i32) -> AfterFailure {
    if permanent || attempt >= MAX_ATTEMPTS {
        AfterFailure::Fail
    } else {
        AfterFailure::Requeue {
            after: retry_backoff(u32::try_from(attempt).unwrap_or(1)),
        }
    }
}

/// What a worker does with the outcome of its claim on a job.
#[derive(Debug)]
pub enum OnClaim {
    /// Run the job: it is this worker's.
    Run(Box<Job>),
    /// The job was claimed, but it has been started more than
    /// [`MAX_ATTEMPTS`] times: every earlier attempt died without a word (a
    /// crash, a timeout). Fail it with this reason instead of a new attempt.
    FailCrashLoop(Box<Job>, String),
    /// Nothing to do (a redelivery of a finished job, or a job that does not
    /// exist): the message is acknowledged. The text is for the log.
    Acknowledge(String),
    /// The job failed: its message is dead-lettered (see the module's rule).
    DeadLetter(String),
    /// Another worker holds a live lease: the message comes back after
    /// `after`, when that lease could have lapsed.
    RetryAfter(Duration),
}

/// The decision for a worker's [`Claim`] on a job of `what` ("import",
/// "export"), whose lease lasts `lease`.
pub fn on_claim(claim: Claim, what: &str, lease: Duration) -> OnClaim {
    match claim {
        Claim::Claimed(job) if job.attempts > MAX_ATTEMPTS => {
            let reason = format!(
                "the {what} was started {} times without finishing: the worker crashed or timed \
                 out on it each time",
                job.attempts - 1
            );
            OnClaim::FailCrashLoop(job, reason)
        }
        Claim::Claimed(job) => OnClaim::Run(job),
        Claim::Missing => OnClaim::Acknowledge(format!("the {what} job does not exist")),
        Claim::NotClaimable(JobState::Failed) => OnClaim::DeadLetter(format!(
            "the {what} failed; its message goes to the dead-letter queue"
        )),
        Claim::NotClaimable(state) => {
            OnClaim::Acknowledge(format!("the {what} is {state}: a duplicate message"))
        }
        Claim::Busy => OnClaim::RetryAfter(lease),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_stays_inside_the_state_graph() {
        for step in Step::ALL {
            assert!(!step.from().is_empty(), "{step:?}");
            for from in step.from() {
                assert!(
                    from.can_become(step.to()),
                    "{step:?}: {from} -> {}",
                    step.to()
                );
            }
        }
    }

    #[test]
    fn every_edge_of_the_graph_is_some_step() {
        for from in JobState::ALL {
            for to in JobState::ALL {
                if from.can_become(to) {
                    assert!(
                        Step::ALL.iter().any(|s| s.applies_to(from) && s.to() == to),
                        "{from} -> {to} is allowed but no step takes it"
                    );
                }
            }
        }
    }

    #[test]
    fn no_step_leaves_a_finished_job() {
        for step in Step::ALL {
            assert!(step.from().iter().all(|s| !s.is_terminal()), "{step:?}");
        }
    }

    #[test]
    fn retries_back_off_then_give_up() {
        assert_eq!(retry_backoff(1), Duration::from_secs(5));
        assert_eq!(retry_backoff(2), Duration::from_secs(20));
        assert_eq!(retry_backoff(3), Duration::from_secs(80));
        assert_eq!(retry_backoff(5), Duration::from_secs(900));
        assert_eq!(retry_backoff(40), Duration::from_secs(900));
        assert_eq!(retry_backoff(0), Duration::from_secs(5));
        assert_eq!(
            after_failure(false, 1),
            AfterFailure::Requeue {
                after: Duration::from_secs(5)
            }
        );
        assert_eq!(
            after_failure(false, 2),
            AfterFailure::Requeue {
                after: Duration::from_secs(20)
            }
        );
        assert_eq!(after_failure(false, MAX_ATTEMPTS), AfterFailure::Fail);
        assert_eq!(after_failure(true, 1), AfterFailure::Fail);
    }

    fn job(attempts: i32) -> Box<Job> {
        let new = crate::job::NewJob {
            id: uuid::Uuid::nil(),
            owner: crate::job::KeyId(uuid::Uuid::nil()),
            kind: crate::JobKind::Export,
            dataset: "d".into(),
            state: JobState::Running,
            format: None,
            options: serde_json::json!({}),
            filename: None,
            object_key: None,
            declared_size: None,
            upload_id: None,
        };
        let mut job = Job::new(new, chrono::Utc::now());
        job.attempts = attempts;
        Box::new(job)
    }

    #[test]
    fn claims_are_decided_the_same_for_both_kinds() {
        let lease = Duration::from_secs(60);
        assert!(matches!(
            on_claim(Claim::Claimed(job(1)), "export", lease),
            OnClaim::Run(_)
        ));
        assert!(matches!(
            on_claim(Claim::Claimed(job(MAX_ATTEMPTS)), "export", lease),
            OnClaim::Run(_)
        ));
        match on_claim(Claim::Claimed(job(MAX_ATTEMPTS + 1)), "import", lease) {
            OnClaim::FailCrashLoop(_, reason) => assert_eq!(
                reason,
                "the import was started 3 times without finishing: the worker crashed or timed \
                 out on it each time"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            on_claim(Claim::Missing, "export", lease),
            OnClaim::Acknowledge(_)
        ));
        assert!(matches!(
            on_claim(Claim::NotClaimable(JobState::Failed), "export", lease),
            OnClaim::DeadLetter(_)
        ));
        for state in [
            JobState::Succeeded,
            JobState::Cancelled,
            JobState::AwaitingUpload,
        ] {
            assert!(matches!(
                on_claim(Claim::NotClaimable(state), "import", lease),
                OnClaim::Acknowledge(_)
            ));
        }
        assert!(matches!(
            on_claim(Claim::Busy, "import", lease),
            OnClaim::RetryAfter(d) if d == lease
        ));
    }
}
