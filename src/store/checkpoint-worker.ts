// The checkpoint thread (Checkpoints): copies the write-ahead log into the database on a connection of
// its own, so that the event loop never waits for those writes and the database's fsync.
import Database from 'better-sqlite3';
import { fdatasyncSync, openSync } from 'node:fs';
import { answerRequests, type ThreadReply } from '../request-thread.js';

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

let opened: { file: string; db: Database.Database; walFd: number } | undefined;

function connectionTo(file: string): NonNullable<typeof opened> {
  if (opened?.file === file) return opened;
  const db = new Database(file, { fileMustExist: true });
  opened = { file, db, walFd: openSync(`${file}-wal`, 'r+') };
  return opened;
}

answerRequests<CheckpointRequest & { id: number }>((request) => {
  const { db, walFd } = connectionTo(request.file);
  // the commits waiting for this sync are durable here, whatever the checkpoint manages after
  fdatasyncSync(walFd);
  // PASSIVE: waits for no reader and no writer (the main connection's writes wait for this answer)
  const [result] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
  const reply: Omit<CheckpointReply, 'id'> = { checkpointed: result.checkpointed, left: result.log - result.checkpointed };
  return { reply };
});
