//! Opening a URL in the person's browser: the command in `$BROWSER`, else the platform's opener.

use std::process::{Command, Stdio};

/// Opens `url` in the browser, without waiting for the browser to exit: the command line in `$BROWSER` if it is
/// set (split on whitespace; `%s` in it is replaced by the URL, else the URL goes last), else `xdg-open` (Linux and
/// the BSDs), `open` (macOS) or `cmd /c start` (Windows).
///
/// An error means the opener could not be started; an opener that starts and then fails (no browser installed, no
/// display) is not noticed, so show the URL as well where the person can copy it.
///
/// ```no_run
/// let url = "https://sync.example.com/oauth/authorize?…";
/// if synckit::oauth::open_browser(url).is_err() {
///     eprintln!("Open this URL to sign in: {url}");
/// }
/// ```
pub fn open_browser(url: &str) -> std::io::Result<()> {
    let browser = std::env::var("BROWSER").ok();
    let (program, args) = command_line(browser.as_deref(), url);
    let mut child = Command::new(&program)
        .args(&args)
        // stdout may carry the app's own output (the CLI prints JSON there): the opener's chatter stays out of it.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Reaped in the background, so that a long-running app keeps no exited child behind.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// The program and arguments that open `url`, given `$BROWSER`.
fn command_line(browser: Option<&str>, url: &str) -> (String, Vec<String>) {
    let words: Vec<&str> = browser.map(|b| b.split_whitespace().collect()).unwrap_or_default();
    if let Some((program, rest)) = words.split_first() {
        let mut args: Vec<String> = rest.iter().map(|w| w.replace("%s", url)).collect();
        if !words.iter().any(|w| w.contains("%s")) {
            args.push(url.to_owned());
        }
        return (program.replace("%s", url), args);
    }
    if cfg!(target_os = "macos") {
        ("open".to_owned(), vec![url.to_owned()])
    } else if cfg!(windows) {
        // `start` is a built-in of cmd, which would end the command at the first `&` of the URL: escape them. The
        // empty argument is `start`'s window title, without which it would take a quoted URL for the title.
        let escaped = url.replace('&', "^&");
        ("cmd".to_owned(), vec!["/c".to_owned(), "start".to_owned(), String::new(), escaped])
    } else {
        ("xdg-open".to_owned(), vec![url.to_owned()])
    }
}

#[cfg(test)]
mod tests {
    use super::command_line;

    const URL: &str = "http://127.0.0.1:8080/oauth/authorize?a=1&b=2";

    #[test]
    fn browser_variable_is_a_command_line_that_gets_the_url() {
        assert_eq!(command_line(Some("firefox"), URL), ("firefox".to_owned(), vec![URL.to_owned()]));
        assert_eq!(
            command_line(Some("  firefox   --new-window "), URL),
            ("firefox".to_owned(), vec!["--new-window".to_owned(), URL.to_owned()])
        );
        assert_eq!(
            command_line(Some("chromium --app=%s --incognito"), URL),
            ("chromium".to_owned(), vec![format!("--app={URL}"), "--incognito".to_owned()])
        );
    }

    #[test]
    fn without_a_browser_variable_the_platform_opener_is_used() {
        for browser in [None, Some(""), Some("   ")] {
            let (program, args) = command_line(browser, URL);
            assert!(["xdg-open", "open", "cmd"].contains(&program.as_str()), "{program}");
            assert!(args.last().unwrap().starts_with("http://127.0.0.1:8080/oauth/authorize?a=1"), "{args:?}");
        }
    }
}
