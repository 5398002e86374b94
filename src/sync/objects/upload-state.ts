import type Database from 'better-sqlite3';

export interface PartDone {
  etag: string;
  /** Hex MD5 of the part as sent. */
  md5: string;
}

/** A CreateMultipartUpload sent whose answer has not been committed (sync_upload_intents). */
export interface UploadIntent {
  itemId: number;
  bucket: string;
  key: string;
  /** When it was signed (the S3 client's clock, epoch ms). */
  requestedWall: number;
}

export interface MultipartState {
  uploadId: string;
  /** The part size the upload began with (a config change later does not re-cut it). */
  partBytes: number;
  parts: Map<number, PartDone>;
}

/**
 * The multipart uploads in progress (sync_uploads, sync_upload_parts): the UploadId and each part
 * the cloud confirmed, committed as they happen, so a restart resumes after the last confirmed
 * part. Methods marked "write" run only inside `store.commit.run`.
 */
export class UploadState {
  private readonly statements;

  constructor(db: Database.Database) {
    this.statements = {
      upload: db.prepare('SELECT upload_id AS uploadId, part_bytes AS partBytes FROM sync_uploads WHERE item_id = ?'),
      parts: db.prepare('SELECT part_number AS partNumber, etag, md5 FROM sync_upload_parts WHERE item_id = ?'),
      begin: db.prepare('INSERT INTO sync_uploads (item_id, bucket, key, upload_id, part_bytes) VALUES (?, ?, ?, ?, ?)'),
      partDone: db.prepare('INSERT OR REPLACE INTO sync_upload_parts (item_id, part_number, etag, md5) VALUES (?, ?, ?, ?)'),
      forgetUpload: db.prepare('DELETE FROM sync_uploads WHERE item_id = ?'),
      forgetParts: db.prepare('DELETE FROM sync_upload_parts WHERE item_id = ?'),
      intend: db.prepare('INSERT OR REPLACE INTO sync_upload_intents (item_id, bucket, key, requested_wall) VALUES (?, ?, ?, ?)'),
      intent: db.prepare('SELECT item_id AS itemId, bucket, key, requested_wall AS requestedWall FROM sync_upload_intents WHERE item_id = ?'),
      forgetIntent: db.prepare('DELETE FROM sync_upload_intents WHERE item_id = ?'),
      orphanIntents: db.prepare(`SELECT item_id AS itemId, bucket, key, requested_wall AS requestedWall FROM sync_upload_intents
        WHERE item_id NOT IN (SELECT id FROM sync_outbox) LIMIT 100`),
      // Uploads whose item left the outbox some other way (evicted, expired, dead-lettered): to abort in the cloud.
      orphans: db.prepare(`SELECT item_id AS itemId, bucket, key, upload_id AS uploadId FROM sync_uploads
        WHERE item_id NOT IN (SELECT id FROM sync_outbox) LIMIT 100`),
    };
  }

  of(itemId: number): MultipartState | undefined {
    const upload = this.statements.upload.get(itemId) as { uploadId: string; partBytes: number } | undefined;
    if (!upload) return undefined;
    const parts = new Map<number, PartDone>();
    for (const row of this.statements.parts.all(itemId) as Array<{ partNumber: number } & PartDone>) parts.set(row.partNumber, { etag: row.etag, md5: row.md5 });
    return { ...upload, parts };
  }

  /** Write: a CreateMultipartUpload is about to be sent. */
  intend(intent: UploadIntent): void {
    this.statements.intend.run(intent.itemId, intent.bucket, intent.key, intent.requestedWall);
  }

  intentOf(itemId: number): UploadIntent | undefined {
    return this.statements.intent.get(itemId) as UploadIntent | undefined;
  }

  /** Write: its lost upload was looked for (and aborted, if found). */
  forgetIntent(itemId: number): void {
    this.statements.forgetIntent.run(itemId);
  }

  /** Intents whose item left the outbox: their lost uploads, if any, to abort. */
  orphanIntents(): UploadIntent[] {
    return this.statements.orphanIntents.all() as UploadIntent[];
  }

  /** Write: the CreateMultipartUpload was answered; its intent is fulfilled. */
  begin(itemId: number, bucket: string, key: string, uploadId: string, partBytes: number): void {
    this.statements.begin.run(itemId, bucket, key, uploadId, partBytes);
    this.statements.forgetIntent.run(itemId);
  }

  /** Write. */
  partDone(itemId: number, partNumber: number, part: PartDone): void {
    this.statements.partDone.run(itemId, partNumber, part.etag, part.md5);
  }

  /** Write. */
  forget(itemId: number): void {
    this.statements.forgetUpload.run(itemId);
    this.statements.forgetParts.run(itemId);
    this.statements.forgetIntent.run(itemId);
  }

  orphans(): Array<{ itemId: number; bucket: string; key: string; uploadId: string }> {
    return this.statements.orphans.all() as Array<{ itemId: number; bucket: string; key: string; uploadId: string }>;
  }
}
