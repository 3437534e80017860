//! EC2's eventual consistency: "If you run a command to modify or describe the resource that
//! you just created, its ID might not have propagated throughout the system, and you will get
//! an error responding that the resource does not exist" — the remedy EC2 documents is to retry
//! with a growing pause ("Eventual consistency in the Amazon EC2 API",
//! <https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html>). Every step that
//! names an id EC2 handed out moments ago goes through [`retry_fresh`]: a "not found" for it is
//! taken for "not yet", for a bounded time, never for "gone".

use std::future::Future;
use std::time::{Duration, Instant};

use crate::aws::error::{ErrorKind, Result};

/// How long an id EC2 just returned may stay unknown to later calls before the step gives up.
/// EC2 names no bound ("typically … seconds"); amazonec2 waits for its new security group
/// without one.
pub const FRESH_PATIENCE: Duration = Duration::from_secs(30);

/// The first pause; each next one doubles, up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_millis(200);

/// The longest pause between two tries.
pub const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Runs `step` until it succeeds, fails with a code other than `not_yet`, or [`FRESH_PATIENCE`]
/// runs out (then its last error). `not_yet` lists the "not found" kinds of the ids the step
/// names that were made moments ago; an empty list runs the step once.
pub async fn retry_fresh<T, F, Fut>(not_yet: &[ErrorKind], step: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    retry_fresh_for(FRESH_PATIENCE, not_yet, step).await
}

/// [`retry_fresh`] with another patience.
pub async fn retry_fresh_for<T, F, Fut>(
    patience: Duration,
    not_yet: &[ErrorKind],
    mut step: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let start = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        match step().await {
            Err(e) if e.is(not_yet) && start.elapsed() + pause <= patience => {
                tracing::debug!("{e}: EC2 may not see a new id yet; trying again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::error::{Error, Resource};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn not_found() -> Error {
        Error::Aws {
            step: "opening ports (AuthorizeSecurityGroupIngress)".into(),
            code: "InvalidGroup.NotFound".into(),
            message: String::new(),
        }
    }

    #[tokio::test]
    async fn not_found_is_not_yet_until_the_patience_runs_out() {
        let calls = AtomicUsize::new(0);
        let got = retry_fresh(&[ErrorKind::NotFound(Resource::Group)], || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(not_found())
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(got.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        let calls = AtomicUsize::new(0);
        let patience = Duration::from_millis(700);
        let got: Result<()> = retry_fresh_for(
            patience,
            &[ErrorKind::NotFound(Resource::Group)],
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(not_found())
            },
        )
        .await;
        // Pauses of 200 and 400 ms fit in 700 ms (the second only on an idle machine), the
        // next (800 ms) never does.
        assert!(got.unwrap_err().is(&[ErrorKind::NotFound(Resource::Group)]));
        assert!((2..=3).contains(&calls.load(Ordering::SeqCst)));

        // Other codes, or none listed: one try.
        let calls = AtomicUsize::new(0);
        let _: Result<()> = retry_fresh(&[], || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(not_found())
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
