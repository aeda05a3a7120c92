//! Contract suites: the behaviour every adapter of a port must show, written once and run
//! against each adapter (`run_*_contract(factory).await` in the adapter's own tests).
//!
//! A factory returns a fresh, empty store each time it is called; every case gets its own.

mod factors;
mod lockout;
mod misc;
mod outbox;
mod sessions;
mod trusted;
mod users;

use std::future::Future;

pub use factors::run_factor_store_contract;
pub use lockout::run_lockout_store_contract;
pub use misc::{
    recipient, run_audit_log_contract, run_clock_contract, run_notifier_contract,
    run_secret_generator_contract,
};
pub use outbox::run_outbox_contract;
pub use sessions::run_session_store_contract;
pub use trusted::run_trusted_device_store_contract;
pub use users::{run_user_store_contract, user_differences};

use time::OffsetDateTime;

/// The instant every suite treats as "now".
pub const NOW: OffsetDateTime = time::macros::datetime!(2026-05-01 10:00 UTC);

/// Runs each named case with a fresh store from `make`, reporting the case that failed.
async fn run_cases<S, F, Fut>(suite: &str, make: &F, cases: Vec<(&'static str, Case<S>)>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    for (name, case) in cases {
        let store = make().await;
        let result = case(store).await;
        if let Err(msg) = result {
            panic!("{suite} contract, case \"{name}\": {msg}");
        }
    }
}

type Case<S> = fn(S) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// `ensure!(cond, "message {}", x)` returns an error from a case.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
pub(crate) use ensure;

/// Wraps an `async fn(S) -> Result<(), String>` as a [`Case`].
macro_rules! case {
    ($name:literal, $f:path) => {
        ($name, (|s| Box::pin($f(s))) as $crate::contracts::Case<_>)
    };
}
pub(crate) use case;

pub(crate) fn e<E: std::fmt::Debug>(err: E) -> String {
    format!("unexpected error: {err:?}")
}
