//! The port implementations, one module per port (mirroring the contract suites in
//! `modal2fa-test-support::contracts`), over the shared codecs below.

mod audit;
mod factors;
mod lockout;
mod outbox;
mod sessions;
mod trusted_devices;
mod users;

use std::net::IpAddr;

use data_encoding::HEXLOWER;
use modal2fa_core::ports::{PortError, PortResult};

fn corrupt(what: &str) -> PortError {
    PortError::Unexpected(format!("stored {what} is not valid").into())
}

fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

fn unhex(s: &str) -> PortResult<Vec<u8>> {
    HEXLOWER.decode(s.as_bytes()).map_err(|_| corrupt("hash"))
}

fn ip(s: Option<String>) -> PortResult<Option<IpAddr>> {
    s.map(|v| v.parse().map_err(|_| corrupt("ip address")))
        .transpose()
}
