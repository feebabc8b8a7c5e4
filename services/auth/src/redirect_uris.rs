//! Which redirect URIs an app may register: exactly those of [`REDIRECT_URI_PATTERN`], the pattern the OpenAPI
//! document publishes, so that the document and the server cannot disagree; and a message that says what is wrong
//! with one that is not.

use std::sync::LazyLock;

use regex_lite::Regex;
use synckit_http::ApiError;
use synckit_protocol::ErrorCode;
use synckit_protocol::apps::REDIRECT_URI_PATTERN;
use synckit_protocol::limits::{MAX_REDIRECT_URI_CHARS, MAX_REDIRECT_URIS};

static PATTERN: LazyLock<Regex> = LazyLock::new(|| Regex::new(REDIRECT_URI_PATTERN).expect("the pattern compiles"));

/// An app's redirect URIs: at most [`MAX_REDIRECT_URIS`], none twice, each of the pattern and at most
/// [`MAX_REDIRECT_URI_CHARS`] characters. Otherwise 400 `invalid_redirect_uri`, naming the first one refused.
pub fn check(uris: &[String]) -> Result<(), ApiError> {
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(invalid(format!("an app has at most {MAX_REDIRECT_URIS} redirect URIs, not {}", uris.len())));
    }
    for (i, uri) in uris.iter().enumerate() {
        if let Some(why) = problem(uri) {
            return Err(invalid(format!("redirect_uris[{i}] {uri:?} {why}")));
        }
        if uris[..i].contains(uri) {
            return Err(invalid(format!("redirect_uris[{i}] {uri:?} is listed twice")));
        }
    }
    Ok(())
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidRedirectUri, message)
}

/// What is wrong with `uri`, or `None` when the server takes it. The pattern decides; the rest only explains.
fn problem(uri: &str) -> Option<String> {
    if uri.chars().count() > MAX_REDIRECT_URI_CHARS {
        return Some(format!("is longer than {MAX_REDIRECT_URI_CHARS} characters"));
    }
    if PATTERN.is_match(uri) {
        return None;
    }
    let why = if uri.contains('#') {
        "has a fragment (#…), which a redirect URI must not have"
    } else if uri.starts_with("http://") {
        "uses http on a host other than loopback: use https, or http://127.0.0.1, http://[::1] or http://localhost \
         (RFC 8252)"
    } else {
        "is not an absolute https URI, an http one on loopback, nor a private-use scheme such as \
         com.example.app:/callback (RFC 8252); characters outside URIs must be %-encoded"
    };
    Some(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(list: &[&str]) -> Vec<String> {
        list.iter().map(|uri| (*uri).to_owned()).collect()
    }

    fn refusal(list: &[&str]) -> String {
        let err = check(&uris(list)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRedirectUri);
        err.message.into_owned()
    }

    #[test]
    fn good_lists_are_taken_and_bad_ones_say_why() {
        check(&[]).unwrap();
        check(&uris(&["https://a.example/cb", "http://127.0.0.1/cb", "com.example.a:/cb"])).unwrap();

        assert!(refusal(&["https://a.example/cb#x"]).contains("fragment"));
        assert!(refusal(&["https://a.example/ok", "http://a.example/cb"]).starts_with("redirect_uris[1]"));
        assert!(refusal(&["http://a.example/cb"]).contains("loopback"));
        assert!(refusal(&["/cb"]).contains("absolute"));
        assert!(refusal(&["https://a.example/cb", "https://a.example/cb"]).contains("twice"));
        let long = format!("https://a.example/{}", "x".repeat(MAX_REDIRECT_URI_CHARS));
        assert!(refusal(&[&long]).contains("longer than"));
        let at_limit = format!("https://a.example/{}", "x".repeat(MAX_REDIRECT_URI_CHARS - 18));
        check(&[at_limit]).unwrap();
        let many: Vec<String> = (0..=MAX_REDIRECT_URIS).map(|i| format!("https://a.example/{i}")).collect();
        assert!(check(&many).unwrap_err().message.contains("at most"));
        check(&many[..MAX_REDIRECT_URIS]).unwrap();
    }
}
