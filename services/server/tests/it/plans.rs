//! Plans and prices over HTTP: quotes from the one pricing engine, an owner's plan changes (at once when they lower
//! no limit, else from the next billing period), and the operator's, which apply at once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use synckit_protocol::plans::Period;
use synckit_server::admin;
use synckit_testkit::{TestServer, code, on_each_engine};

on_each_engine!(
    quotes_are_priced_exactly,
    owners_change_plans_at_once_or_from_the_next_period,
    the_operator_sets_plans_at_once
);

async fn quotes_are_priced_exactly(app: TestServer) {
    let console = app.console_token(&app.user().await).await;
    for (query, expected) in [
        ("storage_gb=1", json!({"storage_gb": 1, "burst": 5, "monthly_usd": "0.30"})),
        ("storage_gb=50", json!({"storage_gb": 50, "burst": 5, "monthly_usd": "15.00"})),
        ("storage_gb=200", json!({"storage_gb": 200, "burst": 5, "monthly_usd": "60.00"})),
        ("storage_gb=10&burst=20", json!({"storage_gb": 10, "burst": 20, "monthly_usd": "7.50"})),
        ("storage_gb=0.05", json!({"storage_gb": 0.05, "burst": 5, "monthly_usd": "0.02"})),
    ] {
        let (status, quote) = app.get(&format!("/api/apps/quote?{query}"), Some(&console)).await;
        assert_eq!((status, quote), (StatusCode::OK, expected), "{query}");
    }
    for (query, says) in [
        ("storage_gb=0", "more than 0 GB"),
        ("storage_gb=100001", "at most 100000 GB"),
        ("storage_gb=1.0000000001", "at most 9 decimals"),
        ("storage_gb=1e3", "decimal number"),
        ("storage_gb=1&burst=21", "from 1 to 20"),
    ] {
        let (status, refused) = app.get(&format!("/api/apps/quote?{query}"), Some(&console)).await;
        assert_eq!((status, code(&refused)), (StatusCode::BAD_REQUEST, "invalid_request"), "{query}");
        assert!(refused["error"]["message"].as_str().unwrap().contains(says), "{query}: {refused}");
    }
    let (status, _) = app.get("/api/apps/quote?storage_gb=1", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a console token");
    // The operator's quote is the same engine's.
    let printed = serde_json::to_value(admin::quote("50", None).unwrap()).unwrap();
    assert_eq!(printed, json!({"storage_gb": 50, "burst": 5, "monthly_usd": "15.00"}));
}

fn terms(storage_gb: u64, burst: u64, monthly_usd: &str) -> Value {
    let bytes = storage_gb * 1_000_000_000;
    json!({
        "storage_gb": storage_gb,
        "burst": burst,
        "monthly_usd": monthly_usd,
        "storage_limit_bytes": bytes,
        "transfer_limit_bytes": bytes * burst,
    })
}

async fn owners_change_plans_at_once_or_from_the_next_period(app: TestServer) {
    let ada = app.user().await;
    let console = app.console_token(&ada).await;
    let (status, created) = app.post("/api/apps", Some(&console), json!({"name": "Notes"})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let path = format!("/api/apps/{}/plan", created["app_id"].as_str().unwrap());
    let (period, next_period) = (Period::current().to_string(), Period::current().next().to_string());
    let put = |body: Value| app.send(Method::PUT, &path, Some(&console), Some(body));

    assert_eq!(
        app.get(&path, Some(&console)).await,
        (StatusCode::OK, json!({"period": period, "current": null, "next": null}))
    );
    // The first plan, and one that raises a limit: at once.
    let (status, plan) = put(json!({"storage_gb": 10})).await;
    assert_eq!(
        (status, plan),
        (StatusCode::OK, json!({"period": period, "current": terms(10, 5, "3.00"), "next": null}))
    );
    let (_, plan) = put(json!({"storage_gb": "20", "burst": 5})).await;
    assert_eq!(plan["current"], terms(20, 5, "6.00"));
    // Lowering storage, or the transfer budget: from the next period; this one keeps its plan.
    let (_, plan) = put(json!({"storage_gb": 5})).await;
    let mut waiting = terms(5, 5, "1.50");
    waiting["from"] = json!(next_period);
    assert_eq!(plan, json!({"period": period, "current": terms(20, 5, "6.00"), "next": waiting}));
    assert_eq!(app.get(&path, Some(&console)).await.1, plan);
    let (_, plan) = put(json!({"storage_gb": 20, "burst": 1})).await;
    assert_eq!((&plan["current"], &plan["next"]["burst"]), (&terms(20, 5, "6.00"), &json!(1)));
    // Raising again: at once, and the waiting change is dropped.
    let (_, plan) = put(json!({"storage_gb": 30})).await;
    assert_eq!(plan, json!({"period": period, "current": terms(30, 5, "9.00"), "next": null}));

    // Bad plans are refused and change nothing.
    for body in [
        json!({"storage_gb": 0}),
        json!({"storage_gb": -1}),
        json!({"storage_gb": 1, "burst": 0}),
        json!({"storage_gb": "x"}),
    ] {
        let (status, refused) = put(body.clone()).await;
        assert_eq!((status, code(&refused)), (StatusCode::BAD_REQUEST, "invalid_request"), "{body}: {refused}");
    }
    assert_eq!(app.get(&path, Some(&console)).await.1["current"], terms(30, 5, "9.00"));

    // Another account sees no such app.
    let bob = app.console_token(&app.user().await).await;
    let (status, refused) = app.get(&path, Some(&bob)).await;
    assert_eq!((status, code(&refused)), (StatusCode::NOT_FOUND, "app_not_found"));
    let (status, _) = app.send(Method::PUT, &path, Some(&bob), Some(json!({"storage_gb": 1}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&path, Some(&console)).await.1["current"], terms(30, 5, "9.00"));
}

async fn the_operator_sets_plans_at_once(app: TestServer) {
    let accounts = &*app.engines.accounts;
    let plan = admin::set_plan(accounts, app.app_id, "0.000001", Some(2)).await.unwrap();
    let plan = serde_json::to_value(plan).unwrap();
    assert_eq!(plan["current"]["storage_limit_bytes"], 1000, "fractions of a GB, for tests and trials");
    assert_eq!(
        (&plan["current"]["transfer_limit_bytes"], &plan["current"]["storage_gb"]),
        (&json!(2000), &json!(0.000001))
    );
    // Lowering applies at once too.
    admin::set_plan(accounts, app.app_id, "50", None).await.unwrap();
    let lowered = serde_json::to_value(admin::set_plan(accounts, app.app_id, "1", None).await.unwrap()).unwrap();
    assert_eq!((&lowered["current"]["monthly_usd"], &lowered["next"]), (&json!("0.30"), &Value::Null));
    let err = admin::set_plan(accounts, uuid::Uuid::now_v7(), "1", None).await.unwrap_err();
    assert!(err.to_string().contains("there is no app"), "{err}");
    assert!(admin::quote("0", None).unwrap_err().to_string().contains("more than 0 GB"));
}
