//! The host application's tests: its users table against modal2fa's `UserStore`
//! contract, and its pages driven as a browser would with modal2fa's test client.

mod contract;
mod host;
mod pages;
