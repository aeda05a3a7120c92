//! [`TokioDelay`]: the [`Delay`] for hosts on tokio (actix-web runs on it). A failed
//! sign-in's answer waits for its floor on a tokio timer: the task yields, no thread is
//! blocked and no CPU is spent while it waits.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use modal2fa_core::ports::Delay;

/// Monotonic time from [`Instant`], sleeps on tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioDelay;

#[async_trait]
impl Delay for TokioDelay {
    fn now(&self) -> Instant {
        Instant::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sleep_lasts_at_least_what_was_asked_and_leaves_the_thread_free() {
        let started = TokioDelay.now();
        let other = tokio::spawn(async { 7 });
        TokioDelay.sleep(Duration::from_millis(20)).await;
        assert!(TokioDelay.now() - started >= Duration::from_millis(20));
        assert_eq!(other.await.unwrap(), 7);
    }
}
