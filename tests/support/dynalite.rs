//! DynamoDB for the incident tests: a real `dynalite` (tools/dynalite, installed by
//! `make tools`) on 127.0.0.1, which serialises conditional writes as DynamoDB does (moto's
//! DynamoDB lets two of 16 concurrent conditional writes through now and then, so it is no
//! judge of a race). In front of it, a proxy that counts each call by operation, can
//! answer throttling instead (the cost and failure tests), and keeps the limits of
//! DynamoDB that dynalite does not: no expression string over 4 KB, no item over 400 KB,
//! each refused with DynamoDB's `ValidationException`.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

/// What the proxy saw and does.
#[derive(Default)]
struct Proxy {
    /// Calls per operation (`UpdateItem`, `Query`, …).
    calls: Mutex<BTreeMap<String, usize>>,
    /// Answer every call with `ProvisionedThroughputExceededException`.
    throttle: AtomicBool,
    /// The largest item put so far, in DynamoDB's bytes.
    largest_item: AtomicUsize,
}

/// A running dynalite behind a counting proxy, both killed (or stopped) on drop.
pub struct Dynalite {
    /// The proxy, `http://127.0.0.1:PORT`: give it as `AWS_ENDPOINT_URL_DYNAMODB`.
    pub endpoint: String,
    child: Child,
    proxy: Arc<Proxy>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server.abort();
    }
}

impl Dynalite {
    /// Starts dynalite in memory and the proxy in front of it.
    pub async fn start() -> Dynalite {
        let port = super::net::free_port();
        let script = super::fixtures::repo_path("tools/dynalite/node_modules/dynalite/cli.js");
        let child = Command::new("node")
            .arg(&script)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start dynalite ({e}); run `make tools`"));
        super::net::wait_for_port(port, Duration::from_secs(30), "dynalite").await;
        let proxy = Arc::new(Proxy::default());
        let (endpoint, server) =
            serve_proxy(format!("http://127.0.0.1:{port}"), proxy.clone()).await;
        Dynalite {
            endpoint,
            child,
            proxy,
            server,
        }
    }

    /// SDK configuration that sends DynamoDB here (test credentials, us-east-1).
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        crate::local_sdk(&self.endpoint, "testing", "testing").await
    }

    /// Creates an incident table `name` as template.yaml declares it: key `incidentKey`,
    /// the sparse index `open-by-last-seen` (`openState`, `lastSeen`), TTL on `expiresAt`.
    pub async fn create_incident_table(&self, name: &str) {
        let db = aws_sdk_dynamodb::Client::new(&self.sdk().await);
        let attribute = |name: &str, kind| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .unwrap()
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .unwrap()
        };
        db.create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("incidentKey", ScalarAttributeType::S))
            .attribute_definitions(attribute("openState", ScalarAttributeType::S))
            .attribute_definitions(attribute("lastSeen", ScalarAttributeType::N))
            .key_schema(key("incidentKey", KeyType::Hash))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name("open-by-last-seen")
                    .key_schema(key("openState", KeyType::Hash))
                    .key_schema(key("lastSeen", KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        // dynalite creates tables asynchronously: wait until it is ACTIVE.
        loop {
            let table = db.describe_table().table_name(name).send().await.unwrap();
            let status = table.table().and_then(|t| t.table_status().cloned());
            if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // dynalite does not expire items, but it accepts the setting as DynamoDB does.
        let _ = db
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expiresAt")
                    .enabled(true)
                    .build()
                    .unwrap(),
            )
            .send()
            .await;
        self.reset_calls();
    }

    /// Calls per operation since the last reset.
    pub fn calls(&self) -> BTreeMap<String, usize> {
        self.proxy.calls.lock().unwrap().clone()
    }

    /// Forgets the calls counted so far.
    pub fn reset_calls(&self) {
        self.proxy.calls.lock().unwrap().clear();
    }

    /// The largest item put (`PutItem`) so far, in the bytes DynamoDB counts.
    pub fn largest_item(&self) -> usize {
        self.proxy.largest_item.load(Ordering::SeqCst)
    }

    /// From now on every call is throttled (`true`) or passed on (`false`).
    pub fn throttle(&self, on: bool) {
        self.proxy.throttle.store(on, Ordering::SeqCst);
    }
}

/// The proxy: counts each request by its `X-Amz-Target` and forwards it to `upstream`,
/// or answers throttling while that is on.
async fn serve_proxy(upstream: String, proxy: Arc<Proxy>) -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{HeaderMap, StatusCode};
    super::net::amz_json_proxy(&upstream, move |target, body| {
        let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
        *proxy.calls.lock().unwrap().entry(operation).or_default() += 1;
        let refuse = |kind: &str, message: String| {
            let error = serde_json::json!({ "__type": kind, "message": message });
            (
                StatusCode::BAD_REQUEST,
                HeaderMap::new(),
                error.to_string().into_bytes(),
            )
        };
        if proxy.throttle.load(Ordering::SeqCst) {
            return Some(refuse(
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.".into(),
            ));
        }
        if let Some(size) = item_size(body) {
            proxy.largest_item.fetch_max(size, Ordering::SeqCst);
        }
        beyond_limits(body)
            .map(|message| refuse("com.amazon.coral.validate#ValidationException", message))
    })
    .await
}

/// DynamoDB's most bytes in one expression string.
const EXPRESSION_MAX: usize = 4096;
/// DynamoDB's most bytes in one item (names and values).
const ITEM_MAX: usize = 400 * 1024;

/// What DynamoDB says about a request beyond its limits (as it words it), if it is: an
/// expression string over 4 KB, or an item to put over 400 KB.
pub fn beyond_limits(body: &[u8]) -> Option<String> {
    let request: serde_json::Value = serde_json::from_slice(body).ok()?;
    for name in [
        "UpdateExpression",
        "ConditionExpression",
        "ProjectionExpression",
        "KeyConditionExpression",
        "FilterExpression",
    ] {
        if let Some(text) = request[name].as_str()
            && text.len() > EXPRESSION_MAX
        {
            return Some(format!(
                "Invalid {name}: Expression size has exceeded the maximum allowed size; \
                 expression size: {}",
                text.len()
            ));
        }
    }
    let size = item_size(body)?;
    (size > ITEM_MAX).then(|| "Item size has exceeded the maximum allowed size".to_owned())
}

/// The size DynamoDB counts for the item of a `PutItem` request, if it is one.
fn item_size(body: &[u8]) -> Option<usize> {
    let request: serde_json::Value = serde_json::from_slice(body).ok()?;
    let item = request["Item"].as_object()?;
    Some(
        item.iter()
            .map(|(name, value)| name.len() + value_size(value))
            .sum(),
    )
}

/// The size DynamoDB counts for one attribute value in its JSON form: strings and binary
/// by their bytes, numbers by their digits, sets, lists and maps by their members plus a
/// byte or three of overhead each.
fn value_size(value: &serde_json::Value) -> usize {
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match (kind.as_str(), v) {
        ("S" | "B", serde_json::Value::String(s)) => s.len(),
        ("N", serde_json::Value::String(n)) => n.len().div_ceil(2) + 1,
        ("BOOL" | "NULL", _) => 1,
        ("SS" | "NS" | "BS", serde_json::Value::Array(members)) => {
            members.iter().map(|m| m.as_str().map_or(0, str::len)).sum()
        }
        ("L", serde_json::Value::Array(members)) => {
            3 + members.iter().map(|m| 1 + value_size(m)).sum::<usize>()
        }
        ("M", serde_json::Value::Object(members)) => {
            3 + members
                .iter()
                .map(|(k, m)| 1 + k.len() + value_size(m))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// SDK configuration with one endpoint per service (`("s3", url)`, `("dynamodb", url)`,
/// `("secrets-manager", url)`: the service id in lower case, spaces as hyphens)
/// through the shared config file's `services` section: the mechanism
/// `AWS_ENDPOINT_URL_<SERVICE>` also feeds, so S3, SQS and EventBridge can stay on moto
/// while DynamoDB goes to dynalite. Test credentials, us-east-1.
pub async fn sdk_with_endpoints(services: &[(&str, &str)]) -> aws_config::SdkConfig {
    use aws_runtime::env_config::file::{
        EnvConfigFileKind as ProfileFileKind, EnvConfigFiles as ProfileFiles,
    };
    let mut config =
        String::from("[default]\nregion = us-east-1\nservices = local\n\n[services local]\n");
    for (service, url) in services {
        config.push_str(&format!("{service} =\n  endpoint_url = {url}\n"));
    }
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .profile_files(
            ProfileFiles::builder()
                .with_contents(ProfileFileKind::Config, config)
                .build(),
        )
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}
