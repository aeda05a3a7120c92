//! The second-factor step of a pending login or a step-up: which user may be checked (the
//! attempt counted first on the second factor's own counter), and turning the verdict
//! into a report — a right code takes its count back, a wrong one also counts on the
//! address and, when it locks the second factor, tells the owner.

use super::login::StepFacts;
use super::{Context, LockView};
use crate::error::{ServiceError, ServiceResult};
use crate::lockout::{LockStatus, LockoutKey};
use crate::machine::{self, Effect, FactorVerdict, LoginEvent, LoginState};
use crate::model::{RequestContext, SecurityEventKind, User};
use crate::services::report::LoginReport;

impl Context {
    /// The user of a pending login or step-up and their lockout key; `None` when no login
    /// waits for a second factor.
    pub(super) async fn pending_user(
        &self,
        state: &LoginState,
    ) -> ServiceResult<Option<(User, LockoutKey)>> {
        let (id, key) = match state {
            LoginState::PendingSecondFactor(p) => (p.user_id, p.lockout_key.clone()),
            LoginState::StepUp(s) => (s.signed_in.user_id, s.lockout_key.clone()),
            _ => return Ok(None),
        };
        let user = self
            .ports
            .users
            .find_by_id(id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(ServiceError::NotSignedIn)?;
        Ok(Some((user, key)))
    }

    /// The user whose second factor may be checked now (with what counting the attempt
    /// read), or the verdict that stands without a check: locked, or no login waiting for
    /// a factor (which the machine refuses). A code attempt is counted before its check on
    /// the account's second-factor counter — the budget that bounds code guesses — and
    /// never on the password counter, which a pending login's password attempt keeps
    /// until a sign-in. A locked client address is refused too; a wrong code is counted on
    /// it after the check.
    pub(super) async fn checkable_user(
        &self,
        state: &LoginState,
        ctx: &RequestContext,
    ) -> ServiceResult<(Result<User, FactorVerdict>, LockView)> {
        let Some((user, key)) = self.pending_user(state).await? else {
            return Ok((Err(FactorVerdict::Rejected), LockView::default()));
        };
        let factor = LockoutKey::Factor(user.id);
        let ip = self.ip_key(ctx.ip);
        let mut view = self
            .reserve_attempt_checking(&[&factor], &ip.iter().collect::<Vec<_>>())
            .await?;
        if let LoginState::PendingSecondFactor(p) = state {
            view = view.knowing(&key, p.counted.clone());
        }
        Ok(match view.status {
            LockStatus::Locked { until } => (Err(FactorVerdict::Locked { until }), view),
            LockStatus::Open => (Ok(user), view),
        })
    }

    pub(super) async fn factor_step(
        &self,
        state: &LoginState,
        verdict: FactorVerdict,
        view: LockView,
        ctx: &RequestContext,
        factor: &str,
        checked: Option<User>,
    ) -> ServiceResult<LoginReport> {
        let was_checked = checked.is_some();
        let mut t = machine::step(
            state,
            LoginEvent::SecondFactor(verdict),
            self.now(),
            &self.settings.machine,
        );
        // The user was loaded to check the factor; load it only when it was not.
        let user = match (checked, t.state.user_id().or(state.user_id())) {
            (Some(u), _) => Some(u),
            (None, Some(id)) => self.ports.users.find_by_id(id).await?,
            (None, None) => None,
        };
        match verdict {
            // A right code was no failure: the attempt's own count is taken back (the
            // second-factor counter keeps every earlier failure; no sign-in resets it).
            FactorVerdict::Accepted(_) => {
                let settle = view.reserved_keys().cloned().map(Effect::Settle);
                t.effects.splice(0..0, settle.collect::<Vec<_>>());
            }
            // A wrong code also counts on the client address; the one that locks the
            // second factor tells the owner, once a round.
            FactorVerdict::Rejected | FactorVerdict::Replayed => {
                if was_checked && let Some(ip) = self.ip_key(ctx.ip) {
                    t.effects.push(Effect::RecordFailure(ip));
                }
                if let Some(u) = &user {
                    let key = LockoutKey::Factor(u.id);
                    let rule = self.settings.lockout.rule_for(&key);
                    if view
                        .counted(&key)
                        .is_some_and(|e| e.failures == rule.threshold)
                    {
                        self.notify(u, SecurityEventKind::SecondFactorFailures, ctx)
                            .await;
                    }
                }
            }
            FactorVerdict::Locked { .. } => {}
        }
        let facts = StepFacts {
            view,
            user: user.as_ref(),
            detail: Some(factor.to_owned()),
            ..StepFacts::default()
        };
        let report = self.finish(t, facts, ctx).await?;
        // The second step is done: the "not completed" alert is withdrawn.
        if let LoginState::PendingSecondFactor(p) = state
            && report.state.signed_in().is_some()
        {
            self.withdraw(&super::outbox::second_factor_alert_key(p))
                .await;
        }
        Ok(report)
    }
}
