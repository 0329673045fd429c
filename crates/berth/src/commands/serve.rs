//! `berth serve`: the daemon in the foreground.

use berth_control::token::Token;
use berth_core::config::{ServeConfig, TokenSource};
use berth_daemon::{ServeOptions, serve};

use crate::Ctx;
use crate::cli::{ServeArgs, ServeOptionArgs};
use crate::error::{CliError, CliResult, Kind};

/// The serve configuration the options describe. A token is considered only with `--listen`.
pub fn config(ctx: &Ctx, o: &ServeOptionArgs) -> ServeConfig {
    let token_source = match (o.listen, &o.token_file, &ctx.env_token) {
        (None, _, _) => None,
        (Some(_), Some(file), _) => Some(TokenSource::File(file.clone())),
        (Some(_), None, Some(_)) => Some(TokenSource::Env),
        (Some(_), None, None) => None,
    };
    ServeConfig {
        home: ctx.home.root().to_path_buf(),
        listen: o.listen,
        listen_public: o.listen_public,
        token_source,
        log_max_bytes: o.log_max_bytes,
        log_keep: o.log_keep,
        event_retention: o.event_retention,
    }
}

/// Checks a configuration before anything is started, and warns about a risky one.
pub fn validate(config: &ServeConfig) -> CliResult {
    config
        .validate()
        .map_err(|e| CliError::new(Kind::Usage, "invalid_config", e.to_string()))?;
    if let Some(warning) = config.warning() {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// Loads the token the configuration names.
pub fn load_token(ctx: &Ctx, config: &ServeConfig) -> CliResult<Option<Token>> {
    let token = match &config.token_source {
        None => return Ok(None),
        Some(TokenSource::File(path)) => Token::from_file(path),
        Some(TokenSource::Env) => Token::new(
            ctx.env_token.as_deref().unwrap_or_default(),
            "in BERTH_TOKEN",
        ),
    };
    token
        .map(Some)
        .map_err(|e| CliError::new(Kind::Usage, "bad_token", e.to_string()))
}

/// Reads the token `berth daemon start` passed through an inherited pipe.
fn read_token_fd(fd: i32) -> CliResult<String> {
    let mut file = berth_control::files::take_inherited_fd(fd, "--token-fd")
        .map_err(|e| CliError::new(Kind::Usage, "bad_token", e.to_string()))?;
    let mut token = String::new();
    std::io::Read::read_to_string(&mut file, &mut token)
        .map_err(|e| CliError::new(Kind::Usage, "bad_token", format!("--token-fd {fd}: {e}")))?;
    Ok(token)
}

pub async fn run(ctx: &Ctx, args: ServeArgs) -> CliResult<i32> {
    let piped;
    let ctx = match args.token_fd {
        Some(fd) => {
            piped = Ctx {
                home: ctx.home.clone(),
                json: ctx.json,
                env_token: Some(read_token_fd(fd)?),
            };
            &piped
        }
        None => ctx,
    };
    let config = config(ctx, &args.options);
    validate(&config)?;
    let token = load_token(ctx, &config)?;
    let opts = ServeOptions {
        config,
        token,
        ready_fd: args.ready_fd,
        log_to_stderr: !args.detached,
        stderr_is_log: args.detached,
    };
    match serve(opts).await {
        Ok(()) => Ok(0),
        Err(e) => {
            let kind = if e.is_refusal() {
                Kind::Refused
            } else {
                Kind::Failed
            };
            Err(CliError::new(kind, "serve_failed", e.to_string()))
        }
    }
}
