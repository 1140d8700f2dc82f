//! `shipment-webhooks`: look at an inbox, and replay or discard its
//! webhooks, from a shell. `shipment-webhooks --help` lists the commands.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use shipment_webhooks::Provider;
use shipment_webhooks::inbox::{
    Attempt, Filter, Inbox, InboxStats, MAX_PAGE, WebhookDetail, WebhookState, WebhookSummary,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Look at a shipment-webhooks inbox, and replay or discard its webhooks.
#[derive(Debug, Parser)]
#[command(name = "shipment-webhooks", version)]
struct Cli {
    /// The inbox: a SQLite file's path (never created), or a
    /// `postgres://` URL.
    #[arg(long, env = "SHIPMENT_WEBHOOKS_DB", global = true)]
    db: Option<String>,
    /// JSON on stdout instead of tables, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// The inbox's webhooks.
    #[command(subcommand)]
    Inbox(Command),
}

#[derive(Debug, Subcommand)]
enum Command {
    /// How many webhooks are in each state.
    Stats,
    /// The webhooks the filters match, oldest first, a page at a time.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// The page after this id (the `next` a page ends with).
        #[arg(long)]
        after: Option<i64>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE)))]
        limit: u32,
    },
    /// One webhook whole: its body, headers, dedup key, event and attempts.
    Show {
        /// Its id.
        id: i64,
    },
    /// Hands dead webhooks to the workers again: these ids, or with
    /// `--dead`, every dead one the filters match.
    Replay {
        /// The ids.
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        ids: Vec<i64>,
        /// Every dead webhook the filters match.
        #[arg(long)]
        dead: bool,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Deletes a pending or dead webhook and its attempts.
    Discard {
        /// Its id.
        id: i64,
    },
    /// Deletes what is past the default retentions (handled 7 days, dead
    /// 30 days).
    Purge,
}

#[derive(Debug, Args)]
struct FilterArgs {
    /// Only webhooks in this state: pending, processing, done, dead, superseded.
    #[arg(long)]
    state: Option<WebhookState>,
    /// Only this provider's (as `Provider` names it, e.g. the lowercase name).
    #[arg(long)]
    provider: Option<Provider>,
    /// Only those received on this endpoint.
    #[arg(long)]
    endpoint: Option<String>,
    /// Only this tenant's.
    #[arg(long)]
    tenant: Option<String>,
    /// Only those about this shipment id, as the event names it: in any
    /// scope (an order numbered 123 too), or `order:123` (`transaction:`,
    /// `batch:`, `integration:`, `message:`) in one.
    #[arg(long)]
    shipment: Option<String>,
    /// Only those received at or after this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    from: Option<OffsetDateTime>,
    /// Only those received before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    until: Option<OffsetDateTime>,
}

fn rfc3339(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| format!("{text:?} is not an RFC 3339 time, such as 2026-01-31T12:00:00Z"))
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        let mut filter = Filter::default().received(self.from, self.until);
        filter.state = self.state;
        filter.provider = self.provider;
        filter.endpoint.clone_from(&self.endpoint);
        filter.tenant.clone_from(&self.tenant);
        filter.shipment.clone_from(&self.shipment);
        filter
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shipment-webhooks: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("shipment-webhooks: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn open(db: Option<&str>) -> Result<Inbox, String> {
    let Some(db) = db else {
        return Err(
            "no database: pass --db PATH or --db postgres://..., or set SHIPMENT_WEBHOOKS_DB"
                .into(),
        );
    };
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let shown = redacted(db);
        let cannot =
            |error: &dyn std::fmt::Display| format!("cannot open the inbox at {shown}: {error}");
        // Two connections (the inbox holds one for LISTEN); an unreachable
        // server is reported after 5 s, not sqlx's default 30.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(db)
            .await
            .map_err(|error| cannot(&error))?;
        return Inbox::postgres_pool(pool)
            .await
            .map_err(|error| cannot(&error));
    }
    let path = Path::new(db);
    if !path.is_file() {
        return Err(format!(
            "no inbox database at {}: the file does not exist (the command line never creates one)",
            path.display()
        ));
    }
    if !is_inbox(path).await? {
        return Err(format!(
            "{} is not a shipment-webhooks inbox (no webhook_inbox_schema table); left untouched",
            path.display()
        ));
    }
    Inbox::sqlite(path)
        .await
        .map_err(|error| format!("cannot open the inbox at {}: {error}", path.display()))
}

/// `url` with its password, if any, replaced by `***`, for messages.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Whether the SQLite file at `path` holds an inbox, read without writing
/// or creating anything: opening it otherwise would lay the inbox's tables
/// into someone else's database.
async fn is_inbox(path: &Path) -> Result<bool, String> {
    use sqlx::ConnectOptions as _;
    let cannot =
        |error: sqlx::Error| format!("cannot open the inbox at {}: {error}", path.display());
    let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(cannot)?;
    let found: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'webhook_inbox_schema'",
    )
    .fetch_optional(&mut connection)
    .await
    .map_err(cannot)?;
    Ok(found.is_some())
}

async fn run(cli: Cli) -> Result<String, String> {
    let Top::Inbox(command) = cli.command;
    let inbox = open(cli.db.as_deref()).await?;
    let failed = |error: shipment_webhooks::inbox::InboxError| {
        if error.is_transient() {
            // Opened, then gone: stopped, restarted, unreachable or locked.
            format!(
                "{error}; the database stopped answering during the command: run it again once it answers (a replay, discard or purge that went through is not done twice)"
            )
        } else {
            error.to_string()
        }
    };
    let json = cli.json;
    Ok(match command {
        Command::Stats => stats(&inbox.stats().await.map_err(failed)?, json),
        Command::List {
            filter,
            after,
            limit,
        } => {
            let mut filter = filter.filter().limit(limit);
            filter.after = after;
            let page = inbox.list(&filter).await.map_err(failed)?;
            list(&page.webhooks, page.next, json)
        }
        Command::Show { id } => match inbox.get(id).await.map_err(failed)? {
            Some(detail) => show(&detail, json),
            None => return Err(format!("no webhook with id {id}")),
        },
        Command::Replay { ids, dead, filter } => {
            let replayed = if dead {
                inbox.replay_dead(&filter.filter()).await.map_err(failed)?
            } else {
                let replayed = inbox.replay_many(&ids).await.map_err(failed)?;
                if replayed < ids.len() as u64 {
                    let mut missing = Vec::new();
                    for &id in &ids {
                        match inbox.get(id).await.map_err(failed)? {
                            None => missing.push(id.to_string()),
                            // Replayed just now, or not dead: said, not refused.
                            Some(detail) if detail.summary.state != WebhookState::Pending => {
                                eprintln!(
                                    "shipment-webhooks: webhook {id} is {}, not dead: left as it is",
                                    detail.summary.state
                                );
                            }
                            Some(_) => {}
                        }
                    }
                    if !missing.is_empty() {
                        return Err(format!(
                            "no webhook with id {} (replayed {replayed})",
                            missing.join(", ")
                        ));
                    }
                }
                replayed
            };
            if json {
                format!("{}\n", json!({ "replayed": replayed }))
            } else {
                format!("replayed {replayed} dead webhook(s)\n")
            }
        }
        Command::Discard { id } => {
            if !inbox.discard(id).await.map_err(failed)? {
                return Err(match inbox.get(id).await.map_err(failed)? {
                    None => format!("no webhook with id {id}"),
                    Some(detail) => format!(
                        "webhook {id} is {}: only pending and dead webhooks are discarded",
                        detail.summary.state
                    ),
                });
            }
            if json {
                format!("{}\n", json!({ "discarded": id }))
            } else {
                format!("discarded webhook {id}\n")
            }
        }
        Command::Purge => {
            let purged = inbox.purge().await.map_err(failed)?;
            if json {
                format!("{}\n", json!({ "purged": purged }))
            } else {
                format!("purged {purged} webhook(s)\n")
            }
        }
    })
}

fn time(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

fn stats(stats: &InboxStats, json: bool) -> String {
    let rows = [
        ("pending", stats.pending),
        ("processing", stats.processing),
        ("done", stats.done),
        ("dead", stats.dead),
        ("superseded", stats.superseded),
        ("duplicates", stats.duplicates),
    ];
    if json {
        let object: serde_json::Map<String, Value> = rows
            .iter()
            .map(|&(name, count)| (name.to_owned(), json!(count)))
            .collect();
        return format!("{}\n", Value::Object(object));
    }
    let mut out = String::new();
    for (name, count) in rows {
        let _ = writeln!(out, "{name:<12}{count:>10}");
    }
    out
}

fn summary_json(webhook: &WebhookSummary) -> Value {
    json!({
        "id": webhook.id,
        "state": webhook.state.as_str(),
        "provider": webhook.provider.as_str(),
        "endpoint": webhook.endpoint,
        "tenant": webhook.tenant,
        "shipment": webhook.event.id,
        "status": webhook.event.status.as_str(),
        "attempts": webhook.attempts,
        "last_error": webhook.last_error,
        "received_at": time(webhook.received_at),
        "duplicates": webhook.duplicates,
    })
}

fn list(webhooks: &[WebhookSummary], next: Option<i64>, json: bool) -> String {
    if json {
        let webhooks: Vec<Value> = webhooks.iter().map(summary_json).collect();
        return format!("{}\n", json!({ "webhooks": webhooks, "next": next }));
    }
    let mut out = format!(
        "{:>8}  {:<10}  {:<12}  {:<20}  {:<14}  {:>3}  {:<20}  {}\n",
        "ID", "STATE", "PROVIDER", "SHIPMENT", "STATUS", "TRY", "RECEIVED", "LAST ERROR"
    );
    for webhook in webhooks {
        let error: String = webhook
            .last_error
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        let _ = writeln!(
            out,
            "{:>8}  {:<10}  {:<12}  {:<20}  {:<14}  {:>3}  {:<20}  {}",
            webhook.id,
            webhook.state.as_str(),
            webhook.provider.as_str(),
            webhook.event.id,
            webhook.event.status.as_str(),
            webhook.attempts,
            time(webhook.received_at),
            error.replace('\n', " "),
        );
    }
    match next {
        Some(next) => {
            let _ = writeln!(out, "{} shown; more with --after {next}", webhooks.len());
        }
        None => {
            let _ = writeln!(out, "{} shown", webhooks.len());
        }
    }
    out
}

fn attempt_json(attempt: &Attempt) -> Value {
    json!({
        "attempt": attempt.number,
        "started_at": attempt.started_at.map(time),
        "ended_at": time(attempt.ended_at),
        "outcome": attempt.outcome.as_str(),
        "error": attempt.error,
    })
}

fn show(detail: &WebhookDetail, json: bool) -> String {
    let body: Value = serde_json::from_slice(&detail.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&detail.body).into_owned()));
    let key = hex(detail.dedup_key.as_bytes());
    if json {
        let mut object = summary_json(&detail.summary);
        if let Value::Object(fields) = &mut object {
            fields.insert("dedup_key".into(), json!(key));
            fields.insert("secret_label".into(), json!(detail.secret_label));
            fields.insert("headers".into(), json!(detail.headers));
            fields.insert("body".into(), body);
            let history: Vec<Value> = detail.history.iter().map(attempt_json).collect();
            fields.insert("history".into(), json!(history));
        }
        return format!("{object}\n");
    }
    let webhook = &detail.summary;
    let mut out = String::new();
    let _ = writeln!(out, "id          {}", webhook.id);
    let _ = writeln!(out, "state       {}", webhook.state);
    let _ = writeln!(out, "provider    {}", webhook.provider.as_str());
    let _ = writeln!(out, "endpoint    {}", webhook.endpoint);
    let _ = writeln!(
        out,
        "tenant      {}",
        webhook.tenant.as_deref().unwrap_or("-")
    );
    let _ = writeln!(out, "shipment    {}", webhook.event.id);
    let _ = writeln!(
        out,
        "status      {} ({})",
        webhook.event.status.as_str(),
        webhook.event.raw_status
    );
    let _ = writeln!(out, "received    {}", time(webhook.received_at));
    let _ = writeln!(out, "attempts    {}", webhook.attempts);
    let _ = writeln!(out, "duplicates  {}", webhook.duplicates);
    let _ = writeln!(out, "dedup key   {key}");
    let _ = writeln!(out, "secret      {}", detail.secret_label);
    let _ = writeln!(out, "headers");
    for (name, value) in &detail.headers {
        let _ = writeln!(out, "  {name}: {value}");
    }
    let _ = writeln!(out, "history");
    for attempt in &detail.history {
        let _ = writeln!(
            out,
            "  #{:<3} {:<10}  {}  {}",
            attempt.number,
            attempt.outcome.as_str(),
            time(attempt.ended_at),
            attempt.error.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out, "body");
    let pretty = serde_json::to_string_pretty(&body).unwrap_or_default();
    for line in pretty.lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}
