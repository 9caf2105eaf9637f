//! The Genesys Cloud client and the correlation step against the simulator, over real HTTP
//! on 127.0.0.1.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dlq_triage_test_support::genesys_sim::{Sim, SimState};
use dlq_triage_test_support::net::black_hole;
use genesys_dlq_triage::genesys::{
    AnalyticsClient, AnalyticsConfig, ClientCredentials, Secret, TokenSource, resolve_endpoints,
};
use genesys_dlq_triage::{
    CacheTtl, ConversationCache, Correlate, GenesysCorrelator, InteractionInfo, LookupFailure,
};

const CLIENT_ID: &str = "3f9d2c1e-client";
const CLIENT_SECRET: &str = "s3cr3t-Genesys-client-value";

async fn sim() -> Sim {
    Sim::start(SimState::new(CLIENT_ID, CLIENT_SECRET), 0)
        .await
        .unwrap()
}

fn fast_config() -> AnalyticsConfig {
    AnalyticsConfig {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        ..AnalyticsConfig::default()
    }
}

fn correlator(sim: &Sim, secret: &str, config: AnalyticsConfig) -> GenesysCorrelator {
    correlator_at(&sim.base_url(), CLIENT_ID, secret, config)
}

/// One request at a time, so request counts are exact.
fn serial_correlator(sim: &Sim) -> GenesysCorrelator {
    let config = AnalyticsConfig {
        concurrency: 1,
        ..fast_config()
    };
    correlator(sim, CLIENT_SECRET, config)
}

/// A correlator with its own cache against any API base.
fn correlator_at(base: &str, id: &str, secret: &str, config: AnalyticsConfig) -> GenesysCorrelator {
    connect(
        resolve_endpoints(None, Some(base), None).unwrap(),
        id,
        secret,
        config,
    )
}

fn connect(
    endpoints: genesys_dlq_triage::genesys::Endpoints,
    id: &str,
    secret: &str,
    config: AnalyticsConfig,
) -> GenesysCorrelator {
    let credentials = ClientCredentials {
        client_id: id.into(),
        client_secret: Secret::new(secret),
    };
    let cache = Arc::new(ConversationCache::new(10_000, CacheTtl::default()));
    let tokens = Arc::new(TokenSource::new(
        reqwest::Client::new(),
        &endpoints.login_base,
        credentials,
    ));
    GenesysCorrelator::new(
        AnalyticsClient::new(reqwest::Client::new(), &endpoints.api_base, tokens, config),
        cache,
    )
}

fn uuid(i: usize) -> String {
    format!("{:08x}-1b8e-4d2a-9c1e-{:012x}", i, i * 7919)
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(uuid).collect()
}

fn all_found(answers: &std::collections::HashMap<String, InteractionInfo>, ids: &[String]) {
    assert_eq!(answers.len(), ids.len());
    for id in ids {
        assert!(
            matches!(answers[id], InteractionInfo::Found(_)),
            "{id}: {:?}",
            answers[id]
        );
    }
}

#[tokio::test]
async fn a_batch_costs_one_token_and_one_call_per_chunk_and_nothing_when_cached() {
    let sim = sim().await;
    let c = correlator(&sim, CLIENT_SECRET, fast_config());
    // 1,000 records over 300 distinct conversations: the pipeline hands over distinct ids.
    let records: Vec<String> = (0..1000).map(|i| uuid(i % 300)).collect();
    let mut distinct = records.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 300);
    let answers = c.correlate(&distinct, Duration::from_secs(30)).await;
    all_found(&answers, &distinct);
    let stats = &sim.state.stats;
    assert_eq!(stats.token_requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        stats.detail_requests.load(Ordering::SeqCst),
        3,
        "ceil(300 / 100)"
    );
    assert_eq!(stats.ids_requested.load(Ordering::SeqCst), 300);

    let again = c.correlate(&distinct, Duration::from_secs(30)).await;
    all_found(&again, &distinct);
    assert_eq!(
        stats.token_requests.load(Ordering::SeqCst),
        1,
        "the same batch again costs no token"
    );
    assert_eq!(
        stats.detail_requests.load(Ordering::SeqCst),
        3,
        "…and no look-up"
    );
}

#[tokio::test]
async fn found_conversations_carry_their_details() {
    let sim = sim().await;
    let c = correlator(&sim, CLIENT_SECRET, fast_config());
    let id = uuid(1);
    let answers = c
        .correlate(std::slice::from_ref(&id), Duration::from_secs(10))
        .await;
    let InteractionInfo::Found(summary) = &answers[&id] else {
        panic!("{:?}", answers[&id])
    };
    let expected = dlq_triage_test_support::genesys_sim::conversation(&id);
    assert_eq!(
        summary.conversation_start.as_deref(),
        expected["conversationStart"].as_str()
    );
    assert_eq!(
        summary.conversation_end.as_deref(),
        expected["conversationEnd"].as_str()
    );
    assert_eq!(
        summary.originating_direction.as_deref(),
        expected["originatingDirection"].as_str()
    );
    assert_eq!(
        summary.participant_purposes,
        ["acd", "agent", "customer", "ivr"]
    );
    assert_eq!(
        summary.division_ids,
        ["7f3c0d2e-5a1b-4c9d-8e7f-001122334455"]
    );
    assert_eq!(summary.queue_ids.len(), 1);
    assert_eq!(summary.media_types.len(), 1);
    if summary.conversation_end.is_some() {
        assert!(summary.duration_ms.unwrap() >= 60_000);
    }
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let sim = sim().await;
    let all = ids(5);
    sim.state.unknown.lock().unwrap().insert(all[2].clone());
    let c = correlator(&sim, CLIENT_SECRET, fast_config());
    let answers = c.correlate(&all, Duration::from_secs(10)).await;
    assert_eq!(answers[&all[2]], InteractionInfo::NotFound);
    assert!(matches!(answers[&all[0]], InteractionInfo::Found(_)));
}

#[tokio::test]
async fn a_429_storm_is_ridden_out_honouring_retry_after() {
    let sim = sim().await;
    sim.state.fail_429.store(8, Ordering::SeqCst);
    *sim.state.retry_after.lock().unwrap() = Some("0.02".into());
    let c = correlator(
        &sim,
        CLIENT_SECRET,
        AnalyticsConfig {
            max_attempts: 12,
            ..fast_config()
        },
    );
    let all = ids(250);
    let answers = c.correlate(&all, Duration::from_secs(30)).await;
    all_found(&answers, &all);
    assert_eq!(sim.state.stats.served_429.load(Ordering::SeqCst), 8);
    assert_eq!(
        sim.state.stats.detail_requests.load(Ordering::SeqCst),
        3 + 8
    );
}

#[tokio::test]
async fn a_401_mid_batch_refreshes_the_token_once_and_retries() {
    let sim = sim().await;
    let c = serial_correlator(&sim);
    let first = ids(100);
    all_found(&c.correlate(&first, Duration::from_secs(10)).await, &first);
    sim.state.fail_401.store(1, Ordering::SeqCst); // the token is revoked now
    let second: Vec<String> = (100..300).map(uuid).collect();
    all_found(
        &c.correlate(&second, Duration::from_secs(10)).await,
        &second,
    );
    assert_eq!(sim.state.stats.token_requests.load(Ordering::SeqCst), 2);
    assert_eq!(sim.state.stats.served_401.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_token_rejected_twice_is_a_permanent_failure() {
    let sim = sim().await;
    sim.state.fail_401.store(100, Ordering::SeqCst);
    let c = correlator(&sim, CLIENT_SECRET, fast_config());
    let all = ids(3);
    let answers = c.correlate(&all, Duration::from_secs(10)).await;
    assert!(
        matches!(&answers[&all[0]], InteractionInfo::Unavailable(LookupFailure { transient: false, error }) if error.contains("401"))
    );
    assert_eq!(
        sim.state.stats.token_requests.load(Ordering::SeqCst),
        2,
        "refreshed once, not in a loop"
    );
}

#[tokio::test]
async fn server_errors_are_retried() {
    let sim = sim().await;
    sim.state.fail_5xx.store(3, Ordering::SeqCst);
    *sim.state.retry_after.lock().unwrap() = None;
    let c = serial_correlator(&sim);
    let all = ids(10);
    all_found(&c.correlate(&all, Duration::from_secs(10)).await, &all);
    assert_eq!(sim.state.stats.served_5xx.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn timeouts_are_retried() {
    let sim = sim().await;
    sim.state.hang.store(1, Ordering::SeqCst);
    *sim.state.hang_for.lock().unwrap() = Duration::from_secs(3);
    let config = AnalyticsConfig {
        request_timeout: Duration::from_millis(200),
        ..fast_config()
    };
    let c = correlator(&sim, CLIENT_SECRET, config);
    let all = ids(10);
    all_found(&c.correlate(&all, Duration::from_secs(10)).await, &all);
    assert_eq!(sim.state.stats.detail_requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_server_limit_below_the_chunk_size_is_learned_by_splitting() {
    let sim = sim().await;
    *sim.state.max_ids.lock().unwrap() = Some(30);
    let c = serial_correlator(&sim);
    let all = ids(300);
    all_found(&c.correlate(&all, Duration::from_secs(30)).await, &all);
    let stats = &sim.state.stats;
    // 100 → 400, 50 → 400, 25 ✓ ×2, then 25-id chunks for the rest: 2 rejections in all.
    assert_eq!(stats.rejected_too_many_ids.load(Ordering::SeqCst), 2);
    assert_eq!(stats.detail_requests.load(Ordering::SeqCst), 2 + 300 / 25);
    assert!(stats.max_ids_in_one_call.load(Ordering::SeqCst) == 100);
}

#[tokio::test]
async fn garbage_bodies_are_retried_then_reported_never_a_crash() {
    let sim = sim().await;
    sim.state.garbage.store(1, Ordering::SeqCst);
    let c = serial_correlator(&sim);
    let all = ids(5);
    all_found(&c.correlate(&all, Duration::from_secs(10)).await, &all);

    sim.state.garbage.store(1000, Ordering::SeqCst);
    let more: Vec<String> = (5..10).map(uuid).collect();
    let c = correlator(
        &sim,
        CLIENT_SECRET,
        AnalyticsConfig {
            max_attempts: 3,
            ..fast_config()
        },
    );
    let answers = c.correlate(&more, Duration::from_secs(10)).await;
    for id in &more {
        assert!(
            matches!(&answers[id], InteractionInfo::Unavailable(LookupFailure { transient: true, error }) if error.contains("malformed")),
            "{:?}",
            answers[id]
        );
    }
}

#[tokio::test]
async fn an_oversized_answer_is_split_and_a_single_oversized_one_is_an_error() {
    let sim = sim().await;
    let one = dlq_triage_test_support::genesys_sim::conversation(&uuid(0))
        .to_string()
        .len();
    let c = correlator(
        &sim,
        CLIENT_SECRET,
        AnalyticsConfig {
            max_response_bytes: one * 3,
            chunk_size: 10,
            ..fast_config()
        },
    );
    let all = ids(10);
    all_found(&c.correlate(&all, Duration::from_secs(10)).await, &all);

    let c = correlator(
        &sim,
        CLIENT_SECRET,
        AnalyticsConfig {
            max_response_bytes: one / 2,
            chunk_size: 2,
            ..fast_config()
        },
    );
    let answers = c.correlate(&ids(2), Duration::from_secs(10)).await;
    assert!(answers.values().all(|a| matches!(a, InteractionInfo::Unavailable(LookupFailure { transient: false, error }) if error.contains("exceeds"))));
}

#[tokio::test]
async fn the_time_budget_bounds_the_whole_look_up() {
    let sim = sim().await;
    *sim.state.latency.lock().unwrap() = Duration::from_secs(2);
    let c = correlator(&sim, CLIENT_SECRET, fast_config());
    let started = std::time::Instant::now();
    let answers = c.correlate(&ids(3), Duration::from_millis(300)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "returned at the budget, not after the latency"
    );
    assert!(
        answers.values().all(|a| a.is_transient_failure()),
        "{answers:?}"
    );
}

#[tokio::test]
async fn bad_credentials_fail_permanently_without_revealing_the_secret() {
    let sim = sim().await;
    let wrong = "wrong-secret-value-123";
    let c = correlator(&sim, wrong, fast_config());
    let answers = c.correlate(&ids(2), Duration::from_secs(10)).await;
    for a in answers.values() {
        let InteractionInfo::Unavailable(LookupFailure { error, transient }) = a else {
            panic!("{a:?}")
        };
        assert!(!transient);
        assert!(error.contains("invalid_client"), "{error}");
        assert!(
            !error.contains(wrong) && !error.contains(CLIENT_SECRET),
            "{error}"
        );
    }
    let debug = format!("{c:?}");
    assert!(!debug.contains(wrong), "{debug}");
    assert!(!debug.contains(CLIENT_ID), "{debug}");
}

#[tokio::test]
async fn neither_secret_nor_token_appears_in_debug_output_or_errors() {
    let sim = sim().await;
    let c = correlator(&sim, CLIENT_SECRET, fast_config());
    let all = ids(3);
    c.correlate(&all, Duration::from_secs(10)).await;
    sim.state.fail_401.store(100, Ordering::SeqCst);
    let answers = c.correlate(&ids(6)[3..], Duration::from_secs(10)).await;
    let tokens = sim.state.issued_tokens();
    assert!(!tokens.is_empty());
    let text = format!("{c:?} {answers:?}");
    for secret in tokens.iter().map(String::as_str).chain([CLIENT_SECRET]) {
        assert!(!text.contains(secret), "leaked {secret} in {text}");
    }
    assert_eq!(format!("{:?}", Secret::new(CLIENT_SECRET)), "Secret(***)");
}

#[tokio::test]
async fn a_missing_permission_is_permanent() {
    // A login host that issues tokens but an API that refuses them with 403.
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route(
            "/oauth/token",
            post(|| async {
                axum::Json(serde_json::json!({"access_token": "t", "expires_in": 3600}))
            }),
        )
        .route(
            "/api/v2/analytics/conversations/details",
            get(|| async { (axum::http::StatusCode::FORBIDDEN, "{}") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let c = correlator_at(&format!("http://{addr}"), "x", "y", fast_config());
    let answers = c.correlate(&ids(1), Duration::from_secs(5)).await;
    assert!(answers.values().all(|a| matches!(a, InteractionInfo::Unavailable(LookupFailure { transient: false, error }) if error.contains("analytics:conversationDetail:view"))));
}

#[tokio::test]
async fn concurrent_callers_share_one_token_fetch() {
    let sim = sim().await;
    *sim.state.latency.lock().unwrap() = Duration::from_millis(20);
    let endpoints = resolve_endpoints(None, Some(&sim.base_url()), None).unwrap();
    let tokens = Arc::new(TokenSource::new(
        reqwest::Client::new(),
        &endpoints.login_base,
        ClientCredentials {
            client_id: CLIENT_ID.into(),
            client_secret: Secret::new(CLIENT_SECRET),
        },
    ));
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let t = tokens.clone();
            tokio::spawn(async move { t.token().await.unwrap() })
        })
        .collect();
    let mut got = Vec::new();
    for c in calls {
        got.push(c.await.unwrap());
    }
    assert!(got.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(sim.state.stats.token_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_absurd_token_lifetime_is_capped_not_a_panic() {
    let mut state = SimState::new(CLIENT_ID, CLIENT_SECRET);
    state.token_lifetime_secs = u64::MAX;
    let sim = Sim::start(state, 0).await.unwrap();
    let c = correlator(&sim, CLIENT_SECRET, fast_config());
    let all = ids(3);
    let answers = c.correlate(&all, Duration::from_secs(5)).await;
    all_found(&answers, &all);
}

/// Looks two ids up through `api` and `login` within a 1 s budget; the guard only keeps
/// a regression from hanging the suite, the budget is what must hold.
async fn look_up_within_a_second(api: &str, login: &str) -> HashMap<String, InteractionInfo> {
    let endpoints = resolve_endpoints(None, Some(api), Some(login)).unwrap();
    let c = connect(endpoints, CLIENT_ID, CLIENT_SECRET, fast_config());
    tokio::time::timeout(
        Duration::from_secs(60),
        c.correlate(&ids(2), Duration::from_secs(1)),
    )
    .await
    .expect("the look-up returned")
}

#[tokio::test]
async fn a_login_host_that_never_answers_cannot_outlast_the_budget() {
    let sim = sim().await;
    let answers = look_up_within_a_second(&sim.base_url(), &black_hole().await).await;
    assert!(
        answers.values().all(|a| matches!(
            a,
            InteractionInfo::Unavailable(LookupFailure {
                transient: true,
                ..
            })
        )),
        "{answers:?}"
    );
}

#[tokio::test]
async fn an_analytics_api_that_never_answers_cannot_outlast_the_budget() {
    let sim = sim().await;
    let answers = look_up_within_a_second(&black_hole().await, &sim.base_url()).await;
    assert!(
        answers.values().all(|a| a.is_transient_failure()),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_learned_chunk_limit_recovers_once_the_server_takes_more_again() {
    let sim = sim().await;
    // One bad moment: the server refuses more than one id per call.
    *sim.state.max_ids.lock().unwrap() = Some(1);
    let c = serial_correlator(&sim);
    let first = ids(4);
    all_found(&c.correlate(&first, Duration::from_secs(30)).await, &first);
    // Then it takes a full chunk again; within a few batches the chunk is back to 100.
    *sim.state.max_ids.lock().unwrap() = None;
    let mut last_calls = 0;
    for batch in 1..=10 {
        let more: Vec<String> = (batch * 1000..batch * 1000 + 100).map(uuid).collect();
        let before = sim.state.stats.detail_requests.load(Ordering::SeqCst);
        all_found(&c.correlate(&more, Duration::from_secs(30)).await, &more);
        last_calls = sim.state.stats.detail_requests.load(Ordering::SeqCst) - before;
    }
    assert_eq!(last_calls, 1, "100 ids in one call again");
}
