//! How a failed command ends: one line, `synckit: <message>`, on stderr, and exit status 1.

use std::process::ExitCode;

use synckit::ErrorKind;

/// Prints the error and picks the exit status.
pub fn exit(err: anyhow::Error) -> ExitCode {
    // A reader that stopped early (`synckit pull | head`) is not an error worth a message.
    let broken_pipe = err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if !broken_pipe {
        eprintln!("synckit: {}", message(&err));
    }
    ExitCode::FAILURE
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
