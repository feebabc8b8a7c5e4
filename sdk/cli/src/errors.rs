//! How a failed command ends: one line, `synckit: <message>`, on stderr, and exit status 1; or, for a pull that
//! passed over entries it cannot read, exit status 3.

use std::fmt;
use std::process::ExitCode;

use synckit::ErrorKind;

/// The exit status of a pull that printed every change it could read and moved past entries it could not.
///
/// Not 0: the skipped entries are reported once (the cursor moves past them), so a script that watches only the
/// exit status must still learn of them. Not 1 either: 1 means the pull stopped and running it again picks up where
/// it left off, while after 3 the output is complete and a rerun brings nothing back.
pub const SKIPPED_STATUS: u8 = 3;

/// How many entries a pull passed over, each already reported on stderr. Returned as the command's error so that it
/// ends with [`SKIPPED_STATUS`].
#[derive(Debug)]
pub struct Skipped(pub usize);

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (entries, were) = if self.0 == 1 { ("entry", "was") } else { ("entries", "were") };
        write!(
            f,
            "{} {entries} could not be read and {were} skipped (listed above); every other change was printed, \
             and the next pull starts after them. `synckit devices` names the devices they came from",
            self.0
        )
    }
}

impl std::error::Error for Skipped {}

/// Prints the error and picks the exit status.
pub fn exit(err: anyhow::Error) -> ExitCode {
    // A reader that stopped early (`synckit pull | head`) is not an error worth a message.
    let broken_pipe = err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if !broken_pipe {
        eprintln!("synckit: {}", message(&err));
    }
    if err.downcast_ref::<Skipped>().is_some() { ExitCode::from(SKIPPED_STATUS) } else { ExitCode::FAILURE }
}

/// The error and its causes on one line.
fn message(err: &anyhow::Error) -> String {
    if let Some(e) = err.downcast_ref::<synckit::Error>()
        && e.kind() == ErrorKind::WrongPassword
    {
        // The server says "wrong email or password" on purpose; the user typed the password last, so say that.
        return "wrong password".to_owned();
    }
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        // The SDK repeats a cause's text in its own message: print it once.
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line
}
