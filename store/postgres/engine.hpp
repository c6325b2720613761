// The PostgreSQL engine behind the storage seam (internal): a journal in the first schema of a
// connection's search_path (schema.hpp), the same rows and hash chain as the SQLite file.
//
// Writes, two kinds (notes/postgres-journal.md sections 1 and 2):
//  - optimistic (a registry's single calls): begin_optimistic_write(seq) sends nothing; commit()
//    sends, in one pipelined round trip and one implicit transaction, the head's advance
//    conditional on its seq still being `seq`, the rows, and pg_notify. If another writer
//    appended first, the conditional statement fails on purpose, nothing is stored, and commit()
//    throws WriteConflict: the registry catches up and decides again.
//  - locked (batches, and a single call after repeated conflicts): begin_write() opens a
//    transaction, locks the head row and fetches the rows after the head seen last (BEGIN;
//    SELECT ... FOR UPDATE; SELECT rows, one round trip); the journal catches up from those rows,
//    decides and appends; commit() sends the rows, the head's advance, pg_notify and COMMIT in
//    one round trip.
// Either way the head row's lock serializes the commits of every host. Waiting for it beyond
// busy_timeout (lock_timeout) throws Error(Busy).
//
// Reads: changed_by_others() reads the head row (one round trip), so a read sees every write
// committed anywhere before it began; scan() streams rows with a binary COPY (constant memory).
//
// Connections: one, made by open(). When it is lost (server restart, failover, network), the
// call in flight throws Error(Storage) and wrote all or nothing (a COMMIT whose answer was lost
// may have committed: the next read shows it); the next call reconnects. A reconnect finds the
// journal or throws Error(NotFound): it never creates an empty journal on a server that lost it.
#pragma once

#include <memory>
#include <string>

#include "store/engine.hpp"

namespace taskjournal::store::postgres {

/// Opens the journal config.location names (a libpq connection string or postgresql:// URI),
/// creating its schema on first use unless config.read_only. Durability::Full is
/// synchronous_commit=on, Normal is off (options.hpp). Throws Error(Storage) naming the target
/// when the server cannot be reached, Error(Corrupt) for tables that are not a taskjournal
/// journal, Error(Unsupported) for a newer schema, Error(ReadOnly) when read_only and there is
/// no journal, Error(InvalidArgument) for `exclusive` (a SQLite file mode) or a negative busy
/// timeout.
std::unique_ptr<Engine> open(const EngineConfig& config);

}  // namespace taskjournal::store::postgres
