//! Rate limits, automatic bans and CSRF, in memory and shared through the
//! real Redis between two gateway processes' worth of state.
#![allow(clippy::unwrap_used)] // Tests and benchmarks may unwrap.

mod common;

use std::time::Duration;

use common::*;

const LIMITED: &str = "[rate_limits.ip]\nrate = 2\nper = \"1s\"\nburst = 3\n[rate_limits.key]\nkey = \"header:X-Api-Key\"\nrate = 1\nper = \"1m\"\nburst = 2\n\
    [upstreams.app]\naddresses = [\"{UP}\"]\n[[routes]]\nname = \"api\"\npath_prefix = \"/api\"\nupstream = \"app\"\nrate_limits = [\"key\"]\n\
    [[routes]]\nname = \"web\"\nupstream = \"app\"\nrate_limits = [\"ip\"]\n";

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_and_ratelimit_headers() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), &format!("[bans]\nenabled = false\n{LIMITED}")).await;
    let statuses: Vec<u16> =
        futures_util::future::join_all((0..5).map(|_| get(g.http(), "/"))).await.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 3, "{statuses:?}");
    let r = get(g.http(), "/").await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(r.headers["ratelimit-limit"], "3");
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    // The steady rate refills: 2 per second.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get(g.http(), "/").await.status, 200);
    let e = g.wait_event("rate_limited").await;
    assert_eq!(e["rule"]["name"], "web");
    assert_eq!(up.count(), 4);
}

#[tokio::test]
async fn rate_limit_by_api_key_header() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), &format!("[bans]\nenabled = false\n{LIMITED}")).await;
    let key = |k: &'static str| [("x-api-key", k)];
    assert_eq!(request(g.http(), "GET", "/api/x", &key("alpha"), "").await.status, 200);
    assert_eq!(request(g.http(), "GET", "/api/x", &key("alpha"), "").await.status, 200);
    assert_eq!(request(g.http(), "GET", "/api/x", &key("alpha"), "").await.status, 429);
    assert_eq!(request(g.http(), "GET", "/api/x", &key("beta"), "").await.status, 200);
}

#[tokio::test]
async fn two_gateways_share_one_rate_limit_through_redis() {
    let up = Upstream::start("a").await;
    let redis =
        format!("[redis]\nurl = \"{REDIS_URL}\"\nkey_prefix = \"{}\"\n[bans]\nenabled = false\n", redis_prefix());
    let extra = format!("{redis}{LIMITED}");
    let a = gateway(&up.url(), &extra).await;
    let b = gateway(&up.url(), &extra).await;
    let mut ok = 0;
    for i in 0..6 {
        let g = if i % 2 == 0 { &a } else { &b };
        if get(g.http(), "/").await.status == 200 {
            ok += 1;
        }
    }
    // One burst of 3 between both, not 3 each.
    assert_eq!(ok, 3);
}

#[tokio::test]
async fn probes_and_scanners_get_a_client_banned_and_the_ban_expires() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "[bans]\nthreshold = 20\nduration = \"1s\"\n").await;
    let from = "127.0.0.20";
    let r = request_from(from, g.http(), "GET", "/.env", &[], "").await;
    assert_eq!(r.status, 404);
    assert_eq!(request_from(from, g.http(), "GET", "/", &[], "").await.status, 200);
    assert_eq!(request_from(from, g.http(), "GET", "/.git/config", &[], "").await.status, 404);
    let r = request_from(from, g.http(), "GET", "/", &[], "").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.headers["retry-after"], "1");
    assert!(r.body.contains("banned"));
    // Others are not affected.
    assert_eq!(request_from("127.0.0.21", g.http(), "GET", "/", &[], "").await.status, 200);
    // A scanner's user agent alone is enough.
    let r = request_from("127.0.0.22", g.http(), "GET", "/", &[("user-agent", "sqlmap/1.7")], "").await;
    assert_eq!(r.status, 403);
    assert_eq!(request_from("127.0.0.22", g.http(), "GET", "/", &[], "").await.status, 403);

    let ban =
        g.events().into_iter().find(|e| e["event"]["action"] == "client-banned" && e["source"]["ip"] == from).unwrap();
    assert_eq!(ban["event"]["kind"], "alert");
    assert!(ban["event"]["reason"].as_str().unwrap().contains("probe_path"), "{ban}");
    assert_eq!(
        up.seen.lock().unwrap().iter().filter(|s| s.path.starts_with("/.")).count(),
        0,
        "probes never reach the app"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(request_from(from, g.http(), "GET", "/", &[], "").await.status, 200, "the ban expired");
}

#[tokio::test]
async fn floods_of_refused_requests_lead_to_a_ban() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), &format!("[bans]\nthreshold = 5\n{LIMITED}")).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(request_from("127.0.0.23", g.http(), "GET", "/", &[], "").await.status);
    }
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    assert!(statuses.contains(&429));
    assert_eq!(*statuses.last().unwrap(), 403, "{statuses:?}");
}

#[tokio::test]
async fn bans_are_shared_through_redis_and_managed_by_the_admin_api() {
    let up = Upstream::start("a").await;
    let extra = format!(
        "[redis]\nurl = \"{REDIS_URL}\"\nkey_prefix = \"{}\"\n[bans]\nthreshold = 20\nduration = \"30s\"\n",
        redis_prefix()
    );
    let a = gateway(&up.url(), &extra).await;
    let b = gateway(&up.url(), &extra).await;
    let from = "127.0.0.30";
    assert_eq!(request_from(from, a.http(), "GET", "/.env", &[], "").await.status, 404);
    assert_eq!(request_from(from, b.http(), "GET", "/wp-login.php", &[], "").await.status, 404);
    // Scored on both, banned on both (pub/sub carries the ban).
    let mut banned_on = (false, false);
    for _ in 0..40 {
        banned_on = (
            request_from(from, a.http(), "GET", "/", &[], "").await.status == 403,
            request_from(from, b.http(), "GET", "/", &[], "").await.status == 403,
        );
        if banned_on == (true, true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(banned_on, (true, true));
    let bans_events =
        a.events().into_iter().chain(b.events()).filter(|e| e["event"]["action"] == "client-banned").count();
    assert_eq!(bans_events, 1, "one ban, made once");

    // The admin API needs the token.
    let r = request(a.admin(), "GET", "/bans", &[], "").await;
    assert_eq!(r.status, 401);
    let auth = format!("Bearer {}", a.token());
    let r = request(a.admin(), "GET", "/bans", &[("authorization", &auth)], "").await;
    assert_eq!(r.status, 200);
    let list: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(list[0]["ip"], from);

    // Lifting it on one replica lifts it everywhere.
    let r = request(a.admin(), "DELETE", &format!("/bans/{from}"), &[("authorization", &auth)], "").await;
    assert_eq!(r.status, 200);
    let mut free = false;
    for _ in 0..40 {
        if request_from(from, b.http(), "GET", "/", &[], "").await.status == 200 {
            free = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(free);

    // A manual ban through B reaches A.
    let auth_b = format!("Bearer {}", b.token());
    let r = request(
        b.admin(),
        "POST",
        "/bans",
        &[("authorization", &auth_b)],
        r#"{"ip":"127.0.0.31","duration":"1m","reason":"manual"}"#,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut seen = false;
    for _ in 0..40 {
        if request_from("127.0.0.31", a.http(), "GET", "/", &[], "").await.status == 403 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen);
    let r = request(b.admin(), "POST", "/bans", &[("authorization", &auth_b)], "{not json").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn csrf_refuses_cross_site_state_changes() {
    let up = Upstream::start("a").await;
    let extra =
        "[upstreams.app]\naddresses = [\"{UP}\"]\n[[routes]]\nname = \"app\"\nupstream = \"app\"\ncsrf = true\n";
    let g = gateway(&up.url(), extra).await;
    let host = ("host", "bank.example");
    assert_eq!(request(g.http(), "GET", "/", &[host], "").await.status, 200);
    assert_eq!(request(g.http(), "POST", "/pay", &[host, ("origin", "http://bank.example")], "a=1").await.status, 200);
    assert_eq!(request(g.http(), "POST", "/pay", &[host, ("sec-fetch-site", "same-origin")], "a=1").await.status, 200);
    let r = request(g.http(), "POST", "/pay", &[host, ("origin", "http://evil.example")], "a=1").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("cross site"));
    assert_eq!(request(g.http(), "DELETE", "/pay", &[host], "").await.status, 403);
    assert_eq!(up.seen.lock().unwrap().iter().filter(|s| s.path == "/pay").count(), 2);
    g.wait_event("cross_site_request").await;
}

#[tokio::test]
async fn bans_survive_a_restart_without_redis() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &up.url(), "");
    let g = start_with(dir, cfg.clone()).await;
    let auth = format!("Bearer {}", g.token());
    let r = request(g.admin(), "POST", "/bans", &[("authorization", &auth)], r#"{"ip":"127.0.0.40","duration":"1h"}"#)
        .await;
    assert_eq!(r.status, 201);
    let TestGateway { gw, dir } = g;
    gw.shutdown(std::time::Duration::from_secs(2)).await;
    let g = start_with(dir, cfg).await;
    assert_eq!(
        request_from("127.0.0.40", g.http(), "GET", "/", &[], "").await.status,
        403,
        "the ban survived the restart"
    );
    assert_eq!(request_from("127.0.0.41", g.http(), "GET", "/", &[], "").await.status, 200);
}

/// Issue 10, point 17: a banned client's refusals leave events, the first
/// ones one by one and the rest counted in the gate's summary.
#[tokio::test]
async fn a_banned_client_that_keeps_trying_is_seen_in_the_audit_log() {
    let up = Upstream::start("a").await;
    let g = gateway(&up.url(), "").await;
    let auth = format!("Bearer {}", g.token());
    let r = request(g.admin(), "POST", "/bans", &[("authorization", &auth)], r#"{"ip":"127.0.0.42","duration":"1h"}"#)
        .await;
    assert_eq!(r.status, 201);
    let tries = rampart_gateway::event_gate::PER_WINDOW as usize + 5;
    for _ in 0..tries {
        assert_eq!(request_from("127.0.0.42", g.http(), "GET", "/", &[], "").await.status, 403);
    }
    let banned = g.events_with_reason("banned");
    assert_eq!(banned.len(), rampart_gateway::event_gate::PER_WINDOW as usize, "the first refusals, one by one");
    assert_eq!(banned[0]["source"]["ip"], "127.0.0.42");
    assert_eq!(banned[0]["http"]["response"]["status_code"], 403);
    // Once the window closes, the rest are reported in one summary.
    tokio::time::sleep(Duration::from_millis(rampart_gateway::event_gate::WINDOW_MS + 100)).await;
    let shared = g.gw.shared();
    shared.event_gate.sweep(&shared.audit);
    let summary = g
        .events()
        .into_iter()
        .find(|e| e["event"]["action"] == "request-rejected-suppressed" && e["source"]["ip"] == "127.0.0.42")
        .expect("a summary of the suppressed refusals");
    assert_eq!(summary["labels"]["suppressed"], "5");
}
