//! The developer console's page over HTTP: locked down as the sign-in page is, with every script and style it names
//! served by this server. What it does in a browser is the browser test's (`sdk/cli/tests/browser/console.rs`).

use synckit_testkit::{TestServer, engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_is_locked_down_and_its_files_are_served_here() {
    let app = TestServer::start(engine::embedded()).await;
    let page = app.http.get(format!("{}/console", app.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let body = page.text().await.unwrap();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let policy = headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self';",
        "connect-src 'self'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(part), "{policy} has {part}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(!body.contains("<script>") && !body.contains("style="), "nothing inline");
    // The password field has no name: no form of the page could send it.
    assert!(body.contains(r#"<input id="password" type="password""#) && !body.contains(r#"name="password""#));

    // Every file the page loads, and every module its script imports, with its type.
    let mut named: Vec<String> = body
        .split('"')
        .filter(|part| part.starts_with("/console/assets/") || part.starts_with("/oauth/assets/"))
        .map(str::to_owned)
        .collect();
    for path in ["/console/assets/console.js", "/oauth/assets/loginkey.js", "/oauth/assets/favicon.svg"] {
        assert!(named.iter().any(|n| n == path), "the page loads {path}: {named:?}");
    }
    let mut loaded = std::collections::BTreeSet::new();
    while let Some(path) = named.pop() {
        if !loaded.insert(path.clone()) {
            continue;
        }
        let answer = app.http.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let content_type = answer.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = match path.rsplit('.').next().unwrap() {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("{path}: a file of type {other}"),
        };
        assert_eq!(content_type, expected, "{path}");
        let text = answer.text().await.unwrap();
        for import in text.lines().filter_map(|l| l.strip_prefix("import ")?.split("from \"./").nth(1)) {
            named.push(format!("/console/assets/{}", import.trim_end_matches("\";")));
        }
    }
    let scripts: Vec<&str> = loaded.iter().map(String::as_str).filter(|p| p.ends_with(".js")).collect();
    assert_eq!(
        scripts,
        [
            "/console/assets/console-api.js",
            "/console/assets/console-chart.js",
            "/console/assets/console-plan.js",
            "/console/assets/console-usage.js",
            "/console/assets/console-util.js",
            "/console/assets/console.js",
            "/oauth/assets/loginkey.js",
        ]
    );
    for missing in ["/console/assets/signin.js", "/console/assets/console.html", "/console/assets/..%2FCargo.toml"] {
        let answer = app.http.get(format!("{}{missing}", app.url)).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{missing}");
    }
}
