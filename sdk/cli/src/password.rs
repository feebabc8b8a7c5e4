//! Passwords: from an environment variable for scripts, else asked on the terminal without echo.
//!
//! A password is never printed, logged or put in an error message.

use std::fmt;
use std::ops::Deref;

use anyhow::{Context, Result, bail};

/// The account password, for everything but passwd's new one.
const PASSWORD_VAR: &str = "SYNCKIT_PASSWORD";
/// The new password of passwd and recover.
const NEW_PASSWORD_VAR: &str = "SYNCKIT_NEW_PASSWORD";
/// recover's recovery key.
const RECOVERY_KEY_VAR: &str = "SYNCKIT_RECOVERY_KEY";

/// A password that does not show itself in `Debug`.
pub struct Password(String);

impl Deref for Password {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// The password of `email`'s account.
pub fn current(email: &str) -> Result<Password> {
    match from_env(PASSWORD_VAR)? {
        Some(password) => Ok(password),
        None => prompt(&format!("Password for {email}: "), PASSWORD_VAR),
    }
}

/// The account's password after a sign-in through the browser, which unlocks the encryption key here; asked
/// twice when it creates the account's first key, since nothing checked it and a typo would lock the user out.
pub fn to_unlock(first_key: bool) -> Result<Password> {
    match from_env(PASSWORD_VAR)? {
        Some(password) => Ok(password),
        None if first_key => prompt_twice("Password of the account, to set up its encryption key: ", PASSWORD_VAR),
        None => prompt("Password, to unlock the encryption key: ", PASSWORD_VAR),
    }
}

/// The password a new account (signup) gets: asked twice, since a typo would lock the user out.
pub fn for_new_account(email: &str) -> Result<Password> {
    match from_env(PASSWORD_VAR)? {
        Some(password) => Ok(password),
        None => prompt_twice(&format!("Password for the new account {email}: "), PASSWORD_VAR),
    }
}

/// The recovery key recover uses, as the user typed it (the SDK reads it and catches a typo).
pub fn recovery_key() -> Result<Password> {
    match from_env(RECOVERY_KEY_VAR)? {
        Some(key) => Ok(key),
        None => prompt("Recovery key: ", RECOVERY_KEY_VAR),
    }
}

/// The new password of passwd and recover, asked twice for the same reason.
pub fn replacement() -> Result<Password> {
    match from_env(NEW_PASSWORD_VAR)? {
        Some(password) => Ok(password),
        None => prompt_twice("New password: ", NEW_PASSWORD_VAR),
    }
}

/// The variable's value; set but empty counts as unset, as in `SYNCKIT_PASSWORD= synckit login …`.
fn from_env(var: &str) -> Result<Option<Password>> {
    match std::env::var(var) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(Password(value))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{var} is not valid UTF-8"),
    }
}

fn prompt_twice(prompt_text: &str, var: &str) -> Result<Password> {
    let first = prompt(prompt_text, var)?;
    let second = prompt("Repeat it: ", var)?;
    if first.0 != second.0 {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// Asks on the terminal itself (not stdin, which may carry data; not stdout, which carries results). `var` is
/// what a script sets instead.
fn prompt(prompt_text: &str, var: &str) -> Result<Password> {
    let password = rpassword::prompt_password(prompt_text)
        .with_context(|| format!("cannot ask for the password on a terminal: set {var}"))?;
    if password.is_empty() {
        bail!("the password must not be empty");
    }
    Ok(Password(password))
}
