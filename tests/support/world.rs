//! One world for the integration tests that run the function or the CLI against local
//! services: `moto_server`, dynalite behind the proxy that keeps DynamoDB's limits, the
//! CloudWatch stand-in and the EventBridge stand-in (in front of moto), each started only
//! when a test asks for it; one SDK configuration sending each service to its server; the
//! report bucket, the notification bus, the incident table and a channel queue receiving
//! the tool's events; the `LambdaConfig` those imply and the function's `Handler` built
//! from them; and dead letters as the function receives them.
//!
//! ```ignore
//! let world = World::builder()
//!     .incident_table("incidents")
//!     .cloudwatch()
//!     .bucket("triage-reports")
//!     .bus("triage-notices")
//!     .channel("incident-channel", "to-the-channel", "DLQ Triage Incident")
//!     .build()
//!     .await;
//! let h = world.handler(&clock_at(t), &[("REDRIVE", "auto")]);
//! ```

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use genesys_dlq_triage::{Handler, LambdaConfig, lookup_from_pairs};
use serde_json::{Value, json};

use crate::cloudwatch::CloudWatch;
use crate::dynalite::{Dynalite, sdk_with_endpoints};
use crate::eventbridge::EventSources;
use crate::moto::Moto;
use crate::sqs::Queue;

/// The function's clock (epoch ms), shared by the handlers a test builds and moved by the
/// test.
pub type Clock = Arc<AtomicI64>;

/// A clock reading `t`.
pub fn clock_at(t: DateTime<Utc>) -> Clock {
    Arc::new(AtomicI64::new(t.timestamp_millis()))
}

/// The configuration `NAME=value` pairs give, as the function reads its environment.
pub fn lambda_config(pairs: &[(&str, &str)]) -> LambdaConfig {
    LambdaConfig::from_lookup(&lookup_from_pairs(pairs)).unwrap()
}

/// What to start and create: [`World::builder`].
#[derive(Default)]
pub struct WorldBuilder {
    moto_env: Vec<(String, String)>,
    dynalite: bool,
    cloudwatch: bool,
    event_sources: bool,
    bucket: Option<String>,
    bus: Option<String>,
    table: Option<String>,
    /// (queue, rule, detail-type).
    channel: Option<(String, String, String)>,
}

impl WorldBuilder {
    /// moto with these environment variables (`INITIAL_NO_AUTH_ACTION_COUNT`, …).
    pub fn moto_env(mut self, env: &[(&str, &str)]) -> Self {
        self.moto_env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self
    }

    /// DynamoDB on dynalite (behind its proxy).
    pub fn dynalite(mut self) -> Self {
        self.dynalite = true;
        self
    }

    /// CloudWatch on its stand-in (moto's server does not speak the SDK's CBOR protocol).
    pub fn cloudwatch(mut self) -> Self {
        self.cloudwatch = true;
        self
    }

    /// The EventBridge stand-in in front of moto, for the CLI (partner event sources,
    /// connection states, archives and replays); the SDK configuration stays on moto.
    pub fn event_sources(mut self) -> Self {
        self.event_sources = true;
        self
    }

    /// The report bucket `name`, created on moto (`REPORT_BUCKET`).
    pub fn bucket(mut self, name: &str) -> Self {
        self.bucket = Some(name.to_owned());
        self
    }

    /// The notification bus `name`, created on moto (`NOTIFY_EVENT_BUS`).
    pub fn bus(mut self, name: &str) -> Self {
        self.bus = Some(name.to_owned());
        self
    }

    /// The incident table `name` on dynalite, as template.yaml declares it
    /// (`INCIDENT_TABLE`).
    pub fn incident_table(mut self, name: &str) -> Self {
        self.dynalite = true;
        self.table = Some(name.to_owned());
        self
    }

    /// Queue `queue` receiving the tool's events of `detail_type` from the bus, through
    /// rule `rule` (target id `channel`).
    pub fn channel(mut self, queue: &str, rule: &str, detail_type: &str) -> Self {
        self.channel = Some((queue.to_owned(), rule.to_owned(), detail_type.to_owned()));
        self
    }

    /// Starts the servers and creates the resources.
    pub async fn build(self) -> World {
        let env: Vec<(&str, &str)> = self
            .moto_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let moto = Moto::start_with(&env).await;
        let dynalite = if self.dynalite {
            Some(Dynalite::start().await)
        } else {
            None
        };
        let cloudwatch = if self.cloudwatch {
            Some(CloudWatch::start().await)
        } else {
            None
        };
        let sources = if self.event_sources {
            Some(EventSources::start(&moto.endpoint).await)
        } else {
            None
        };
        let endpoints = Endpoints {
            moto: &moto.endpoint,
            dynamodb: dynalite.as_ref().map(|d| d.endpoint.as_str()),
            cloudwatch: cloudwatch.as_ref().map(|c| c.endpoint.as_str()),
        };
        let sdk = endpoints.sdk(&[]).await;
        let mut world = World {
            sdk,
            moto,
            dynalite,
            cloudwatch,
            sources,
            bucket: self.bucket,
            bus: self.bus,
            table: self.table,
            channel: None,
        };
        world.create(self.channel).await;
        world
    }
}

/// The running servers (each stopped when the world is dropped), the SDK configuration
/// for them and the resources the function is configured with.
pub struct World {
    /// moto: S3, SQS, EventBridge, Secrets Manager, Lambda, IAM, KMS, SNS.
    pub moto: Moto,
    dynalite: Option<Dynalite>,
    cloudwatch: Option<CloudWatch>,
    sources: Option<EventSources>,
    /// Each service on its server here; test credentials, us-east-1.
    pub sdk: aws_config::SdkConfig,
    bucket: Option<String>,
    bus: Option<String>,
    table: Option<String>,
    channel: Option<Queue>,
}

impl World {
    /// moto alone until told otherwise.
    pub fn builder() -> WorldBuilder {
        WorldBuilder::default()
    }

    /// dynalite (its proxy counts calls, throttles on demand, keeps DynamoDB's limits).
    pub fn dynalite(&self) -> &Dynalite {
        self.dynalite.as_ref().expect("a world built with dynalite")
    }

    /// The CloudWatch stand-in.
    pub fn cloudwatch(&self) -> &CloudWatch {
        self.cloudwatch
            .as_ref()
            .expect("a world built with cloudwatch")
    }

    /// The EventBridge stand-in.
    pub fn sources(&self) -> &EventSources {
        self.sources
            .as_ref()
            .expect("a world built with event_sources")
    }

    /// The queue the channel rule sends the tool's events to.
    pub fn channel(&self) -> &Queue {
        self.channel.as_ref().expect("a world built with a channel")
    }

    /// An EventBridge client (on moto).
    pub fn events(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.sdk)
    }

    /// A DynamoDB client (on dynalite).
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    /// SDK configuration for this world signing as the IAM user with these keys (moto
    /// enforces IAM when started with `INITIAL_NO_AUTH_ACTION_COUNT`).
    pub fn sdk_signed_as(&self, access_key: &str, secret_key: &str) -> aws_config::SdkConfig {
        self.sdk
            .to_builder()
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        access_key, secret_key, None, None, "test",
                    ),
                ),
            )
            .build()
    }

    /// SDK configuration for this world with `moved` services elsewhere (`("dynamodb",
    /// url)`: the service id in lower case, spaces as hyphens).
    pub async fn sdk_routing(&self, moved: &[(&str, &str)]) -> aws_config::SdkConfig {
        Endpoints {
            moto: &self.moto.endpoint,
            dynamodb: self.dynalite.as_ref().map(|d| d.endpoint.as_str()),
            cloudwatch: self.cloudwatch.as_ref().map(|c| c.endpoint.as_str()),
        }
        .sdk(moved)
        .await
    }

    /// `dlq-triage ARGS` against this world's servers (`AWS_ENDPOINT_URL` and, for the
    /// servers started, `AWS_ENDPOINT_URL_DYNAMODB`, `_CLOUDWATCH`, `_EVENTBRIDGE`).
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = crate::cli::dlq_triage(args);
        cmd.env("AWS_ENDPOINT_URL", &self.moto.endpoint);
        if let Some(dynalite) = &self.dynalite {
            cmd.env("AWS_ENDPOINT_URL_DYNAMODB", &dynalite.endpoint);
        }
        if let Some(cloudwatch) = &self.cloudwatch {
            cmd.env("AWS_ENDPOINT_URL_CLOUDWATCH", &cloudwatch.endpoint);
        }
        if let Some(sources) = &self.sources {
            cmd.env("AWS_ENDPOINT_URL_EVENTBRIDGE", &sources.endpoint);
        }
        cmd
    }

    /// The function's configuration: this world's bucket, bus and table, then `vars`
    /// (a later pair wins).
    pub fn config(&self, vars: &[(&str, &str)]) -> LambdaConfig {
        let names = [
            ("REPORT_BUCKET", &self.bucket),
            ("NOTIFY_EVENT_BUS", &self.bus),
            ("INCIDENT_TABLE", &self.table),
        ];
        let pairs: Vec<(&str, &str)> = names
            .iter()
            .filter_map(|(name, value)| Some((*name, value.as_deref()?)))
            .chain(vars.iter().copied())
            .collect();
        lambda_config(&pairs)
    }

    /// A function container configured by [`World::config`] of `vars`, telling the time by
    /// `clock`.
    pub fn handler(&self, clock: &Clock, vars: &[(&str, &str)]) -> Handler {
        self.handler_for(self.config(vars), Some(clock))
    }

    /// A function container with `config`, telling the time by `clock` (the machine's
    /// when `None`).
    pub fn handler_for(&self, config: LambdaConfig, clock: Option<&Clock>) -> Handler {
        self.handler_through(&self.sdk, config, clock)
    }

    /// [`World::handler_for`] calling AWS through `sdk` ([`World::sdk_signed_as`],
    /// [`World::sdk_routing`]).
    pub fn handler_through(
        &self,
        sdk: &aws_config::SdkConfig,
        config: LambdaConfig,
        clock: Option<&Clock>,
    ) -> Handler {
        let handler = Handler::from_sdk(config, sdk, true, "triage");
        match clock {
            Some(clock) => {
                let clock = clock.clone();
                handler.with_clock(move || {
                    DateTime::from_timestamp_millis(clock.load(Ordering::SeqCst)).unwrap()
                })
            }
            None => handler,
        }
    }

    /// The channel's messages so far (received and deleted), each parsed.
    pub async fn channel_events(&self) -> Vec<Value> {
        self.channel()
            .drain_bodies()
            .await
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }

    /// Rule `name` on `bus` (the default bus when `None`) with `pattern` and its one target
    /// (id, ARN); the rule's ARN.
    pub async fn route(
        &self,
        bus: Option<&str>,
        name: &str,
        pattern: &str,
        (id, arn): (&str, &str),
    ) -> String {
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id(id)
            .arn(arn)
            .build()
            .unwrap();
        crate::moto::rule_with_target(&self.events(), bus, name, pattern, target).await
    }

    /// API destination `name` through `connection` to `endpoint` at `limit` per second;
    /// its ARN.
    pub async fn api_destination(
        &self,
        name: &str,
        connection: &str,
        endpoint: &str,
        limit: i32,
    ) -> String {
        self.events()
            .create_api_destination()
            .name(name)
            .connection_arn(connection)
            .invocation_endpoint(endpoint)
            .http_method(aws_sdk_eventbridge::types::ApiDestinationHttpMethod::Post)
            .invocation_rate_limit_per_second(limit)
            .send()
            .await
            .unwrap()
            .api_destination_arn()
            .unwrap()
            .to_owned()
    }

    /// A function `name` (an empty zip: never invoked) with role `role` (created unless
    /// it exists) and `timeout` (Lambda's default when `None`); its ARN.
    pub async fn function(&self, name: &str, role: &str, timeout: Option<i32>) -> String {
        let iam = aws_sdk_iam::Client::new(&self.sdk);
        let role = match iam.get_role().role_name(role).send().await {
            Ok(found) => found.role.unwrap().arn,
            Err(_) => {
                let trust = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]});
                iam.create_role()
                    .role_name(role)
                    .assume_role_policy_document(trust.to_string())
                    .send()
                    .await
                    .expect("CreateRole")
                    .role
                    .unwrap()
                    .arn
            }
        };
        // The end-of-central-directory record alone: an empty zip archive.
        let mut zip = b"PK\x05\x06".to_vec();
        zip.extend([0u8; 18]);
        aws_sdk_lambda::Client::new(&self.sdk)
            .create_function()
            .function_name(name)
            .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
            .handler("bootstrap")
            .role(role)
            .set_timeout(timeout)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(zip))
                    .build(),
            )
            .send()
            .await
            .expect("CreateFunction")
            .function_arn
            .unwrap()
    }

    /// Puts `value` of `metric` under `AWS/Events` with exactly `dimensions` at `at` (epoch
    /// seconds), through CloudWatch's API as EventBridge publishes it.
    pub async fn put_metric(&self, metric: &str, dimensions: &[(&str, &str)], at: i64, value: f64) {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        let mut datum = MetricDatum::builder()
            .metric_name(metric)
            .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(at))
            .value(value);
        for (name, v) in dimensions {
            datum = datum.dimensions(Dimension::builder().name(*name).value(*v).build());
        }
        aws_sdk_cloudwatch::Client::new(&self.sdk)
            .put_metric_data()
            .namespace("AWS/Events")
            .metric_data(datum.build())
            .send()
            .await
            .unwrap();
    }

    /// The bucket, the bus, the table and the channel asked for.
    async fn create(&mut self, channel: Option<(String, String, String)>) {
        if let Some(bucket) = &self.bucket {
            let s3 = genesys_dlq_triage::s3_client(&self.sdk, true);
            s3.create_bucket().bucket(bucket).send().await.unwrap();
        }
        if let Some(bus) = &self.bus {
            self.events()
                .create_event_bus()
                .name(bus)
                .send()
                .await
                .unwrap();
        }
        if let Some(table) = &self.table {
            self.dynalite().create_incident_table(table).await;
        }
        if let Some((queue, rule, detail_type)) = channel {
            let queue = Queue::create(&self.sdk, &queue).await;
            let pattern = format!(
                r#"{{"source": ["genesys-dlq-triage"], "detail-type": ["{detail_type}"]}}"#
            );
            let arn = queue.arn().await;
            self.route(self.bus.as_deref(), &rule, &pattern, ("channel", &arn))
                .await;
            self.channel = Some(queue);
        }
    }
}

/// Where each service is: moto, unless dynalite or the CloudWatch stand-in runs.
struct Endpoints<'a> {
    moto: &'a str,
    dynamodb: Option<&'a str>,
    cloudwatch: Option<&'a str>,
}

impl Endpoints<'_> {
    /// SDK configuration for these endpoints with `moved` services elsewhere.
    async fn sdk(&self, moved: &[(&str, &str)]) -> aws_config::SdkConfig {
        let on_moto = [
            "s3",
            "sqs",
            "eventbridge",
            "secrets-manager",
            "lambda",
            "iam",
            "kms",
            "sns",
        ];
        let mut endpoints: Vec<(&str, &str)> = on_moto
            .into_iter()
            .map(|service| (service, self.moto))
            .chain([
                ("dynamodb", self.dynamodb.unwrap_or(self.moto)),
                ("cloudwatch", self.cloudwatch.unwrap_or(self.moto)),
            ])
            .collect();
        for (service, url) in moved {
            endpoints.retain(|(s, _)| s != service);
            endpoints.push((service, url));
        }
        sdk_with_endpoints(&endpoints).await
    }
}

/// Dead letters as the function receives them from the DLQ: records of
/// events/sqs-single.json with EventBridge's attributes and the `SentTimestamp` SQS gave
/// each when EventBridge dead-lettered it, which is the function's clock only when it
/// drains at once (a backlog reads minutes or hours later).
pub struct DeadLetters {
    records: Vec<Value>,
}

impl DeadLetters {
    /// `n` dead letters sent to the queue at `sent`, the i-th with message id `id(i)`.
    pub fn new(n: usize, sent: DateTime<Utc>, id: impl Fn(usize) -> String) -> DeadLetters {
        let template: Value =
            serde_json::from_slice(&crate::fixtures::event_bytes("sqs-single.json")).unwrap();
        let one = &template["Records"][0];
        let records = (0..n)
            .map(|i| {
                let mut r = one.clone();
                r["messageId"] = json!(id(i));
                r["attributes"]["SentTimestamp"] = json!(sent.timestamp_millis().to_string());
                r
            })
            .collect();
        DeadLetters { records }
    }

    /// Every record's String message attribute `name` (`TARGET_ARN`, `RULE_ARN`,
    /// `ERROR_CODE`, `ERROR_MESSAGE`) is `value`.
    pub fn attribute(mut self, name: &str, value: &str) -> DeadLetters {
        for r in &mut self.records {
            r["messageAttributes"][name]["stringValue"] = json!(value);
        }
        self
    }

    /// Each record's event (its body) edited by `edit(i, event)`.
    pub fn events(mut self, edit: impl Fn(usize, &mut Value)) -> DeadLetters {
        for (i, r) in self.records.iter_mut().enumerate() {
            let mut event: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            edit(i, &mut event);
            r["body"] = json!(event.to_string());
        }
        self
    }

    /// The Lambda SQS event (`{"Records": [...]}`) as `T` (an `SqsEvent`).
    pub fn event<T: serde::de::DeserializeOwned>(self) -> T {
        serde_json::from_value(json!({ "Records": self.records })).unwrap()
    }
}
