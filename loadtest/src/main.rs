//! `synckit-loadtest`: the load test against the deployment given with `--host`, in the app whose API key is in
//! `SYNCKIT_API_KEY`.

use std::process::ExitCode;

use clap::Parser;
use synckit_loadtest::Options;

const API_KEY: &str = "SYNCKIT_API_KEY";

#[tokio::main]
async fn main() -> ExitCode {
    let mut options = Options::parse();
    match std::env::var(API_KEY) {
        Ok(key) if !key.trim().is_empty() => options.settings.api_key = key.trim().to_owned(),
        _ => {
            eprintln!(
                "synckit-loadtest: {API_KEY} is not set. The simulated devices sign in to an app of the deployment: \
                 create one with `synckit-server admin create-app --name load` (it prints the app's api_key) and \
                 run again with {API_KEY}=<that key>."
            );
            return ExitCode::from(2);
        }
    }
    match synckit_loadtest::run(options).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synckit-loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}
