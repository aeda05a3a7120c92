//! Ports: the traits adapters implement. Every trait is object safe and used as
//! `Arc<dyn Port>`. Each contract below is executed against every adapter by the suites in
//! `modal2fa-test-support`.

use std::net::IpAddr;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::lockout::{LockoutEntry, LockoutKey, LockoutRule};
use crate::model::{
    AuditEvent, Email, FactorCounts, NewUser, NewWebAuthnCredential, Page, SessionRecord,
    TotpDevice, TrustedDevice, User, UserId, Username, WebAuthnCredential,
};
use crate::secret::SecretString;

mod notify;
pub use notify::{
    NewOutboxMessage, Notification, Notifier, Outbox, OutboxMessage, OutboxOutcome, Recipient,
};

/// Any error, boxed, as the cause of an infrastructure failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which uniqueness rule a write broke. Adapters map their database's constraint to it
/// at the call that can break it; no driver text travels with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConflictKind {
    /// The username is taken (usernames are unique case-insensitively).
    Username,
    /// The WebAuthn credential id is registered already (to anyone).
    WebAuthnCredential,
    /// A trusted device with this id exists.
    TrustedDevice,
    /// A session with this id hash exists.
    Session,
    /// A lockout counter for this key exists.
    LockoutKey,
    /// A rule the adapter could not attribute.
    Other,
}

impl ConflictKind {
    /// A stable name for logs (`username`, `webauthn_credential`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::WebAuthnCredential => "webauthn_credential",
            Self::TrustedDevice => "trusted_device",
            Self::Session => "session",
            Self::LockoutKey => "lockout_key",
            Self::Other => "other",
        }
    }
}

impl PortError {
    /// A row that cannot be read (see [`PortError::Unreadable`]).
    pub fn unreadable(row: impl std::fmt::Display, problem: crate::parse::ParseError) -> Self {
        Self::Unreadable {
            row: row.to_string(),
            problem,
        }
    }
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can go wrong in an adapter, mapped at its boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortError {
    /// A uniqueness rule was violated (a duplicate username, credential id, …).
    #[error("conflict on {0}")]
    Conflict(ConflictKind),
    /// The row to change does not exist.
    #[error("not found")]
    NotFound,
    /// The backing service cannot be reached; retrying later may work.
    #[error("service unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored row that the model cannot represent — a host's row outside the rules of
    /// [`Username::from_stored`] or [`Email::from_stored`], say. `row` names it (table and
    /// key, never a value of it); sign-in treats the account as one that cannot sign in
    /// and logs this, instead of failing the request.
    #[error("{row} cannot be read: {problem}")]
    Unreadable {
        /// The row: table and key, e.g. `host_accounts id=42`.
        row: String,
        /// What is wrong with which field.
        problem: crate::parse::ParseError,
    },
    /// Anything else.
    #[error("unexpected adapter failure")]
    Unexpected(#[source] BoxError),
}

/// Result of a port call.
pub type PortResult<T> = Result<T, PortError>;

/// The current time. Core code never reads the system clock directly.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// Monotonic time and asynchronous waiting: how the core holds a failed sign-in's answer
/// back to its floor (see `Settings::password_answer_floor`) without a runtime of its own
/// and without blocking a thread.
///
/// Contract: `now` is monotonic (never the wall clock, which may jump); `sleep(d)`
/// completes no sooner than `d` after it was called, and waits on a timer of the host's
/// runtime — it never blocks the thread that polls it. A test implementation may stand
/// still, record `d` and return at once.
#[async_trait]
pub trait Delay: Send + Sync {
    /// Now, on a monotonic clock.
    fn now(&self) -> std::time::Instant;
    /// Completes after `duration` (see the contract).
    async fn sleep(&self, duration: std::time::Duration);
}

/// Cryptographically secure randomness. Core code never reads an ambient RNG.
pub trait SecretGenerator: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// A unit of CPU-bound work for a [`HashPool`]: a password hash or verification.
pub type HashJob = Box<dyn FnOnce() -> HashOutput + Send + 'static>;

/// What a [`HashJob`] returned, type-erased; [`run_hashing`] gives it its type back.
pub type HashOutput = Box<dyn std::any::Any + Send + 'static>;

/// Where password hashing runs, so that Argon2id and PBKDF2 never occupy the threads that
/// poll async tasks (a login flood would otherwise stall every route on them, the host
/// application's included).
///
/// Contract:
/// - **Bounded concurrency.** At most `workers` jobs run at once, and `workers` is at most
///   the number of cores: hashing is CPU-bound, more threads only add memory (Argon2id
///   takes 19 MiB per hash by default) and latency.
/// - **Bounded queue, failing fast.** At most `queue` accepted jobs wait for a worker. A
///   job submitted while `workers + queue` are in flight is refused at once with
///   [`PortError::Unavailable`] and never runs; `run` never waits for room. The services
///   turn that into [`crate::ServiceError::Unavailable`] (the web layer: 503 with
///   `Retry-After`).
/// - **Off the executor.** Awaiting `run` does not block the thread that polls it: the
///   job runs on a thread of the pool's own. (An inline implementation for tests and
///   single-threaded tools may run it on the calling thread.)
/// - **Abandoned jobs keep their slot.** An accepted job runs to completion even when the
///   caller stops waiting (a client that hangs up), and holds its worker until then, so
///   dropped requests cannot push more hashing than `workers` onto the machine.
/// - A job that panics is [`PortError::Unexpected`].
///
/// Jobs carry passwords (as [`SecretString`], which zeroes itself when dropped, wherever
/// that happens); an implementation never logs or inspects them.
#[async_trait]
pub trait HashPool: Send + Sync {
    /// Runs `job` on the pool (see the contract) and returns what it returned.
    async fn run(&self, job: HashJob) -> PortResult<HashOutput>;
}

/// Runs `work` on `pool` and returns its result with its type.
pub async fn run_hashing<R: Send + 'static>(
    pool: &dyn HashPool,
    work: impl FnOnce() -> R + Send + 'static,
) -> PortResult<R> {
    let out = pool
        .run(Box::new(move || Box::new(work()) as HashOutput))
        .await?;
    out.downcast::<R>()
        .map(|r| *r)
        .map_err(|_| PortError::Unexpected("a hash pool returned another job's output".into()))
}

/// Accounts — possibly the host application's own table.
///
/// modal2fa reads what [`User`] carries and writes only what it owns, each by a targeted
/// method: the password hash (compare-and-set), the last sign-in, the active flag, and a
/// new account. It never writes a whole row, so a host's columns and concurrent edits are
/// never overwritten. The fields it reads, and so the whole of what a store must keep
/// (`modal2fa-test-support`'s contract checks exactly these): the username and the email
/// as given; the name as [`User::display_name`] shows it (a store with one full-name
/// column may return it as `first_name` and an empty `last_name`); the password hash; the
/// active and superuser flags; the creation, last sign-in and password-change times.
///
/// Contract: usernames are unique case-insensitively ([`PortError::Conflict`] on create);
/// lookups by username and email compare the canonical forms (NFKC and case fold, see
/// [`crate::model::canonical_form`]) byte for byte, never by a looser collation; ids are
/// assigned by the store and never reused. `replace_password` sets the hash (and
/// `password_changed_at`) only if the stored hash is still `expected` — atomically, so of
/// concurrent uses of one reset link exactly one wins. A row that cannot be represented
/// (a name outside [`Username::from_stored`]) is [`PortError::Unreadable`] naming the
/// row, never a panic.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user with this id.
    async fn find_by_id(&self, id: UserId) -> PortResult<Option<User>>;
    /// The user with this username, by its canonical form.
    async fn find_by_username(&self, username: &Username) -> PortResult<Option<User>>;
    /// The users with this email, by its canonical form, oldest first.
    async fn find_by_email(&self, email: &Email) -> PortResult<Vec<User>>;
    /// Creates a user and returns it with its id.
    async fn create(&self, user: NewUser) -> PortResult<User>;
    /// Activates or deactivates an account (one statement, no read); `false` if there is
    /// no such user.
    async fn set_active(&self, id: UserId, active: bool) -> PortResult<bool>;
    /// Sets the user's last sign-in (one statement, no read); missing ids are ignored.
    async fn record_login(&self, id: UserId, at: OffsetDateTime) -> PortResult<()>;
    /// Compare-and-set of the password hash (see the contract); `true` if it was replaced.
    async fn replace_password(
        &self,
        id: UserId,
        expected: Option<&str>,
        new_hash: &str,
        at: OffsetDateTime,
    ) -> PortResult<bool>;
    /// Users ordered by id.
    async fn list(&self, page: Page) -> PortResult<Vec<User>>;
    /// Number of users.
    async fn count(&self) -> PortResult<u64>;
}

/// Second factors: TOTP devices, WebAuthn credentials, recovery codes.
///
/// Contract:
/// - `advance_totp_step(device, step)` sets the device's last used step to `step` and
///   returns `true` only if the stored step is absent or smaller — atomically, so of any
///   number of concurrent calls with the same step exactly one returns `true`.
/// - `confirm_totp(device, step)` marks an unconfirmed device confirmed with last step
///   `step`, deletes the user's other TOTP devices, and returns `true`; it returns `false`
///   (changing nothing) if the device is missing or already confirmed.
/// - WebAuthn credential ids are unique across all users ([`PortError::Conflict`]).
/// - `consume_recovery_code` deletes the matching code and returns `true` at most once per
///   code, even under concurrency; `replace_recovery_codes` removes the previous set.
#[async_trait]
pub trait FactorStore: Send + Sync {
    /// The user's TOTP devices, confirmed or not, oldest first.
    async fn totp_devices(&self, user: UserId) -> PortResult<Vec<TotpDevice>>;
    /// Adds an unconfirmed device holding an encrypted secret.
    async fn add_totp(
        &self,
        user: UserId,
        encrypted_secret: Vec<u8>,
        at: OffsetDateTime,
    ) -> PortResult<TotpDevice>;
    /// Confirms a device (see the contract).
    async fn confirm_totp(&self, device: i64, step: i64) -> PortResult<bool>;
    /// Compare-and-set of the last used step (see the contract).
    async fn advance_totp_step(&self, device: i64, step: i64) -> PortResult<bool>;
    /// Deletes every TOTP device of the user; returns how many.
    async fn delete_totp(&self, user: UserId) -> PortResult<u64>;
    /// Deletes unconfirmed TOTP devices created before `before`; returns how many.
    async fn purge_unconfirmed_totp(&self, before: OffsetDateTime) -> PortResult<u64>;
    /// The user's WebAuthn credentials, oldest first.
    async fn webauthn_credentials(&self, user: UserId) -> PortResult<Vec<WebAuthnCredential>>;
    /// The credential with this authenticator credential id, whoever owns it.
    async fn find_webauthn(&self, credential_id: &[u8]) -> PortResult<Option<WebAuthnCredential>>;
    /// Registers a credential.
    async fn add_webauthn(
        &self,
        credential: NewWebAuthnCredential,
    ) -> PortResult<WebAuthnCredential>;
    /// Records a use: new counter, backup state, serialized credential, time.
    async fn update_webauthn_use(
        &self,
        id: i64,
        sign_count: u32,
        backup_state: bool,
        credential: String,
        at: OffsetDateTime,
    ) -> PortResult<bool>;
    /// Renames one of the user's credentials; `false` if not theirs.
    async fn rename_webauthn(&self, user: UserId, id: i64, name: &str) -> PortResult<bool>;
    /// Deletes one of the user's credentials; `false` if not theirs.
    async fn delete_webauthn(&self, user: UserId, id: i64) -> PortResult<bool>;
    /// Deletes all of the user's credentials; returns how many.
    async fn delete_all_webauthn(&self, user: UserId) -> PortResult<u64>;
    /// Replaces the user's recovery codes with these keyed hashes.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: Vec<Vec<u8>>,
        at: OffsetDateTime,
    ) -> PortResult<()>;
    /// Uses up one code (see the contract).
    async fn consume_recovery_code(&self, user: UserId, hash: &[u8]) -> PortResult<bool>;
    /// How many unused codes the user has.
    async fn count_recovery_codes(&self, user: UserId) -> PortResult<u64>;
    /// How many confirmed TOTP devices and WebAuthn credentials the user has, in one
    /// round trip (what sign-in asks before deciding whether a second factor is due).
    async fn count_factors(&self, user: UserId) -> PortResult<FactorCounts>;
}

/// A trusted device's key rotation at a sign-in (see [`TrustedDeviceStore::rotate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation<'a> {
    /// The device's public id.
    pub id: &'a str,
    /// Its owner: a device of another user is never rotated.
    pub user: UserId,
    /// The hash the stored key must still have.
    pub expected_hash: &'a [u8],
    /// The new key's hash.
    pub new_hash: Vec<u8>,
    /// The device must have been used after this instant (else it has expired).
    pub used_after: OffsetDateTime,
    /// The device must have been trusted after this instant (its absolute lifetime).
    pub created_after: OffsetDateTime,
    /// Now: the use recorded.
    pub at: OffsetDateTime,
    /// Where from.
    pub ip: Option<IpAddr>,
    /// With which browser.
    pub user_agent: &'a str,
}

/// Trusted devices.
///
/// Contract: `rotate` replaces the key hash with `new_hash` (keeping the replaced hash as
/// `previous_key_hash`) and records the use, only if the device exists, belongs to
/// `user`, was last used after `used_after`, was created after `created_after` and its
/// stored hash equals `expected_hash` —
/// atomically, so of concurrent rotations from one value exactly one succeeds; one
/// statement for the common case of a current key. `list` is ordered by last use, most
/// recent first.
#[async_trait]
pub trait TrustedDeviceStore: Send + Sync {
    /// The user's devices, most recently used first.
    async fn list(&self, user: UserId) -> PortResult<Vec<TrustedDevice>>;
    /// The device with this public id.
    async fn find(&self, id: &str) -> PortResult<Option<TrustedDevice>>;
    /// Stores a new device ([`PortError::Conflict`] on a duplicate id).
    async fn insert(&self, device: TrustedDevice) -> PortResult<()>;
    /// Compare-and-set rotation (see the contract).
    async fn rotate(&self, rotation: Rotation<'_>) -> PortResult<bool>;
    /// Deletes one of the user's devices; `false` if not theirs.
    async fn delete(&self, user: UserId, id: &str) -> PortResult<bool>;
    /// Deletes all of the user's devices; returns how many.
    async fn delete_all(&self, user: UserId) -> PortResult<u64>;
}

/// Lockout counters.
///
/// Contract: `record_failure(key, seen, …)` applies [`crate::lockout::apply_failure`] to
/// the stored entry and stores the result atomically: `n` concurrent calls from any
/// number of processes leave the counter exactly `n` higher, and each returns the entry
/// as its own call left it. `seen` is the caller's latest read of the entry (`None`: it
/// had none); the store applies the failure to it by compare-and-set on
/// [`LockoutEntry::revision`] — one write when nobody else wrote in between — and
/// re-reads only when it lost a race. Every stored write changes the revision.
/// `purge_expired` deletes the entries whose last failure and lock end (if any) are both
/// before `cutoff` (a cutoff is always at or before `now`). `list` is ordered by last
/// failure, newest first. `settle` takes back one counted failure (see its doc); `n`
/// concurrent failures and `k` settlements leave the counter exactly `n − k` higher.
#[async_trait]
pub trait LockoutStore: Send + Sync {
    /// The entry for a key.
    async fn get(&self, key: &LockoutKey) -> PortResult<Option<LockoutEntry>>;
    /// The entries of those `keys` that have one, in any order (one round trip).
    async fn get_many(&self, keys: &[&LockoutKey]) -> PortResult<Vec<LockoutEntry>>;
    /// Counts one failure on top of `seen` (see the contract).
    async fn record_failure(
        &self,
        key: &LockoutKey,
        seen: Option<&LockoutEntry>,
        now: OffsetDateTime,
        rule: LockoutRule,
    ) -> PortResult<LockoutEntry>;
    /// Takes back one failure counted before a check that turned out fine: when
    /// `reserved` (the entry `record_failure` returned) was written right on top of
    /// `before` (the entry that call was given; `None`: no row) and is still what is
    /// stored, the entry becomes `before` again (the row goes for `None`); otherwise —
    /// others counted in between or since — one failure is removed from the stored
    /// entry, locks kept.
    /// Atomic, like `record_failure`.
    async fn settle(
        &self,
        key: &LockoutKey,
        reserved: &LockoutEntry,
        before: Option<&LockoutEntry>,
    ) -> PortResult<()>;
    /// Removes a key's entry, lifting its lock; `false` if there was none.
    async fn clear(&self, key: &LockoutKey) -> PortResult<bool>;
    /// A page of entries.
    async fn list(&self, page: Page) -> PortResult<Vec<LockoutEntry>>;
    /// Deletes stale entries; returns how many.
    async fn purge_expired(&self, cutoff: OffsetDateTime) -> PortResult<u64>;
    /// Records that `account` (a canonical username) signed in from the address bucket
    /// `bucket` at `at`: an upsert keeping the latest time.
    async fn remember_client(
        &self,
        account: &str,
        bucket: &str,
        at: OffsetDateTime,
    ) -> PortResult<()>;
    /// Whether `account` signed in from `bucket` after `since`.
    async fn knows_client(
        &self,
        account: &str,
        bucket: &str,
        since: OffsetDateTime,
    ) -> PortResult<bool>;
    /// Forgets the addresses last signed in from before `before`; returns how many.
    async fn forget_clients(&self, before: OffsetDateTime) -> PortResult<u64>;
}

/// Server-side sessions, keyed by the SHA-256 of the session id.
///
/// Contract: `save` inserts only (an existing id is a conflict); `renew` atomically moves
/// an existing session to its new id; `replace` and `touch` change an existing session
/// only — none of them ever brings back a session that was deleted;
/// `list_active` returns sessions with a user whose expiry is after `now`, newest first;
/// `delete_for_user` ends every session of a user at once; `purge_expired` deletes
/// sessions whose expiry is at or before `now`.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The session with this id hash, expired or not.
    async fn load(&self, id_hash: &str) -> PortResult<Option<SessionRecord>>;
    /// Stores a new session. Never replaces: a row with the same id hash already there is
    /// [`PortError::Conflict`]`(`[`ConflictKind::Session`]`)`. An ended session is never
    /// written back by this or any other method.
    async fn save(&self, record: &SessionRecord) -> PortResult<()>;
    /// Moves the session stored under `old_hash` to `record` (a new id and contents for the
    /// same session) atomically. `false`, storing nothing, when there is no row under
    /// `old_hash` — the session was ended meanwhile and stays ended.
    async fn renew(&self, old_hash: &str, record: &SessionRecord) -> PortResult<bool>;
    /// Replaces the stored session that has `record`'s id hash, in one atomic conditional
    /// write; `false`, storing nothing, when there is none (it was ended meanwhile).
    async fn replace(&self, record: &SessionRecord) -> PortResult<bool>;
    /// Marks a session seen at `now` in one atomic write: its expiry becomes `idle_expiry`,
    /// but never later than its creation plus `absolute_timeout`. `false`, storing nothing,
    /// when there is no such session.
    async fn touch(
        &self,
        id_hash: &str,
        now: OffsetDateTime,
        idle_expiry: OffsetDateTime,
        absolute_timeout: time::Duration,
    ) -> PortResult<bool>;
    /// Deletes one session; `false` if there was none.
    async fn delete(&self, id_hash: &str) -> PortResult<bool>;
    /// A page of signed-in, unexpired sessions, newest first.
    async fn list_active(&self, now: OffsetDateTime, page: Page) -> PortResult<Vec<SessionRecord>>;
    /// Deletes every session of a user; returns how many.
    async fn delete_for_user(&self, user: UserId) -> PortResult<u64>;
    /// Deletes every session of `user` established with the passkey `passkey` (its store
    /// id, [`SessionRecord::passkey_id`]); returns how many.
    async fn delete_for_passkey(&self, user: UserId, passkey: i64) -> PortResult<u64>;
    /// Deletes expired sessions; returns how many.
    async fn purge_expired(&self, now: OffsetDateTime) -> PortResult<u64>;
}

/// Claims of an external sign-in (Microsoft Entra), already validated by the adapter
/// (signature, issuer, audience, expiry, nonce).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExternalClaims {
    /// `tid`: the tenant that issued the token.
    pub tenant_id: String,
    /// `oid`: the user's object id in that tenant.
    pub object_id: String,
    /// `iss`.
    pub issuer: String,
    /// `preferred_username`.
    pub preferred_username: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `acct`: 0 member, 1 guest.
    pub acct: Option<u8>,
    /// `idp`: the identity provider that authenticated a guest.
    pub idp: Option<String>,
    /// `amr`: authentication methods.
    pub amr: Vec<String>,
    /// `auth_time`.
    pub auth_time: Option<OffsetDateTime>,
}

/// The start of an external sign-in: where to send the browser, and what to keep in the
/// session to finish it.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The provider URL to redirect to.
    pub url: String,
    /// `state`, compared on return.
    pub state: SecretString,
    /// `nonce`, compared with the ID token.
    pub nonce: SecretString,
    /// PKCE verifier.
    pub pkce_verifier: SecretString,
}

/// An external identity provider (Microsoft Entra ID by default).
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Starts an authorization-code flow with state, nonce and PKCE.
    async fn authorization_request(&self, redirect_uri: &str) -> PortResult<AuthorizationRequest>;
    /// Exchanges the code and validates the ID token against `nonce`.
    async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &SecretString,
        nonce: &SecretString,
        redirect_uri: &str,
    ) -> PortResult<ExternalClaims>;
}

/// The audit log. Contract: `record` appends; `list` returns the newest first.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an event.
    async fn record(&self, event: AuditEvent) -> PortResult<()>;
    /// A page of events, newest first.
    async fn list(&self, page: Page) -> PortResult<Vec<AuditEvent>>;
}
