/* SPDX-License-Identifier: Apache-2.0 */
/* Ordered schema migrations of orchd's store. Append only: never edit a released entry.
 * Migration i brings the schema to version i + 1; each runs in its own transaction. */
#include <stddef.h>

#include "cleanup.h"
#include "store.h"

const char *const store_migrations[] = {
	/* 1: tasks, VMs, output index */
	"CREATE TABLE vms ("
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
	/* 2: the extra read-only paths of the task's profile (task.run ro_paths). */
	"ALTER TABLE tasks ADD COLUMN ro_paths TEXT NOT NULL DEFAULT '[]';",
	/* 3: output rows know their attempt: a retried task's logs are per attempt (rows from
	 * before are counted as the first). */
	"ALTER TABLE output ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;",
	/* 4: egress (host/egress/): the sets a task asked for, and one row per outbound
	 * connection of an agent, allowed or refused. */
	"CREATE TABLE egress_tasks ("
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
	/* Append new migrations here (e.g. the LLM ledger). */
};

const size_t store_n_migrations = ELEMENTSOF(store_migrations);
