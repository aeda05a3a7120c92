//! Microsoft sign-in decisions on validated claims.

use std::sync::Arc;

use modal2fa_core::machine::{LoginState, Outcome, Refusal};
use modal2fa_core::model::AuthMethod;
use modal2fa_core::{DefaultPolicy, Modal2fa, ServerSecret, Settings};
use modal2fa_test_support::MemoryPorts;
use time::Duration;

use crate::world::*;

#[tokio::test]
async fn microsoft_sign_in_is_gated_by_tenant_guest_status_and_account() {
    use modal2fa_core::machine::MicrosoftRefusal;
    use modal2fa_core::ports::{Clock, ExternalClaims};
    let mem = MemoryPorts::new();
    let s = Settings {
        microsoft_tenant_id: Some("tenant-a".into()),
        ..settings()
    };
    let auth = Modal2fa::new(
        mem.ports.clone(),
        Arc::new(DefaultPolicy),
        s,
        &ServerSecret::new(vec![3; 32]).unwrap(),
    );
    let w = World { mem, auth };
    w.user("alice@example.com").await;
    let now = w.mem.clock.now();
    let claims = ExternalClaims {
        tenant_id: "tenant-a".into(),
        object_id: "oid-1".into(),
        issuer: "https://login.microsoftonline.com/tenant-a/v2.0".into(),
        preferred_username: Some("Alice@Example.com".into()),
        amr: vec!["pwd".into(), "mfa".into()],
        auth_time: Some(now - Duration::seconds(10)),
        ..Default::default()
    };
    let ms = |c: ExternalClaims| {
        let auth = w.auth.clone();
        async move {
            auth.login
                .complete_microsoft(&LoginState::Anonymous, &c, &ctx())
                .await
                .unwrap()
                .outcome
        }
    };
    assert_eq!(
        ms(claims.clone()).await,
        Outcome::SignedIn {
            method: AuthMethod::Microsoft
        }
    );
    assert_eq!(
        ms(ExternalClaims {
            tenant_id: "other".into(),
            ..claims.clone()
        })
        .await,
        Outcome::Refused(Refusal::Microsoft(MicrosoftRefusal::WrongTenant))
    );
    assert_eq!(
        ms(ExternalClaims {
            acct: Some(1),
            ..claims.clone()
        })
        .await,
        Outcome::Refused(Refusal::Microsoft(MicrosoftRefusal::Guest))
    );
    assert_eq!(
        ms(ExternalClaims {
            preferred_username: Some("eve@example.com".into()),
            ..claims.clone()
        })
        .await,
        Outcome::Refused(Refusal::Microsoft(MicrosoftRefusal::NoAccount))
    );
    // Without MFA the user, who has no factor and for whom 2FA is optional, signs in.
    assert_eq!(
        ms(ExternalClaims {
            amr: vec!["pwd".into()],
            ..claims
        })
        .await,
        Outcome::SignedIn {
            method: AuthMethod::Microsoft
        }
    );
}
