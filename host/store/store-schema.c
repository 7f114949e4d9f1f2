/* SPDX-License-Identifier: Apache-2.0 */
/* The one ordered list of schema migrations of orchd's database, for both stores: the
 * store's tables, the LLM ledger's and the egress gateway's, in SQLite and in PostgreSQL.
 * Append only: never edit a released entry. Migration i brings the schema to version
 * i + 1 (the table schema_version) in either store, so one version names the same tables
 * in both; each entry holds each store's statements (NULL: nothing to do in that store at
 * that version). PostgreSQL's tables are SQLite's plus what several nodes sharing the
 * database need: the nodes and their leases, the node of each VM, task and LLM
 * reservation, and the output bytes themselves (every node reads every task's output).
 * Times of tasks are ms since the epoch in both; node heartbeats use the PostgreSQL
 * server's clock (now()), so the nodes' clocks need not agree. SQLite runs each migration
 * in its own transaction (store_migrate below); PostgreSQL runs them in one transaction
 * under an advisory lock, so nodes starting together apply each exactly once (pg_migrate,
 * store-pg.c). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>

#include "cleanup.h"
#include "sqlite-util.h"
#include "store.h"

const struct store_migration store_migrations[] = {
	/* 1: tasks, VMs, output index; PostgreSQL: the nodes too, and output holds the bytes */
	{.sqlite = "CREATE TABLE vms ("
		   "  name TEXT PRIMARY KEY,"
		   "  backend TEXT NOT NULL,"
		   "  slots INTEGER NOT NULL,"
		   "  state TEXT NOT NULL DEFAULT 'down',"
		   "  boot_id TEXT,"
		   "  cid INTEGER,"
		   "  updated_at INTEGER NOT NULL"
		   ");"
		   "CREATE TABLE tasks ("
		   "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
		   "  state TEXT NOT NULL CHECK (state IN ('queued','leased','running','succeeded',"
		   "    'failed','timed_out','cancelled','lost')),"
		   "  priority INTEGER NOT NULL DEFAULT 0,"
		   "  argv TEXT NOT NULL,"
		   "  env TEXT NOT NULL DEFAULT '[]',"
		   "  cwd TEXT,"
		   "  want_vm TEXT,"
		   "  want_slot INTEGER,"
		   "  vm TEXT,"
		   "  slot INTEGER,"
		   "  profile TEXT,"
		   "  limits TEXT NOT NULL DEFAULT '{}',"
		   "  retries_left INTEGER NOT NULL DEFAULT 0,"
		   "  attempts INTEGER NOT NULL DEFAULT 0,"
		   "  lost_count INTEGER NOT NULL DEFAULT 0,"
		   "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
		   "  created_at INTEGER NOT NULL,"
		   "  leased_at INTEGER,"
		   "  started_at INTEGER,"
		   "  finished_at INTEGER,"
		   "  exit_code INTEGER,"
		   "  signal INTEGER,"
		   "  duration_ms INTEGER,"
		   "  utime_ms INTEGER,"
		   "  stime_ms INTEGER,"
		   "  maxrss_kb INTEGER,"
		   "  reason TEXT,"
		   "  spend_usd REAL NOT NULL DEFAULT 0,"
		   "  spend_tokens INTEGER NOT NULL DEFAULT 0,"
		   "  output_seq INTEGER NOT NULL DEFAULT 0,"
		   "  output_bytes INTEGER NOT NULL DEFAULT 0"
		   ");"
		   "CREATE INDEX tasks_queue ON tasks (state, priority DESC, id);"
		   "CREATE TABLE output ("
		   "  task INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,"
		   "  seq INTEGER NOT NULL,"
		   "  stream INTEGER NOT NULL CHECK (stream IN (1, 2)),"
		   "  offset INTEGER NOT NULL,"
		   "  length INTEGER NOT NULL,"
		   "  PRIMARY KEY (task, seq)"
		   ") WITHOUT ROWID;",
	 .postgresql =
		 "CREATE TABLE nodes ("
		 "  name TEXT PRIMARY KEY,"
		 "  incarnation BIGINT NOT NULL DEFAULT 1,"
		 "  token TEXT NOT NULL,"
		 "  state TEXT NOT NULL CHECK (state IN ('up', 'dead', 'left')),"
		 "  socket TEXT,"
		 "  version TEXT,"
		 "  started_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
		 "  heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now()"
		 ");"
		 "CREATE TABLE vms ("
		 "  name TEXT PRIMARY KEY,"
		 "  node TEXT NOT NULL,"
		 "  backend TEXT NOT NULL,"
		 "  slots BIGINT NOT NULL,"
		 "  state TEXT NOT NULL DEFAULT 'down',"
		 "  boot_id TEXT,"
		 "  cid BIGINT,"
		 "  updated_at BIGINT NOT NULL"
		 ");"
		 "CREATE TABLE tasks ("
		 "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
		 "  state TEXT NOT NULL CHECK (state IN ('queued','leased','running','succeeded',"
		 "    'failed','timed_out','cancelled','lost')),"
		 "  priority BIGINT NOT NULL DEFAULT 0,"
		 "  argv TEXT NOT NULL,"
		 "  env TEXT NOT NULL DEFAULT '[]',"
		 "  cwd TEXT,"
		 "  want_vm TEXT,"
		 "  want_slot BIGINT,"
		 "  vm TEXT,"
		 "  slot BIGINT,"
		 "  node TEXT,"
		 "  profile TEXT,"
		 "  limits TEXT NOT NULL DEFAULT '{}',"
		 "  retries_left BIGINT NOT NULL DEFAULT 0,"
		 "  attempts BIGINT NOT NULL DEFAULT 0,"
		 "  lost_count BIGINT NOT NULL DEFAULT 0,"
		 "  cancel_requested BOOLEAN NOT NULL DEFAULT false,"
		 "  created_at BIGINT NOT NULL,"
		 "  leased_at BIGINT,"
		 "  started_at BIGINT,"
		 "  finished_at BIGINT,"
		 "  exit_code BIGINT,"
		 "  signal BIGINT,"
		 "  duration_ms BIGINT,"
		 "  utime_ms BIGINT,"
		 "  stime_ms BIGINT,"
		 "  maxrss_kb BIGINT,"
		 "  reason TEXT,"
		 "  spend_usd DOUBLE PRECISION NOT NULL DEFAULT 0,"
		 "  spend_tokens BIGINT NOT NULL DEFAULT 0,"
		 "  output_seq BIGINT NOT NULL DEFAULT 0,"
		 "  output_bytes BIGINT NOT NULL DEFAULT 0"
		 ");"
		 "CREATE INDEX tasks_queue ON tasks (priority DESC, id) WHERE state = 'queued';"
		 "CREATE INDEX tasks_active ON tasks (node, id) WHERE state IN ('leased', "
		 "'running');"
		 "CREATE INDEX tasks_state ON tasks (state);"
		 "CREATE TABLE output ("
		 "  task BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,"
		 "  seq BIGINT NOT NULL,"
		 "  stream SMALLINT NOT NULL CHECK (stream IN (1, 2)),"
		 "  data BYTEA NOT NULL,"
		 "  PRIMARY KEY (task, seq)"
		 ");"},
	/* 2: the extra read-only paths of the task's profile (task.run ro_paths). */
	{.sqlite = "ALTER TABLE tasks ADD COLUMN ro_paths TEXT NOT NULL DEFAULT '[]';",
	 .postgresql = "ALTER TABLE tasks ADD COLUMN ro_paths TEXT NOT NULL DEFAULT '[]';"},
	/* 3: output rows know their attempt: a retried task's logs are per attempt (rows from
	 * before are counted as the first). */
	{.sqlite = "ALTER TABLE output ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;",
	 .postgresql = "ALTER TABLE output ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1;"},
	/* 4: egress (host/egress/): the sets a task asked for, and one row per outbound
	 * connection of an agent, allowed or refused. SQLite only: with a PostgreSQL store
	 * orchd refuses an egress section (docs/FLEET.md). */
	{.sqlite = "CREATE TABLE egress_tasks ("
		   "  task INTEGER PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,"
		   "  sets TEXT NOT NULL DEFAULT '[]'"
		   ");"
		   "CREATE TABLE egress_log ("
		   "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
		   "  ts INTEGER NOT NULL,"
		   "  task INTEGER,"
		   "  vm TEXT NOT NULL,"
		   "  slot INTEGER NOT NULL,"
		   "  kind TEXT NOT NULL,"
		   "  host TEXT NOT NULL,"
		   "  port INTEGER NOT NULL,"
		   "  verdict TEXT NOT NULL CHECK (verdict IN ('allowed','denied')),"
		   "  reason TEXT NOT NULL DEFAULT '',"
		   "  bytes_up INTEGER NOT NULL DEFAULT 0,"
		   "  bytes_down INTEGER NOT NULL DEFAULT 0,"
		   "  duration_ms INTEGER NOT NULL DEFAULT 0"
		   ");"
		   "CREATE INDEX egress_log_task ON egress_log (task, id);",
	 .postgresql = NULL},
	/* 5: the LLM ledger (host/store/llm-ledger.h): budgets per agent slot and per task,
	 * reservations of requests in flight, and one row per settled request. Databases
	 * of earlier orchds may have these tables already (the ledger once created them
	 * itself, versioned in llm_meta, which goes). PostgreSQL: reservations and spend know
	 * their node (a dead node's reservations are settled by the node that reaps it). */
	{.sqlite = "CREATE TABLE IF NOT EXISTS llm_budget ("
		   "  scope TEXT NOT NULL CHECK (scope IN ('agent','task')),"
		   "  id TEXT NOT NULL,"
		   "  limit_micro INTEGER NOT NULL DEFAULT 0 CHECK (limit_micro >= 0),"
		   "  limit_tokens INTEGER NOT NULL DEFAULT 0 CHECK (limit_tokens >= 0),"
		   "  spent_micro INTEGER NOT NULL DEFAULT 0,"
		   "  spent_tokens INTEGER NOT NULL DEFAULT 0,"
		   "  reserved_micro INTEGER NOT NULL DEFAULT 0,"
		   "  reserved_tokens INTEGER NOT NULL DEFAULT 0,"
		   "  PRIMARY KEY (scope, id)"
		   ") WITHOUT ROWID;"
		   "CREATE TABLE IF NOT EXISTS llm_reservation ("
		   "  id INTEGER PRIMARY KEY,"
		   "  agent TEXT NOT NULL,"
		   "  task TEXT,"
		   "  micro INTEGER NOT NULL,"
		   "  tokens INTEGER NOT NULL,"
		   "  created_ms INTEGER NOT NULL"
		   ");"
		   "CREATE TABLE IF NOT EXISTS llm_spend ("
		   "  id INTEGER PRIMARY KEY,"
		   "  agent TEXT NOT NULL,"
		   "  task TEXT,"
		   "  model TEXT NOT NULL,"
		   "  input_tokens INTEGER NOT NULL,"
		   "  output_tokens INTEGER NOT NULL,"
		   "  cache_write_tokens INTEGER NOT NULL,"
		   "  cache_read_tokens INTEGER NOT NULL,"
		   "  micro INTEGER NOT NULL,"
		   "  outcome TEXT NOT NULL,"
		   "  at_ms INTEGER NOT NULL"
		   ");"
		   "CREATE INDEX IF NOT EXISTS llm_spend_task ON llm_spend (task);"
		   "DROP TABLE IF EXISTS llm_meta;",
	 .postgresql = "CREATE TABLE llm_budget ("
		       "  scope TEXT NOT NULL CONSTRAINT llm_budget_scope CHECK (scope IN "
		       "('agent', 'task')),"
		       "  id TEXT NOT NULL,"
		       "  limit_micro BIGINT NOT NULL DEFAULT 0 CHECK (limit_micro >= 0),"
		       "  limit_tokens BIGINT NOT NULL DEFAULT 0 CHECK (limit_tokens >= 0),"
		       "  spent_micro BIGINT NOT NULL DEFAULT 0,"
		       "  spent_tokens BIGINT NOT NULL DEFAULT 0,"
		       "  reserved_micro BIGINT NOT NULL DEFAULT 0,"
		       "  reserved_tokens BIGINT NOT NULL DEFAULT 0,"
		       "  PRIMARY KEY (scope, id)"
		       ");"
		       "CREATE TABLE llm_reservation ("
		       "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
		       "  node TEXT NOT NULL,"
		       "  agent TEXT NOT NULL,"
		       "  task TEXT,"
		       "  micro BIGINT NOT NULL,"
		       "  tokens BIGINT NOT NULL,"
		       "  created_ms BIGINT NOT NULL"
		       ");"
		       "CREATE INDEX llm_reservation_node ON llm_reservation (node);"
		       "CREATE TABLE llm_spend ("
		       "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
		       "  node TEXT NOT NULL,"
		       "  agent TEXT NOT NULL,"
		       "  task TEXT,"
		       "  model TEXT NOT NULL,"
		       "  input_tokens BIGINT NOT NULL,"
		       "  output_tokens BIGINT NOT NULL,"
		       "  cache_write_tokens BIGINT NOT NULL,"
		       "  cache_read_tokens BIGINT NOT NULL,"
		       "  micro BIGINT NOT NULL,"
		       "  outcome TEXT NOT NULL,"
		       "  at_ms BIGINT NOT NULL"
		       ");"
		       "CREATE INDEX llm_spend_task ON llm_spend (task);"
		       "CREATE INDEX llm_spend_node ON llm_spend (node, model);"},
	/* 6: repository tasks (host/git/, docs/WORKSPACES.md): what a task works on, its
	 * workspace, and its result. A task reaching a final state marks its result pending
	 * in the same transaction, so an orchd that dies before recording it records it at
	 * the next start. PostgreSQL: none (repository tasks need the SQLite store,
	 * docs/FLEET.md). */
	{.sqlite = "CREATE TABLE git_tasks ("
		   "  task INTEGER PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,"
		   "  repo TEXT NOT NULL,"
		   "  ref TEXT,"
		   "  uid INTEGER NOT NULL,"
		   "  gid INTEGER NOT NULL,"
		   "  prompt TEXT,"
		   "  state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN "
		   "('queued','preparing','ready',"
		   "    'pending','recorded','failed','none')),"
		   "  base TEXT,"
		   "  vm TEXT,"
		   "  slot INTEGER,"
		   "  mount TEXT,"
		   "  image TEXT,"
		   "  ws_state TEXT NOT NULL DEFAULT 'none' CHECK (ws_state IN ('none','present')),"
		   "  branch TEXT,"
		   "  commit_id TEXT,"
		   "  files_changed INTEGER NOT NULL DEFAULT 0,"
		   "  insertions INTEGER NOT NULL DEFAULT 0,"
		   "  deletions INTEGER NOT NULL DEFAULT 0,"
		   "  changes TEXT NOT NULL DEFAULT '[]',"
		   "  error TEXT,"
		   "  recorded_at INTEGER,"
		   "  pushes TEXT NOT NULL DEFAULT '[]'"
		   ");"
		   "CREATE INDEX git_tasks_state ON git_tasks (state);"
		   "CREATE TRIGGER git_tasks_final AFTER UPDATE OF state ON tasks"
		   "  WHEN NEW.state IN ('succeeded','failed','timed_out','cancelled','lost')"
		   "   AND OLD.state NOT IN ('succeeded','failed','timed_out','cancelled','lost')"
		   " BEGIN"
		   "  UPDATE git_tasks SET state = CASE state WHEN 'ready' THEN 'pending'"
		   "    WHEN 'queued' THEN 'none' WHEN 'preparing' THEN 'none' ELSE state END"
		   "   WHERE task = NEW.id;"
		   " END;",
	 .postgresql = NULL},
	/* 7: the fleet budget (scope "fleet", id "all": every agent together, docs/LLM.md) in
	 * llm_budget's scopes, and whether a reservation was booked against it (SQLite can
	 * not change a CHECK: the table is rebuilt, its rows kept). */
	{.sqlite = "CREATE TABLE llm_budget_v7 ("
		   "  scope TEXT NOT NULL CHECK (scope IN ('agent','task','fleet')),"
		   "  id TEXT NOT NULL,"
		   "  limit_micro INTEGER NOT NULL DEFAULT 0 CHECK (limit_micro >= 0),"
		   "  limit_tokens INTEGER NOT NULL DEFAULT 0 CHECK (limit_tokens >= 0),"
		   "  spent_micro INTEGER NOT NULL DEFAULT 0,"
		   "  spent_tokens INTEGER NOT NULL DEFAULT 0,"
		   "  reserved_micro INTEGER NOT NULL DEFAULT 0,"
		   "  reserved_tokens INTEGER NOT NULL DEFAULT 0,"
		   "  PRIMARY KEY (scope, id)"
		   ") WITHOUT ROWID;"
		   "INSERT INTO llm_budget_v7 SELECT scope, id, limit_micro, limit_tokens, "
		   "spent_micro,"
		   "  spent_tokens, reserved_micro, reserved_tokens FROM llm_budget;"
		   "DROP TABLE llm_budget;"
		   "ALTER TABLE llm_budget_v7 RENAME TO llm_budget;"
		   "ALTER TABLE llm_reservation ADD COLUMN fleet INTEGER NOT NULL DEFAULT 0;",
	 .postgresql =
		 "ALTER TABLE llm_budget DROP CONSTRAINT llm_budget_scope,"
		 "  ADD CONSTRAINT llm_budget_scope CHECK (scope IN ('agent', 'task', 'fleet'));"
		 "ALTER TABLE llm_reservation ADD COLUMN fleet BOOLEAN NOT NULL DEFAULT false;"},
	/* 8: pools (host/pool/): a pooled class's VMs carry their class; each class counts
	 * its VMs' numbers up and never reuses one (a number names a workspace). PostgreSQL:
	 * the same tables, unused so far (pools need the SQLite store, docs/FLEET.md). */
	{.sqlite = "ALTER TABLE vms ADD COLUMN class TEXT;"
		   "CREATE TABLE pool_seq ("
		   "  class TEXT PRIMARY KEY,"
		   "  next INTEGER NOT NULL"
		   ");",
	 .postgresql = "ALTER TABLE vms ADD COLUMN class TEXT;"
		       "CREATE TABLE pool_seq ("
		       "  class TEXT PRIMARY KEY,"
		       "  next BIGINT NOT NULL"
		       ");"},
	/* Append new migrations here. */
};

const size_t store_n_migrations = ELEMENTSOF(store_migrations);

static int schema_version(sqlite3 *db)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -EIO;
}

int store_migrate(sqlite3 *db, struct orch_error *err)
{
	int r, v;

	r = sql_exec(db,
		     "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
		     "INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS "
		     "(SELECT 1 FROM schema_version);",
		     err);
	if (r < 0)
		return orch_err_prefix(err, "store");
	v = schema_version(db);
	if (v < 0)
		return orch_err(err, -EIO, "store: cannot read schema_version");
	if ((size_t)v > store_n_migrations)
		return orch_err(
			err, -EPROTONOSUPPORT,
			"store: schema version %d is newer than this orchd (%zu); use a newer "
			"orchd or another state_dir",
			v, store_n_migrations);
	for (size_t i = (size_t)v; i < store_n_migrations; i++) {
		char sql[96];

		if ((r = sql_begin(db, err)) < 0)
			return orch_err_prefix(err, "store");
		r = store_migrations[i].sqlite ? sql_exec(db, store_migrations[i].sqlite, err) : 0;
		snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %zu", i + 1);
		if (r >= 0)
			r = sql_exec(db, sql, err);
		if (r < 0) {
			sql_rollback(db);
			return orch_err_prefix(err, "store: migration %zu", i + 1);
		}
		if ((r = sql_commit(db, err)) < 0)
			return orch_err_prefix(err, "store");
	}
	return 0;
}
