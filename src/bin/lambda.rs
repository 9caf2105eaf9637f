//! The Lambda entry point: tracing, configuration, SDK clients once, then the runtime.

use genesys_dlq_triage::{Handler, HandlerError, LambdaConfig, path_style_from_env};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    genesys_dlq_triage::tune_allocator();
    // Honours AWS_LAMBDA_LOG_FORMAT=JSON, AWS_LAMBDA_LOG_LEVEL and RUST_LOG.
    lambda_runtime::tracing::init_default_subscriber();
    match LambdaConfig::from_env() {
        Ok(config) => {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|_| "genesys-dlq-triage".into());
            let handler = Handler::from_sdk(config, &sdk, path_style_from_env(), function);
            let handler = &handler;
            lambda_runtime::run(service_fn(move |event| async move {
                // Boxed: the invocation's future is deep; the runtime's task holds a pointer to it.
                Box::pin(handler.handle_invocation(event)).await
            }))
            .await
        }
        Err(e) => {
            // Cannot work at all: every invocation fails with the reason (error type
            // `InvalidConfiguration`), so SQS keeps the messages and the error is visible
            // in the invocation result and the logs.
            tracing::error!(error = %e, "configuration");
            lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| {
                let error = HandlerError::InvalidConfiguration(e.clone());
                async move { Err::<(), HandlerError>(error) }
            }))
            .await
        }
    }
}
