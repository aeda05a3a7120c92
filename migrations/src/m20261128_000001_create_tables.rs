//! The initial schema: every table and the index behind every lookup the stores make.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    #[sea_orm(iden = "modal2fa_users")]
    Table,
    Id,
    Username,
    UsernameCanonical,
    Email,
    EmailCanonical,
    FirstName,
    LastName,
    PasswordHash,
    IsActive,
    IsStaff,
    IsSuperuser,
    CreatedAt,
    LastLogin,
    PasswordChangedAt,
}

#[derive(DeriveIden)]
enum TotpDevices {
    #[sea_orm(iden = "modal2fa_totp_devices")]
    Table,
    Id,
    UserId,
    EncryptedSecret,
    Confirmed,
    LastUsedStep,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebauthnCredentials {
    #[sea_orm(iden = "modal2fa_webauthn_credentials")]
    Table,
    Id,
    UserId,
    Name,
    CredentialId,
    CredentialIdHash,
    Credential,
    SignCount,
    Transports,
    BackupEligible,
    BackupState,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    #[sea_orm(iden = "modal2fa_recovery_codes")]
    Table,
    Id,
    UserId,
    CodeHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TrustedDevices {
    #[sea_orm(iden = "modal2fa_trusted_devices")]
    Table,
    Id,
    UserId,
    Name,
    KeyHash,
    PreviousKeyHash,
    CreatedAt,
    LastUsedAt,
    LastIp,
    UserAgent,
}

#[derive(DeriveIden)]
enum Lockout {
    #[sea_orm(iden = "modal2fa_lockout")]
    Table,
    Key,
    Failures,
    LockCount,
    LastFailureAt,
    LockedUntil,
    Version,
}

#[derive(DeriveIden)]
enum Sessions {
    #[sea_orm(iden = "modal2fa_sessions")]
    Table,
    IdHash,
    UserId,
    Method,
    Ip,
    UserAgent,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    Data,
}

#[derive(DeriveIden)]
enum AuditEvents {
    #[sea_orm(iden = "modal2fa_audit_events")]
    Table,
    Id,
    At,
    Kind,
    UserId,
    Username,
    Ip,
    UserAgent,
    Detail,
}

fn index<T: IntoIden + 'static, C: IntoIden + 'static>(
    name: &str,
    table: T,
    cols: Vec<C>,
) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table).if_not_exists();
    for c in cols {
        i.col(c);
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .if_not_exists()
                .col(big_pk_auto(Users::Id))
                .col(string_len(Users::Username, 150))
                .col(string_len_uniq(Users::UsernameCanonical, 150))
                .col(string_len_null(Users::Email, 254))
                .col(string_len_null(Users::EmailCanonical, 254))
                .col(string_len(Users::FirstName, 150))
                .col(string_len(Users::LastName, 150))
                .col(text_null(Users::PasswordHash))
                .col(boolean(Users::IsActive))
                .col(boolean(Users::IsStaff))
                .col(boolean(Users::IsSuperuser))
                .col(big_integer(Users::CreatedAt))
                .col(big_integer_null(Users::LastLogin))
                .col(big_integer_null(Users::PasswordChangedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "modal2fa_users_email",
            Users::Table,
            vec![Users::EmailCanonical],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(TotpDevices::Table)
                .if_not_exists()
                .col(big_pk_auto(TotpDevices::Id))
                .col(big_integer(TotpDevices::UserId))
                .col(blob(TotpDevices::EncryptedSecret))
                .col(boolean(TotpDevices::Confirmed))
                .col(big_integer_null(TotpDevices::LastUsedStep))
                .col(big_integer(TotpDevices::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "modal2fa_totp_devices_user",
            TotpDevices::Table,
            vec![TotpDevices::UserId],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(WebauthnCredentials::Table)
                .if_not_exists()
                .col(big_pk_auto(WebauthnCredentials::Id))
                .col(big_integer(WebauthnCredentials::UserId))
                .col(string_len(WebauthnCredentials::Name, 64))
                .col(blob(WebauthnCredentials::CredentialId))
                .col(string_len_uniq(WebauthnCredentials::CredentialIdHash, 64))
                .col(text(WebauthnCredentials::Credential))
                .col(big_integer(WebauthnCredentials::SignCount))
                .col(text(WebauthnCredentials::Transports))
                .col(boolean(WebauthnCredentials::BackupEligible))
                .col(boolean(WebauthnCredentials::BackupState))
                .col(big_integer(WebauthnCredentials::CreatedAt))
                .col(big_integer_null(WebauthnCredentials::LastUsedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "modal2fa_webauthn_user",
            WebauthnCredentials::Table,
            vec![WebauthnCredentials::UserId],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(RecoveryCodes::Table)
                .if_not_exists()
                .col(big_pk_auto(RecoveryCodes::Id))
                .col(big_integer(RecoveryCodes::UserId))
                .col(string_len(RecoveryCodes::CodeHash, 64))
                .col(big_integer(RecoveryCodes::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "modal2fa_recovery_user_code",
            RecoveryCodes::Table,
            vec![RecoveryCodes::UserId, RecoveryCodes::CodeHash],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(TrustedDevices::Table)
                .if_not_exists()
                .col(string_len(TrustedDevices::Id, 64).primary_key())
                .col(big_integer(TrustedDevices::UserId))
                .col(string_len(TrustedDevices::Name, 64))
                .col(string_len(TrustedDevices::KeyHash, 64))
                .col(string_len_null(TrustedDevices::PreviousKeyHash, 64))
                .col(big_integer(TrustedDevices::CreatedAt))
                .col(big_integer(TrustedDevices::LastUsedAt))
                .col(string_len_null(TrustedDevices::LastIp, 45))
                .col(text(TrustedDevices::UserAgent))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "modal2fa_trusted_devices_user",
            TrustedDevices::Table,
            vec![TrustedDevices::UserId],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Lockout::Table)
                .if_not_exists()
                .col(string_len(Lockout::Key, 320).primary_key())
                .col(integer(Lockout::Failures))
                .col(integer(Lockout::LockCount))
                .col(big_integer(Lockout::LastFailureAt))
                .col(big_integer_null(Lockout::LockedUntil))
                .col(big_integer(Lockout::Version))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "modal2fa_lockout_last_failure",
            Lockout::Table,
            vec![Lockout::LastFailureAt],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .if_not_exists()
                .col(string_len(Sessions::IdHash, 64).primary_key())
                .col(big_integer_null(Sessions::UserId))
                .col(string_len_null(Sessions::Method, 16))
                .col(string_len_null(Sessions::Ip, 45))
                .col(text(Sessions::UserAgent))
                .col(big_integer(Sessions::CreatedAt))
                .col(big_integer(Sessions::LastSeenAt))
                .col(big_integer(Sessions::ExpiresAt))
                .col(text(Sessions::Data))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "modal2fa_sessions_user",
            Sessions::Table,
            vec![Sessions::UserId],
        ))
        .await?;
        m.create_index(index(
            "modal2fa_sessions_expires",
            Sessions::Table,
            vec![Sessions::ExpiresAt],
        ))
        .await?;
        m.create_index(index(
            "modal2fa_sessions_created",
            Sessions::Table,
            vec![Sessions::CreatedAt],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .if_not_exists()
                .col(big_pk_auto(AuditEvents::Id))
                .col(big_integer(AuditEvents::At))
                .col(string_len(AuditEvents::Kind, 40))
                .col(big_integer_null(AuditEvents::UserId))
                .col(string_len_null(AuditEvents::Username, 320))
                .col(string_len_null(AuditEvents::Ip, 45))
                .col(text_null(AuditEvents::UserAgent))
                .col(text_null(AuditEvents::Detail))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "modal2fa_audit_at",
            AuditEvents::Table,
            vec![AuditEvents::At],
        ))
        .await?;
        m.create_index(index(
            "modal2fa_audit_user",
            AuditEvents::Table,
            vec![AuditEvents::UserId],
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // The tables this migration created (later ones are dropped by their own).
        for t in crate::TABLES[..8].iter().rev() {
            m.drop_table(Table::drop().table(Alias::new(*t)).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
