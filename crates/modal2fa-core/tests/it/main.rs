//! The services over in-memory adapters: every flow end to end, one module per flow,
//! one test binary.

mod admin;
mod crafted;
mod enrolment;
mod factor_budget;
mod hash_pool;
mod host_rows;
mod links;
mod lockout;
mod lockout_dos;
mod microsoft;
mod outbox;
mod passkey_answers;
mod passkey_list;
mod passkeys;
mod password;
mod passwordless;
mod second_factor;
mod sessions;
mod timing;
mod trusted_devices;
mod world;
