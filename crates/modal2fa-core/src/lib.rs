#![doc = include_str!("../README.md")]

pub mod client_ip;
pub mod crypto;
pub mod error;
pub mod lockout;
pub mod machine;
pub mod model;
pub mod parse;
pub mod password;
pub mod policy;
pub mod ports;
pub mod secret;
pub mod services;
pub mod settings;
pub mod system;
pub mod tokens;
pub mod totp;

#[cfg(test)]
pub(crate) mod testutil;

pub use error::{ServiceError, ServiceResult};
pub use machine::{LoginState, Outcome, Refusal};
pub use model::{AuthMethod, RequestContext, User, UserId};
pub use policy::{AuthPolicy, DefaultPolicy};
pub use ports::{PortError, PortResult};
pub use secret::{SecretString, ServerSecret};
pub use services::{Modal2fa, Ports};
pub use settings::Settings;

/// Re-exported so that a host implementing a port needs no dependency of its own at a
/// matching version: `#[modal2fa_core::async_trait]` and `modal2fa_core::time::OffsetDateTime`.
pub use async_trait::async_trait;
/// Re-exported (see [`async_trait`](macro@async_trait)).
pub use time;
