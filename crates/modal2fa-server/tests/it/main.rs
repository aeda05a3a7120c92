//! The `modal2fa` binary end to end, one test binary: the command line and `serve`
//! (`cli`), and mail through a real SMTP server (`mail`).

mod cli;
mod mail;
