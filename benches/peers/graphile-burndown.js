// graphile-worker burning down a preloaded backlog: the peer of
// benches/burndown.rs (issue 21), on the same PostgreSQL cluster, run by
// benches/burndown.sh (which installs graphile-worker from package.json and
// sets NODE_PATH). One run per process; prints one JSON line on stdout.
//
// In a fresh schema (graphile-worker's `schema` option), it adds the jobs:
// `webhooks / 4` shipments, a job queue per shipment (`queueName:
// "ship-<n>"`, so that a shipment's jobs run one at a time, in order), four
// jobs each with payload {shipment, seq}, with `addJobs` 1000 at a time, in
// about the order the inbox's preload stores its webhooks (32 shipments at a
// time, each shipment's four in order), with `run_at`s increasing in that
// order. That is not timed. Then it
// starts `run()` with a task `noop` that does nothing but record the order
// it is called in per queue and yield once to the event loop (so that
// another job of its queue, were one started meanwhile, would be seen
// running beside it; any task doing I/O yields), and times from the call to `run()` until the jobs table is
// empty (every completion recorded): while the task has not yet been called
// for every job the table is counted every 250 ms, then every 10 ms.
//
// Order check: a shipment whose task calls are not seq 0, 1, 2, 3, once
// each, one at a time (`overlaps` counts calls that began while another of
// their queue ran) and in that order, is a violation (in a run given up, a
// shipment whose jobs ran in order so far is only unfinished).
//
// Over the drain it reports, as the Rust bench does: transactions committed
// in the database per job (`pg_stat_database.xact_commit`, less the count
// polls), rows updated in `_private_jobs` and rows written in the schema per
// job (`pg_stat_user_tables`), and, where `pg_stat_statements` is installed,
// statements per job and the most frequent ones.
//
// Settings, by environment variable:
//   GRAPHILE_DATABASE_URL   a connection string node-postgres understands (required)
//   BURNDOWN_MODE           `defaults`, or `batched`: graphile-worker's own
//                           batching, as its performance page sets it
//                           (`localQueue: { size: 500 }`,
//                           `completeJobBatchDelay: 0`, `failJobBatchDelay: 0`)
//   BURNDOWN_CONCURRENCY    jobs run at once (24, as on that page)
//   BURNDOWN_WEBHOOKS       jobs (20000), rounded up to a multiple of 4
//   BURNDOWN_POOL           PostgreSQL connections (32, as the inbox's pool)
//   BURNDOWN_POLL_INTERVAL_MS  graphile-worker's pollInterval (50, as the inbox's)
//   BURNDOWN_PRELOAD_CONCURRENCY  shipments interleaved in the preload's order (32)
//   BURNDOWN_TIMEOUT_SECS   the longest preload, and drain, before giving up (120)
//   BURNDOWN_ROUND          the round number, for the JSON line and the schema's name (1)
//   BURNDOWN_HANDLER        what the task does after recording: yield (once, to
//                           the event loop; the default), return, or a number of
//                           milliseconds to sleep
// Exits with 1 if there was an order violation, a timeout, or the runner
// stopped of itself (its JSON line then says why in `error`).
"use strict";

const { performance } = require("node:perf_hooks");
const { run, makeWorkerUtils, Logger } = require("graphile-worker");
const { Client } = require("pg");

const EVENTS_PER_SHIPMENT = 4;
const STATS_EVERY = 250;
const STATS_EVERY_AT_END = 10;
const TOP_STATEMENTS = 12;
/** Jobs per `addJobs` call (one transaction) in the preload. */
const PRELOAD_BATCH = 1000;

function envInt(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value.trim() === "") return fallback;
  const parsed = Number.parseInt(value, 10);
  if (!Number.isFinite(parsed) || parsed < 0) {
    throw new Error(`${name}=${JSON.stringify(value)} is not a valid value`);
  }
  return parsed;
}

const connectionString = process.env.GRAPHILE_DATABASE_URL;
if (!connectionString) {
  console.error("GRAPHILE_DATABASE_URL is not set");
  process.exit(2);
}
const mode = process.env.BURNDOWN_MODE || "defaults";
if (mode !== "defaults" && mode !== "batched") {
  console.error(`BURNDOWN_MODE=${mode}: expected defaults or batched`);
  process.exit(2);
}
const concurrency = Math.max(1, envInt("BURNDOWN_CONCURRENCY", 24));
const shipments = Math.max(
  1,
  Math.ceil(envInt("BURNDOWN_WEBHOOKS", 20000) / EVENTS_PER_SHIPMENT),
);
const total = shipments * EVENTS_PER_SHIPMENT;
const poolSize = Math.max(2, envInt("BURNDOWN_POOL", 32));
const pollInterval = Math.max(1, envInt("BURNDOWN_POLL_INTERVAL_MS", 50));
const preloadConcurrency = Math.max(1, envInt("BURNDOWN_PRELOAD_CONCURRENCY", 32));
const timeoutMs = Math.max(1, envInt("BURNDOWN_TIMEOUT_SECS", 120)) * 1000;
const round = envInt("BURNDOWN_ROUND", 1);
// What the task does once it has recorded the call: `yield` to the event
// loop once, `return` at once (a job then never runs beside another, so
// overlaps go unseen), or sleep a number of milliseconds.
const handler = process.env.BURNDOWN_HANDLER || "yield";
const handlerMs = Number.parseInt(handler, 10);
if (handler !== "yield" && handler !== "return" && !(handlerMs >= 0)) {
  console.error(`BURNDOWN_HANDLER=${handler}: expected yield, return or milliseconds`);
  process.exit(2);
}
const schema = `graphile_bench_${round}_${mode}_${process.pid}`;
const jobsTable = `"${schema}"._private_jobs`;

// Warnings and errors only: no line per job.
const logger = new Logger((scope) => (level, message) => {
  if (level === "error" || level === "warning") {
    console.error(`[graphile-worker ${level}] ${message}`);
  }
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round3 = (value) => Math.round(value * 1e3) / 1e3;

/** Runs `query` on a connection of its own, closed after. */
async function once(query, values) {
  const client = new Client({ connectionString });
  await client.connect();
  try {
    return await client.query(query, values);
  } finally {
    await client.end();
  }
}

async function counters() {
  const client = new Client({ connectionString });
  await client.connect();
  try {
    const xacts = await client.query(
      "SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()",
    );
    const tables = await client.query(
      `SELECT (SUM(n_tup_upd) FILTER (WHERE relname = '_private_jobs'))::text AS updates,
              SUM(n_tup_ins + n_tup_upd + n_tup_del)::text AS writes
         FROM pg_stat_user_tables WHERE schemaname = $1`,
      [schema],
    );
    return {
      xacts: Number(xacts.rows[0].n),
      updates: Number(tables.rows[0].updates || 0),
      writes: Number(tables.rows[0].writes || 0),
    };
  } finally {
    await client.end();
  }
}

/** Empties pg_stat_statements; false if it is not installed. */
async function resetStatements() {
  try {
    const { rows } = await once(
      "SELECT to_regclass('pg_stat_statements')::text AS installed",
    );
    if (!rows[0].installed) return false;
    await once("SELECT pg_stat_statements_reset()");
    return true;
  } catch (error) {
    console.error(`pg_stat_statements: ${error.message}`);
    return false;
  }
}

/** Statements since the reset, most frequent first: not the count polls, nor these reads. */
async function statements() {
  const { rows } = await once(
    `SELECT query, SUM(calls)::text AS calls FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND query NOT LIKE '%pg_stat%' AND query NOT LIKE '%burndown_poll%'
      GROUP BY query ORDER BY SUM(calls) DESC`,
  );
  return rows.map((row) => ({ query: row.query, calls: Number(row.calls) }));
}

function shorten(text, max) {
  const line = text.split(/\s+/).filter(Boolean).join(" ");
  return line.length > max ? `${line.slice(0, max)}…` : line;
}

function loadAverage() {
  try {
    return require("node:fs").readFileSync("/proc/loadavg", "utf8").split(" ")[0];
  } catch {
    return "?";
  }
}

/** `promise`, or "timeout" after `ms`. */
function within(promise, ms) {
  let timer;
  const expired = new Promise((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

async function preload() {
  const utils = await makeWorkerUtils({
    connectionString,
    schema,
    maxPoolSize: poolSize,
    logger,
  });
  try {
    await utils.migrate();
    // The order the inbox's preload stores its webhooks in, roughly: groups
    // of `preloadConcurrency` shipments, each shipment's four in order, the
    // group's first events first. Each job's `run_at` an hour ago plus its
    // place in that order in milliseconds, so that a queue's jobs are due in
    // seq order (the jobs are fetched by priority, then run_at).
    const order = [];
    for (let group = 0; group < shipments; group += preloadConcurrency) {
      const end = Math.min(shipments, group + preloadConcurrency);
      for (let seq = 0; seq < EVENTS_PER_SHIPMENT; seq++) {
        for (let shipment = group; shipment < end; shipment++) {
          order.push({ shipment, seq });
        }
      }
    }
    const base = Date.now() - 3600 * 1000;
    const add = async () => {
      for (let i = 0; i < order.length; i += PRELOAD_BATCH) {
        await utils.addJobs(
          order.slice(i, i + PRELOAD_BATCH).map((payload, j) => ({
            identifier: "noop",
            payload,
            queueName: `ship-${payload.shipment}`,
            runAt: new Date(base + i + j),
          })),
        );
      }
    };
    return await within(add(), timeoutMs);
  } finally {
    await utils.release();
  }
}

async function main() {
  const line = {
    system: "graphile-worker",
    setting: `${mode} c=${concurrency}`,
    mode,
    concurrency,
    round,
    webhooks: total,
    shipments,
    handler: handler === "yield" || handler === "return" ? handler : `${handlerMs}ms`,
  };
  let violations = 0;
  let timedOut = false;
  await once(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  try {
    const preloadStart = performance.now();
    const preloaded = await preload();
    line.preload_secs = round3((performance.now() - preloadStart) / 1e3);
    const { rows } = await once(`SELECT count(*)::int AS n FROM ${jobsTable}`);
    if (preloaded === "timeout" || rows[0].n !== total) {
      console.error(`  preload: ${rows[0].n} of ${total} jobs added`);
      line.timeout = preloaded === "timeout";
      line.stored = rows[0].n;
      timedOut = true;
      return;
    }

    // The preload's connections closed, so their statistics are reported.
    await sleep(300);
    const before = await counters().catch(() => null);
    const tracking = await resetStatements();

    const seen = new Map();
    let calls = 0;
    let overlaps = 0;
    let first = null;
    const taskList = {
      noop: async (payload) => {
        if (first === null) first = performance.now();
        let shipment = seen.get(payload.shipment);
        if (shipment === undefined) {
          shipment = { seqs: [], running: 0, overlapped: false };
          seen.set(payload.shipment, shipment);
        }
        shipment.seqs.push(payload.seq);
        shipment.running++;
        if (shipment.running > 1) {
          shipment.overlapped = true;
          overlaps++;
        }
        calls++;
        if (handler === "yield") {
          // Long enough for another job of its queue to begin meanwhile,
          // were one handed out.
          await new Promise(setImmediate);
        } else if (handler !== "return") {
          await sleep(handlerMs);
        }
        shipment.running--;
      },
    };
    const preset =
      mode === "batched"
        ? {
            worker: {
              localQueue: { size: 500 },
              completeJobBatchDelay: 0,
              failJobBatchDelay: 0,
            },
          }
        : undefined;

    const poller = new Client({ connectionString });
    await poller.connect();
    const start = performance.now();
    const runner = await run({
      connectionString,
      schema,
      concurrency,
      maxPoolSize: poolSize,
      pollInterval,
      taskList,
      crontab: "",
      noHandleSignals: true,
      logger,
      ...(preset ? { preset } : {}),
    });
    // The runner stops of itself on an error it does not recover from.
    let stopped = null;
    runner.promise.then(
      () => {
        stopped = stopped || "the runner stopped";
      },
      (error) => {
        stopped = `the runner stopped: ${error && error.message}`;
      },
    );
    let died = null;
    let polls = 0;
    let lastPoll = -Infinity;
    let left = total;
    let took = null;
    for (;;) {
      const now = performance.now();
      if (now - start > timeoutMs) break;
      if (stopped) {
        died = stopped;
        break;
      }
      const every = calls >= total ? STATS_EVERY_AT_END : STATS_EVERY;
      if (now - lastPoll >= every) {
        lastPoll = now;
        polls++;
        const result = await poller.query(
          `SELECT count(*)::int AS burndown_poll FROM ${jobsTable}`,
        );
        left = result.rows[0].burndown_poll;
        if (left === 0) {
          took = performance.now() - start;
          break;
        }
      }
      await sleep(1);
    }
    const statementRows = tracking ? await statements().catch(() => null) : null;
    await poller.end();
    if (!died) {
      await within(
        runner.stop().catch((error) => console.error(`stop: ${error.message}`)),
        15000,
      );
    }
    await sleep(300);
    const after = await counters().catch(() => null);

    // A shipment whose jobs ran out of order, twice, or beside another of
    // its queue is a violation; one whose jobs ran in order so far but not
    // all of them is unfinished, a violation only if the drain finished.
    let unfinished = 0;
    for (let shipment = 0; shipment < shipments; shipment++) {
      const record = seen.get(shipment) || { seqs: [], overlapped: false };
      if (
        record.seqs.length > EVENTS_PER_SHIPMENT ||
        record.overlapped ||
        record.seqs.some((seq, i) => seq !== i)
      ) {
        violations++;
      } else if (record.seqs.length < EVENTS_PER_SHIPMENT) {
        unfinished++;
      }
    }
    if (took !== null) violations += unfinished;
    line.handled = total - left;
    line.handler_calls = calls;
    line.order_violations = violations;
    line.unfinished_shipments = unfinished;
    line.overlaps = overlaps;
    line.stats_polls = polls;
    if (first !== null) line.first_handled_ms = round3(first - start);
    if (took === null) {
      timedOut = true;
      line.secs = null;
      line.handled_per_s = null;
      line.timeout = !died;
      if (died) line.error = died;
      // What it did get through, over the whole wait.
      line.partial_per_s = Math.round(
        (total - left) / ((performance.now() - start) / 1e3),
      );
    } else {
      line.secs = round3(took / 1e3);
      line.handled_per_s = Math.round(total / (took / 1e3));
      line.timeout = false;
    }
    if (before && after) {
      line.xacts_per_webhook = round3((after.xacts - before.xacts - polls) / total);
      line.jobs_updates_per_webhook = round3((after.updates - before.updates) / total);
      line.row_writes_per_webhook = round3((after.writes - before.writes) / total);
    }
    if (statementRows) {
      const sum = statementRows.reduce((acc, row) => acc + row.calls, 0);
      line.statements_per_webhook = round3(sum / total);
      line.top_statements = statementRows.slice(0, TOP_STATEMENTS).map((row) => ({
        per_webhook: round3(row.calls / total),
        query: shorten(row.query, 160),
      }));
    }
  } finally {
    line.load_average = loadAverage();
    await once(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    console.log(JSON.stringify(line));
    if (violations > 0 || timedOut) process.exitCode = 1;
  }
}

// Exits even if a connection the runner left behind is still open.
main().then(
  () => process.exit(process.exitCode ?? 0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
