//! Nothing sensitive a client sends through the gateway reaches any file
//! under the data directory: not the audit log (masked, then encrypted),
//! not the access log (masked), not anything else.
#![allow(clippy::unwrap_used)] // Tests and benchmarks may unwrap.

mod common;

use std::path::Path;

use common::*;

fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test]
async fn a_secret_sent_through_the_gateway_never_appears_in_any_file() {
    let up = Upstream::start("a").await;
    let extra =
        "[upstreams.app]\naddresses = [\"{UP}\"]\n[[routes]]\nname = \"app\"\nupstream = \"app\"\ncsrf = true\n";
    let g = gateway(&up.url(), extra).await;
    let card = "4111111111111111";
    let aws = "AKIAIOSFODNN7EXAMPLE";
    let bearer = "sk_live_51HabcdefghijklmnopQRSTUV";
    let cookie = "SuperSecretCookieValue123";
    let password = "Hunter2Secret";
    let email = "alice.secret@example.com";
    let headers = [
        ("authorization", &*format!("Bearer {bearer}")),
        ("cookie", &*format!("session={cookie}")),
        ("user-agent", &*format!("client/1.0 key={aws}")),
    ];
    // Served, rejected (CSRF), and over a limit: every logging path runs.
    let ok =
        request(g.http(), "GET", &format!("/cards/{card}/owner/{email}/profile?password={password}"), &headers, "")
            .await;
    assert_eq!(ok.status, 200);
    let refused = request(
        g.http(),
        "POST",
        &format!("/cards/{card}/charge?password={password}"),
        &headers,
        &format!("password={password}"),
    )
    .await;
    assert_eq!(refused.status, 403);
    // Refused by the WAF, whose log quotes what matched.
    let attack = format!("/cards/{card}/owner?password={password}&email={email}&q=1%27%20or%201=1--");
    assert_eq!(request(g.http(), "GET", &attack, &headers, "").await.status, 403);
    let long = format!("/cards/{card}/{}", "x".repeat(9000));
    assert_eq!(request(g.http(), "GET", &long, &headers, "").await.status, 414);
    // The upstream did get what it was sent (the gateway forwards, it does
    // not tamper with requests).
    assert!(up.last().headers["authorization"].to_str().unwrap().contains(bearer));

    let events = g.events();
    assert!(events.iter().any(|e| e["event"]["reason"] == "cross_site_request"));
    let rejected = events.iter().find(|e| e["event"]["reason"] == "cross_site_request").unwrap();
    assert_eq!(rejected["url"]["path"], "/cards/************1111/charge", "masked, not dropped");
    // The access log is written by its own thread; give it a moment.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let access = std::fs::read_to_string(g.dir.path().join("access.log")).unwrap();
    assert!(access.contains("************1111"), "{access}");
    let waf = std::fs::read_to_string(g.dir.path().join("waf.log")).unwrap();
    assert!(waf.contains("[id \"942100\"]"), "{waf}");

    let mut files = Vec::new();
    all_files(g.dir.path(), &mut files);
    assert!(files.len() > 5, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for secret in [card, aws, bearer, cookie, password, email] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} found in {}", f.display());
        }
    }
    // And not in the decrypted audit log either.
    let text = audit_text(g.dir.path());
    for secret in [card, aws, bearer, cookie, password, email] {
        assert!(!text.contains(secret), "{secret} in the decrypted audit log");
    }
}
