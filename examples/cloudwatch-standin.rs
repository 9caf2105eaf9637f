//! The CloudWatch stand-in of tests/support as a process, for `make demo-poll`: it speaks
//! the protocol the AWS SDK for Rust speaks to CloudWatch, which moto's server does not.
//!
//! ```sh
//! cargo run --example cloudwatch-standin -- --port 0 --sample-metrics 20
//! ```
//! With `--sample-metrics N`, it first stores EventBridge's metrics for the sample batch's
//! rules over the last N minutes, as EventBridge would publish them: `to-crm` invoked at
//! 1,800 a minute (30/s) with 1 % sent to the dead-letter queue, `to-wfm` at 100 a minute.
//! Prints `listening on http://127.0.0.1:PORT` and serves until killed.

use std::io::Write;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use clap::Parser;
use dlq_triage_test_support::cloudwatch::CloudWatch;

/// A CloudWatch stand-in on 127.0.0.1.
#[derive(Debug, Parser)]
struct Args {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Store the sample's rule metrics over the last N minutes first.
    #[arg(long)]
    sample_metrics: Option<i64>,
}

const BUS: &str = "aws.partner/genesys.com/cloud/cf6cb7d5-d0ea-45b5-b0cf-73ad5f5b8721/prod-events";

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let standin = CloudWatch::start_on(args.port).await;
    if let Some(minutes) = args.sample_metrics {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&standin.endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                "demo", "demo", None, None, "demo",
            ))
            .load()
            .await;
        let cw = aws_sdk_cloudwatch::Client::new(&sdk);
        let now = chrono::Utc::now().timestamp();
        for minute in -minutes..=1 {
            for (rule, metric, value) in [
                ("to-crm", "Invocations", 1800.0),
                ("to-crm", "InvocationsSentToDlq", 18.0),
                ("to-wfm", "Invocations", 100.0),
            ] {
                let datum = MetricDatum::builder()
                    .metric_name(metric)
                    .dimensions(Dimension::builder().name("EventBusName").value(BUS).build())
                    .dimensions(Dimension::builder().name("RuleName").value(rule).build())
                    .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                        now + minute * 60,
                    ))
                    .value(value)
                    .build();
                cw.put_metric_data()
                    .namespace("AWS/Events")
                    .metric_data(datum)
                    .send()
                    .await
                    .expect("the stand-in stores metrics");
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", standin.endpoint);
    let _ = out.flush();
    drop(out);
    std::future::pending::<()>().await;
}
