//! Roles: `CREATE ROLE` / `CREATE USER`, `ALTER ROLE`, `DROP ROLE`, and
//! passwords kept as PostgreSQL keeps them for SCRAM-SHA-256: a verifier
//! (`SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>`) from which the
//! server checks a client's proof, and from which the password cannot be
//! read back.
//!
//! tempora has no privileges yet: every role that may log in can do
//! everything; `SUPERUSER` and `LOGIN` are recorded and shown in `pg_roles`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use datafusion::sql::sqlparser::ast::{self, Expr, Password, RoleOption};
use ring::rand::SecureRandom;
use ring::{digest, hmac, pbkdf2};

use tempora_catalog::{RoleDef, SUPERUSER};

use crate::names::ident;
use crate::session::{Output, Session};
use crate::{Error, Result, SqlState};

/// PostgreSQL's default iteration count for SCRAM-SHA-256.
pub const SCRAM_ITERATIONS: u32 = 4096;

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, message).as_ref().to_vec()
}

/// The SCRAM-SHA-256 verifier of `password` with a fresh random salt.
pub fn scram_verifier(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::not_supported("no source of random numbers for a password salt"))?;
    Ok(verifier_with_salt(password, &salt, SCRAM_ITERATIONS))
}

fn verifier_with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    // SASLprep, as PostgreSQL normalises passwords (falling back to the
    // password as given, as it does).
    let normalized = stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| password.to_owned());
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).unwrap_or(std::num::NonZeroU32::MIN),
        salt,
        normalized.as_bytes(),
        &mut salted,
    );
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, &client_key);
    let server_key = hmac_sha256(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key)
    )
}

/// A stored verifier's parts: salt, iterations, StoredKey, ServerKey.
pub struct ScramVerifier {
    pub salt: Vec<u8>,
    pub iterations: usize,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// Reads a verifier written by [`scram_verifier`] (or by PostgreSQL).
pub fn parse_verifier(verifier: &str) -> Option<ScramVerifier> {
    let rest = verifier.strip_prefix("SCRAM-SHA-256$")?;
    let (parameters, keys) = rest.split_once('$')?;
    let (iterations, salt) = parameters.split_once(':')?;
    let (stored_key, server_key) = keys.split_once(':')?;
    Some(ScramVerifier {
        salt: STANDARD.decode(salt).ok()?,
        iterations: iterations.parse().ok()?,
        stored_key: STANDARD.decode(stored_key).ok()?,
        server_key: STANDARD.decode(server_key).ok()?,
    })
}

fn password_text(password: &Password) -> Result<Option<String>> {
    match password {
        Password::NullPassword => Ok(None),
        Password::Password(Expr::Value(value)) => match &value.value {
            ast::Value::SingleQuotedString(s) => Ok(Some(s.clone())),
            _ => Err(Error::Syntax {
                message: "a password must be a string constant".to_owned(),
            }),
        },
        Password::Password(_) => Err(Error::Syntax {
            message: "a password must be a string constant".to_owned(),
        }),
    }
}

/// The verifier to store for a password: one PostgreSQL already made is
/// kept as given, as PostgreSQL does; an empty password means none.
fn verifier_of(password: &Password) -> Result<Option<String>> {
    match password_text(password)? {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) if parse_verifier(&text).is_some() => Ok(Some(text)),
        Some(text) => scram_verifier(&text).map(Some),
    }
}

fn role_exists(name: &str) -> Error {
    Error::Transaction {
        code: SqlState::DuplicateObject,
        message: format!("role \"{name}\" already exists"),
    }
}

fn no_role(name: &str) -> Error {
    Error::Transaction {
        code: SqlState::UndefinedObject,
        message: format!("role \"{name}\" does not exist"),
    }
}

/// `CREATE ROLE` (and `CREATE USER`, which `user` marks: it may log in
/// unless told otherwise).
pub(crate) fn create_role(
    session: &mut Session,
    create: &ast::CreateRole,
    user: bool,
) -> Result<Output> {
    let verifier = create
        .password
        .as_ref()
        .map(verifier_of)
        .transpose()?
        .flatten();
    let state = session.engine().store().catalog().snapshot();
    let mut roles = Vec::new();
    for name in &create.names {
        let name = crate::names::table_name(name)?;
        if state.role(&name).is_some() {
            if create.if_not_exists {
                session.notice(format!("role \"{name}\" already exists, skipping"));
                continue;
            }
            return Err(role_exists(&name));
        }
        roles.push(RoleDef {
            name,
            superuser: create.superuser.unwrap_or(false),
            login: create.login.unwrap_or(user),
            password_verifier: verifier.clone(),
        });
    }
    session.catalog_transact(|txn| {
        for role in roles {
            txn.put_role(role);
        }
        Ok(())
    })?;
    Ok(Output::Command {
        tag: "CREATE ROLE".to_owned(),
    })
}

/// `ALTER ROLE name [WITH] options` (PASSWORD, LOGIN, SUPERUSER ...).
pub(crate) fn alter_role(
    session: &mut Session,
    name: &ast::Ident,
    operation: &ast::AlterRoleOperation,
) -> Result<Output> {
    let name = ident(name);
    let state = session.engine().store().catalog().snapshot();
    let mut role = state.role(&name).ok_or_else(|| no_role(&name))?;
    match operation {
        ast::AlterRoleOperation::WithOptions { options } => {
            for option in options {
                match option {
                    RoleOption::Password(password) => {
                        role.password_verifier = verifier_of(password)?
                    }
                    RoleOption::Login(login) => role.login = *login,
                    RoleOption::SuperUser(superuser) => {
                        if name == SUPERUSER && !superuser {
                            return Err(Error::not_supported(
                                "taking superuser away from the bootstrap superuser",
                            ));
                        }
                        role.superuser = *superuser;
                    }
                    // Privileges tempora does not enforce yet.
                    RoleOption::CreateDB(_)
                    | RoleOption::CreateRole(_)
                    | RoleOption::Inherit(_)
                    | RoleOption::Replication(_)
                    | RoleOption::BypassRLS(_) => {}
                    other => {
                        return Err(Error::not_supported(format!("ALTER ROLE ... {other}")));
                    }
                }
            }
        }
        ast::AlterRoleOperation::RenameRole { role_name } => {
            let new = ident(role_name);
            if state.role(&new).is_some() {
                return Err(role_exists(&new));
            }
            if name == SUPERUSER {
                return Err(Error::not_supported("renaming the bootstrap superuser"));
            }
            session.catalog_transact(|txn| {
                txn.drop_role(&name);
                txn.put_role(RoleDef { name: new, ..role });
                Ok(())
            })?;
            return Ok(Output::Command {
                tag: "ALTER ROLE".to_owned(),
            });
        }
        other => return Err(Error::not_supported(format!("ALTER ROLE ... {other}"))),
    }
    session.catalog_transact(|txn| {
        txn.put_role(role);
        Ok(())
    })?;
    Ok(Output::Command {
        tag: "ALTER ROLE".to_owned(),
    })
}

/// `DROP ROLE [IF EXISTS] names`.
pub(crate) fn drop_roles(
    session: &mut Session,
    if_exists: bool,
    names: &[ast::ObjectName],
) -> Result<Output> {
    let state = session.engine().store().catalog().snapshot();
    let mut dropped = Vec::new();
    for name in names {
        let name = crate::names::table_name(name)?;
        if name == SUPERUSER {
            return Err(Error::Transaction {
                code: SqlState::ObjectInUse,
                message: "cannot drop role postgres: it is the bootstrap superuser".to_owned(),
            });
        }
        if name == session.info.user() {
            return Err(Error::Transaction {
                code: SqlState::ObjectInUse,
                message: "current user cannot be dropped".to_owned(),
            });
        }
        match state.roles.get(&name) {
            Some(_) => dropped.push(name),
            None if if_exists => {
                session.notice(format!("role \"{name}\" does not exist, skipping"))
            }
            None => return Err(no_role(&name)),
        }
    }
    session.catalog_transact(|txn| {
        for name in &dropped {
            txn.drop_role(name);
        }
        Ok(())
    })?;
    Ok(Output::Command {
        tag: "DROP ROLE".to_owned(),
    })
}

/// `CREATE USER` and `ALTER USER`, which sqlparser reads as other
/// dialects' statements, as the `CREATE ROLE` / `ALTER ROLE` they are in
/// PostgreSQL: the text with ROLE for USER, and whether it made a user.
pub(crate) fn user_as_role(sql: &str) -> Option<(String, bool)> {
    let trimmed = sql.trim_start();
    let offset = sql.len() - trimmed.len();
    let mut words = trimmed.split_ascii_whitespace();
    let verb = words.next()?.to_ascii_uppercase();
    let noun = words.next()?;
    if !(verb == "CREATE" || verb == "ALTER") || !noun.eq_ignore_ascii_case("user") {
        return None;
    }
    let at = offset + trimmed[verb.len()..].find(noun)? + verb.len();
    let mut text = sql.to_owned();
    text.replace_range(at..at + noun.len(), "ROLE");
    Some((text, verb == "CREATE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_match_postgres() {
        // What PostgreSQL 15 stored for `CREATE ROLE vtest PASSWORD 'secret'`:
        // the same salt and iterations give the same keys.
        let postgres = "SCRAM-SHA-256$4096:LmY7o4puQTfTIeffYFn4UQ==$b1PpsymlkzJJTYn6jgnhiQEXwjuoutD6DTNX4/hyfyU=:BIFXPNsgQCqFkR13EsMn/B49hsaWsxdN6zOqiSY4/hU=";
        let parsed = parse_verifier(postgres).unwrap();
        assert_eq!(parsed.iterations, 4096);
        assert_eq!(verifier_with_salt("secret", &parsed.salt, 4096), postgres);
        // Fresh salts make fresh verifiers; the password is not in them.
        let (a, b) = (
            scram_verifier("secret").unwrap(),
            scram_verifier("secret").unwrap(),
        );
        assert_ne!(a, b);
        assert!(!a.contains("secret"));
        assert!(parse_verifier("md5abc").is_none());
    }

    #[test]
    fn users_are_roles() {
        assert_eq!(
            user_as_role("  create user alice WITH PASSWORD 'x'"),
            Some(("  create ROLE alice WITH PASSWORD 'x'".to_owned(), true))
        );
        assert_eq!(
            user_as_role("ALTER USER bob PASSWORD 'y'"),
            Some(("ALTER ROLE bob PASSWORD 'y'".to_owned(), false))
        );
        assert_eq!(user_as_role("CREATE TABLE users (a int)"), None);
    }
}
