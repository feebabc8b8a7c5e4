//! App registration: an owner manages their apps with a console token; no other account can see or touch them; an
//! app's tokens and console tokens do not stand in for each other; a rotated key and a deleted app stop working at
//! once; and the operator's commands do the same on any app.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use synckit_protocol::limits::MAX_APPS_PER_ACCOUNT;
use synckit_server::admin;
use synckit_store::StreamId;
use synckit_testkit::{TestServer, TestUser, b64, code, entries, on_each_engine, random_bytes};
use uuid::Uuid;

on_each_engine!(
    owners_create_list_and_change_their_apps,
    bad_redirect_uris_are_refused_and_say_why,
    a_rotated_key_stops_working_at_once,
    deleting_an_app_ends_its_tokens_and_removes_its_data,
    another_account_cannot_see_or_change_an_app,
    an_account_owns_a_bounded_number_of_apps,
    token_kinds_do_not_stand_in_for_each_other,
    admin_commands_manage_any_app,
);

/// Registers an app of the console token's account and returns the answer.
async fn create(app: &TestServer, console: &str, name: &str, redirect_uris: &[&str]) -> Value {
    let (status, body) =
        app.post("/api/apps", Some(console), json!({"name": name, "redirect_uris": redirect_uris})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn id_of(created: &Value) -> &str {
    created["app_id"].as_str().unwrap()
}

fn api_key_of(created: &Value) -> &str {
    created["api_key"].as_str().unwrap()
}

/// The app as `GET` shows it: what creating it answered, less the API key.
fn shown(created: &Value) -> Value {
    let mut shown = created.clone();
    shown.as_object_mut().unwrap().remove("api_key");
    shown
}

/// `POST /api/sync/auth` for `user` in the app of `api_key`.
async fn sign_in(app: &TestServer, user: &TestUser, api_key: &str) -> (StatusCode, Value) {
    let body = json!({"email": user.email, "login_key": b64(&user.login_key), "api_key": api_key});
    app.post("/api/sync/auth", None, body).await
}

async fn owners_create_list_and_change_their_apps(app: TestServer) {
    let ada = app.user().await;
    let console = app.console_token(&ada).await;
    let uris = ["https://notes.example.com/oauth/callback", "http://127.0.0.1/callback", "com.example.notes:/oauth"];
    let notes = create(&app, &console, "  Notes ", &uris).await;
    let fields: Vec<&String> = notes.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["api_key", "app_id", "client_id", "created_at", "name", "owner_id", "redirect_uris"]);
    assert_eq!((&notes["name"], &notes["redirect_uris"]), (&json!("Notes"), &json!(uris)));
    assert_eq!(notes["owner_id"], ada.user_id.to_string());
    let client_id = notes["client_id"].as_str().unwrap();
    assert!(api_key_of(&notes).starts_with("sk_") && client_id.starts_with("cid_"), "{notes}");
    assert!(!client_id.contains(&id_of(&notes).replace('-', "")), "the client id is not the app id");

    // The API key signs users in to the new app.
    let (status, body) = sign_in(&app, &ada, api_key_of(&notes)).await;
    assert_eq!((status, body["app_id"].as_str()), (StatusCode::OK, Some(id_of(&notes))), "{body}");

    // Listed oldest first, and read one by one, never with the API key. Redirect URIs are optional.
    let (status, cli) = app.post("/api/apps", Some(&console), json!({"name": "CLI"})).await;
    assert_eq!((status, &cli["redirect_uris"]), (StatusCode::OK, &json!([])), "{cli}");
    assert_ne!(cli["client_id"], notes["client_id"]);
    assert_eq!(
        app.get("/api/apps", Some(&console)).await,
        (StatusCode::OK, json!({"apps": [shown(&notes), shown(&cli)]}))
    );
    let one = format!("/api/apps/{}", id_of(&notes));
    assert_eq!(app.get(&one, Some(&console)).await, (StatusCode::OK, shown(&notes)));

    // Redirect URIs are replaced as a whole; nothing else changes.
    let replaced = ["com.example.notes:/v2", "https://notes.example.com/v2"];
    let body = json!({"redirect_uris": replaced});
    let (status, changed) = app.send(Method::PUT, &format!("{one}/redirect-uris"), Some(&console), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let mut expected = shown(&notes);
    expected["redirect_uris"] = json!(replaced);
    assert_eq!(changed, expected);
    assert_eq!(app.get(&one, Some(&console)).await.1, expected);
    let body = json!({"redirect_uris": []});
    let (status, cleared) = app.send(Method::PUT, &format!("{one}/redirect-uris"), Some(&console), Some(body)).await;
    assert_eq!((status, &cleared["redirect_uris"]), (StatusCode::OK, &json!([])));
}

async fn bad_redirect_uris_are_refused_and_say_why(app: TestServer) {
    let console = app.console_token(&app.user().await).await;
    let notes = create(&app, &console, "Notes", &["com.example.notes:/cb"]).await;
    let path = format!("/api/apps/{}/redirect-uris", id_of(&notes));
    let too_long = format!("https://notes.example.com/{}", "x".repeat(1024));
    let eleven: Vec<String> = (0..11).map(|i| format!("https://notes.example.com/{i}")).collect();
    for (uris, says) in [
        (json!(["http://notes.example.com/cb"]), "loopback"),
        (json!(["https://notes.example.com/cb#top"]), "fragment"),
        (json!(["notes.example.com/cb"]), "absolute"),
        (json!(["notes:/cb"]), "private-use"),
        (json!(["https://notes.example.com/caf\u{e9}"]), "%-encoded"),
        (json!([too_long]), "longer than 1024"),
        (json!(["com.example.notes:/cb", "com.example.notes:/cb"]), "twice"),
        (json!(eleven), "at most 10"),
    ] {
        let body = json!({"redirect_uris": uris});
        let (status, refused) = app.send(Method::PUT, &path, Some(&console), Some(body.clone())).await;
        assert_eq!((status, code(&refused)), (StatusCode::BAD_REQUEST, "invalid_redirect_uri"), "{uris}");
        assert!(refused["error"]["message"].as_str().unwrap().contains(says), "{uris}: {refused}");
        let (status, refused) =
            app.post("/api/apps", Some(&console), json!({"name": "Other", "redirect_uris": uris})).await;
        assert_eq!((status, code(&refused)), (StatusCode::BAD_REQUEST, "invalid_redirect_uri"), "{uris}");
    }
    // Nothing changed, and no other app was made.
    let (_, listed) = app.get("/api/apps", Some(&console)).await;
    assert_eq!(listed, json!({"apps": [shown(&notes)]}));
}

async fn a_rotated_key_stops_working_at_once(app: TestServer) {
    let ada = app.user().await;
    let console = app.console_token(&ada).await;
    let notes = create(&app, &console, "Notes", &[]).await;
    let old_key = api_key_of(&notes);
    let (status, signed_in) = sign_in(&app, &ada, old_key).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    let device = app.device(signed_in["token"].as_str().unwrap(), "laptop").await;

    let path = format!("/api/apps/{}/rotate-key", id_of(&notes));
    let (status, rotated) = app.send(Method::POST, &path, Some(&console), None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["app_id"], notes["app_id"]);
    let new_key = rotated["api_key"].as_str().unwrap();
    assert!(new_key.starts_with("sk_") && new_key != old_key, "{rotated}");

    let (status, refused) = sign_in(&app, &ada, old_key).await;
    assert_eq!((status, code(&refused)), (StatusCode::UNAUTHORIZED, "invalid_api_key"));
    let (status, body) = sign_in(&app, &ada, new_key).await;
    assert_eq!((status, &body["app_id"]), (StatusCode::OK, &notes["app_id"]), "{body}");
    // A key lets users sign in; the sessions it began are theirs and the app's, and go on.
    let user = TestUser { device_id: device.0, token: device.1, ..ada.clone() };
    assert_eq!(app.push(&user, &entries(1)).await.0, StatusCode::OK);
    // The app is otherwise as it was.
    assert_eq!(app.get(&format!("/api/apps/{}", id_of(&notes)), Some(&console)).await.1, shown(&notes));
}

async fn deleting_an_app_ends_its_tokens_and_removes_its_data(app: TestServer) {
    let ada = app.user().await;
    let console = app.console_token(&ada).await;
    let notes = create(&app, &console, "Notes", &[]).await;
    let app_id: Uuid = id_of(&notes).parse().unwrap();

    // Ada uses the app: a sign-in token, a device that pushed, a key envelope and a blob.
    let (_, signed_in) = sign_in(&app, &ada, api_key_of(&notes)).await;
    let sign_in_token = signed_in["token"].as_str().unwrap().to_owned();
    let (device_id, token) = app.device(&sign_in_token, "laptop").await;
    let in_notes =
        TestUser { app_id, device_id, token: token.clone(), sign_in_token: sign_in_token.clone(), ..ada.clone() };
    assert_eq!(app.push(&in_notes, &entries(3)).await.0, StatusCode::OK);
    let envelope = Some(json!({"envelope": b64(&random_bytes(100))}));
    assert_eq!(app.send(Method::PUT, "/api/sync/keys", Some(&token), envelope).await.0, StatusCode::OK);
    let stream = StreamId { app_id, user_id: ada.user_id };
    app.engines.blobs.begin_upload(stream, [7; 32], 10, [0; 32]).await.unwrap();

    let (status, body) = app.send(Method::DELETE, &format!("/api/apps/{app_id}"), Some(&console), None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));

    // Every token of the app stops working at once, on every endpoint, and its API key signs nobody in.
    for (token, path) in [
        (&sign_in_token, "/api/sync/keys"),
        (&sign_in_token, "/api/accounts/keys"),
        (&token, "/api/sync/status"),
        (&token, "/api/sync/devices"),
    ] {
        let (status, body) = app.get(path, Some(token)).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"), "{path}: {body}");
    }
    let (status, body) = app.push(&in_notes, &entries(1)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"));
    let (status, body) = sign_in(&app, &ada, api_key_of(&notes)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"));

    // Its data is gone: entries, devices, key envelope, blob record; a password change has no envelope of it to
    // re-wrap.
    assert_eq!(app.engines.changelog.head(stream).await.unwrap(), 0);
    assert!(app.engines.accounts.devices(stream).await.unwrap().is_empty());
    assert_eq!(app.engines.accounts.key(stream).await.unwrap(), None);
    assert_eq!(app.engines.blobs.blob(stream, [7; 32]).await.unwrap(), None);
    assert_eq!(app.get("/api/accounts/keys", Some(&ada.token)).await, (StatusCode::OK, json!({"keys": []})));

    // Its owner sees it no more, and deleting it again finds nothing. The other apps go on.
    assert_eq!(app.get("/api/apps", Some(&console)).await.1, json!({"apps": []}));
    let (status, body) = app.send(Method::DELETE, &format!("/api/apps/{app_id}"), Some(&console), None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "app_not_found"));
    assert_eq!(app.push(&ada, &entries(1)).await.0, StatusCode::OK);
}

/// The four ways at one app, by id.
fn ways_at(id: &str) -> [(Method, String, Option<Value>); 4] {
    [
        (Method::GET, format!("/api/apps/{id}"), None),
        (
            Method::PUT,
            format!("/api/apps/{id}/redirect-uris"),
            Some(json!({"redirect_uris": ["https://evil.example/"]})),
        ),
        (Method::POST, format!("/api/apps/{id}/rotate-key"), None),
        (Method::DELETE, format!("/api/apps/{id}"), None),
    ]
}

async fn an_account_owns_a_bounded_number_of_apps(app: TestServer) {
    let (ada, bob) = (app.user().await, app.user().await);
    let (ada_console, bob_console) = (app.console_token(&ada).await, app.console_token(&bob).await);
    let mut last = Value::Null;
    for i in 0..MAX_APPS_PER_ACCOUNT {
        last = create(&app, &ada_console, &format!("App {i}"), &[]).await;
    }
    let (status, body) = app.post("/api/apps", Some(&ada_console), json!({"name": "One more"})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "too_many_apps"), "{body}");
    let (_, listed) = app.get("/api/apps", Some(&ada_console)).await;
    assert_eq!(listed["apps"].as_array().unwrap().len(), MAX_APPS_PER_ACCOUNT, "nothing was created");

    // The limit is per account, and deleting one makes room.
    create(&app, &bob_console, "Bob's", &[]).await;
    let (status, _) = app.send(Method::DELETE, &format!("/api/apps/{}", id_of(&last)), Some(&ada_console), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    create(&app, &ada_console, "One more", &[]).await;
}

async fn another_account_cannot_see_or_change_an_app(app: TestServer) {
    let (ada, bob) = (app.user().await, app.user().await);
    let (ada_console, bob_console) = (app.console_token(&ada).await, app.console_token(&bob).await);
    let notes = create(&app, &ada_console, "Notes", &["com.example.notes:/cb"]).await;
    assert_eq!(app.get("/api/apps", Some(&bob_console)).await, (StatusCode::OK, json!({"apps": []})));

    // Bob at Ada's app, and Ada at the operator's app (which no account owns), are answered exactly as at an app
    // that does not exist: nothing tells them it does.
    let nowhere = Uuid::now_v7().to_string();
    for (who, console, id) in
        [("bob", &bob_console, id_of(&notes).to_owned()), ("ada", &ada_console, app.app_id.to_string())]
    {
        for ((method, path, body), (_, unknown, _)) in ways_at(&id).into_iter().zip(ways_at(&nowhere)) {
            let answer = app.send(method.clone(), &path, Some(console), body.clone()).await;
            assert_eq!(answer.0, StatusCode::NOT_FOUND, "{who}: {method} {path}: {}", answer.1);
            assert_eq!(code(&answer.1), "app_not_found");
            assert_eq!(answer, app.send(method.clone(), &unknown, Some(console), body).await, "{who}: {method} {path}");
        }
    }

    // Ada's app is as she made it, and its key still works; so does the operator's.
    let one = format!("/api/apps/{}", id_of(&notes));
    assert_eq!(app.get(&one, Some(&ada_console)).await, (StatusCode::OK, shown(&notes)));
    assert_eq!(sign_in(&app, &ada, api_key_of(&notes)).await.0, StatusCode::OK);
    assert_eq!(sign_in(&app, &ada, &app.api_key).await.0, StatusCode::OK);
}

async fn token_kinds_do_not_stand_in_for_each_other(app: TestServer) {
    let ada = app.user().await;
    let console = app.console_token(&ada).await;
    let notes = create(&app, &console, "Notes", &[]).await;
    let one = format!("/api/apps/{}", id_of(&notes));

    // An app's tokens, sign-in or device, do not manage apps.
    for token in [&ada.sign_in_token, &ada.token] {
        for (method, path, body) in [
            (Method::GET, "/api/apps", None),
            (Method::POST, "/api/apps", Some(json!({"name": "Mine"}))),
            (Method::GET, one.as_str(), None),
            (Method::DELETE, one.as_str(), None),
        ] {
            let (status, body) = app.send(method.clone(), path, Some(token), body).await;
            assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"), "{method} {path}");
        }
    }
    // A console token does not sync, nor act on the account in an app.
    let user = TestUser { token: console.clone(), ..ada.clone() };
    for (method, path, body) in [
        (Method::GET, "/api/sync/status", None),
        (Method::GET, "/api/sync/devices", None),
        (Method::GET, "/api/sync/keys", None),
        (Method::GET, "/api/accounts/keys", None),
        (Method::POST, "/api/sync/pull", Some(json!({"cursor": 0}))),
        (Method::POST, "/api/sync/devices", Some(json!({"name": "laptop", "platform": "linux"}))),
    ] {
        let (status, body) = app.send(method.clone(), path, Some(&console), body).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"), "{method} {path}");
    }
    let (status, body) = app.push(&user, &entries(1)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"));
    assert_eq!(app.get(&one, Some(&console)).await.0, StatusCode::OK, "it does manage apps");

    // The console's sign-in takes the account's credentials only.
    let wrong = json!({"email": ada.email, "login_key": b64(&random_bytes(32))});
    let (status, body) = app.post("/api/accounts/console-auth", None, wrong).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_credentials"));

    // A password change revokes console tokens too; one from the new password works.
    let new_login_key = random_bytes(32);
    let change = json!({
        "current_login_key": b64(&ada.login_key), "salt": b64(&random_bytes(32)), "login_key": b64(&new_login_key),
    });
    let (status, body) = app.post("/api/accounts/password", Some(&ada.token), change).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get("/api/apps", Some(&console)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_token"));
    let renewed = app.console_token(&TestUser { login_key: new_login_key, ..ada }).await;
    assert_eq!(app.get("/api/apps", Some(&renewed)).await.1["apps"][0]["app_id"], notes["app_id"]);
}

async fn admin_commands_manage_any_app(app: TestServer) {
    let ada = app.user().await;
    let console = app.console_token(&ada).await;
    let owned = create(&app, &console, "Ada's", &[]).await;
    let accounts = &*app.engines.accounts;

    let made = admin::create_app(accounts, "Operator's", &["https://ops.example/cb".to_owned()]).await.unwrap();
    assert!(made.client_id.starts_with("cid_") && made.api_key.starts_with("sk_"), "{made:?}");
    let refused = admin::create_app(accounts, "Bad", &["http://ops.example/cb".to_owned()]).await.unwrap_err();
    assert!(refused.to_string().contains("invalid_redirect_uri"), "{refused}");
    assert!(admin::create_app(accounts, "  ", &[]).await.is_err(), "an empty name is refused");

    // Every app of the deployment, whoever owns it, and no secret.
    let listed = admin::list_apps(accounts).await.unwrap();
    let owner_of = |id: Uuid| listed.apps.iter().find(|a| a.app_id == id).map(|a| a.owner_id);
    assert_eq!(owner_of(app.app_id), Some(None));
    assert_eq!(owner_of(made.app_id), Some(None));
    assert_eq!(owner_of(id_of(&owned).parse().unwrap()), Some(Some(ada.user_id)));
    assert_eq!(listed.apps.len(), 3);
    let printed = serde_json::to_string(&listed).unwrap();
    assert!(!printed.contains("sk_") && !printed.contains("api_key"), "{printed}");
    // The operator's app is no account's.
    assert_eq!(app.get("/api/apps", Some(&console)).await.1["apps"].as_array().unwrap().len(), 1);

    // The operator rotates any app's key, an owner's included: the old one fails at once.
    let rotated = admin::rotate_key(accounts, id_of(&owned).parse().unwrap()).await.unwrap();
    let (status, body) = sign_in(&app, &ada, api_key_of(&owned)).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "invalid_api_key"));
    assert_eq!(sign_in(&app, &ada, &rotated.api_key).await.0, StatusCode::OK);
    assert_eq!(sign_in(&app, &ada, &made.api_key).await.0, StatusCode::OK);
    let missing = admin::rotate_key(accounts, Uuid::now_v7()).await.unwrap_err();
    assert!(missing.to_string().contains("no app"), "{missing}");
}
