// The checkpoint thread (Checkpoints): copies the write-ahead log into the database on a connection of
// its own, so that the event loop never waits for those writes and the database's fsync.
import Database from 'better-sqlite3';
import { answerRequests, type ThreadReply } from '../request-thread.js';
import { startLogAgain } from './checkpoints.js';

export interface CheckpointRequest {
  /** The database file. */
  file: string;
}

export interface CheckpointReply extends ThreadReply {
  /** Frames of the log copied into the database. */
  checkpointed: number;
  /** Frames of the log it could not copy yet (a reader still needs them). */
  left: number;
}

let opened: { file: string; db: Database.Database } | undefined;

function connectionTo(file: string): NonNullable<typeof opened> {
  if (opened?.file === file) return opened;
  opened = { file, db: new Database(file, { fileMustExist: true }) };
  return opened;
}

// The log was synced before the request; SQLite syncs the database after the copy (synchronous NORMAL,
// better-sqlite3's default in WAL mode), and the log's new header before the frame written after it.
answerRequests<CheckpointRequest & { id: number }>((request) => {
  const { db } = connectionTo(request.file);
  // PASSIVE: waits for no reader and no writer (the main connection's writes wait for this answer)
  const [result] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
  // here rather than at the main connection's next write, with the sync of the log's new header
  if (result.log === result.checkpointed) startLogAgain(db);
  const reply: Omit<CheckpointReply, 'id'> = { checkpointed: result.checkpointed, left: result.log - result.checkpointed };
  return { reply };
});
