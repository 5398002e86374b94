import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Store } from '../src/store/store.js';
import { objectMigrations } from '../src/objects/object-store.js';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, s3Client } from './helpers/objects.js';
import { eventually } from './helpers/eventually.js';

const md5 = (data: string | Buffer) => createHash('md5').update(data).digest('hex');

describe('objects written before small bodies moved to object_bodies (objects schema 2)', () => {
  it('are served, copied to the share, replaced and deleted after the upgrade, and no body is left behind', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'outpost-test-'));
    const old = new Store({ file: join(dataDir, 'outpost.db'), synchronous: 'normal', cacheSizeKb: 1024 });
    old.migrate('objects', objectMigrations.slice(0, 2));
    const now = Date.now();
    old.db.prepare('INSERT INTO object_buckets (name, created_at) VALUES (?, ?)').run('old', now);
    const insertObject = old.db.prepare(`INSERT INTO objects (bucket, key, size, etag, content_type, metadata, last_modified, blob, file_ino, file_mtime_ms, inline)
      VALUES ('old', ?, ?, ?, 'text/plain', NULL, ?, NULL, NULL, NULL, 1)`);
    const insertContent = old.db.prepare("INSERT INTO object_contents (bucket, key, content) VALUES ('old', ?, ?)");
    const contents: Record<string, string> = { 'a.txt': 'alpha', 'dir/b.txt': 'bravo', 'c.txt': 'charlie' };
    for (const [key, text] of Object.entries(contents)) {
      // their share copies pending (file_ino NULL): written at the first start
      insertObject.run(key, text.length, md5(text), now);
      insertContent.run(key, Buffer.from(text));
    }
    await old.close();
    // the store's folder in the share, which every earlier version made at its start
    mkdirSync(join(dataDir, 'share', '.outpost'), { recursive: true });

    // config: free ports, as other test files run daemons meanwhile
    const daemon = await TestDaemon.start({ dataDir, config: {} });
    try {
      const s3 = s3Client(daemon, await addKey(daemon));
      for (const [key, text] of Object.entries(contents)) {
        const got = await s3.send(new GetObjectCommand({ Bucket: 'old', Key: key }));
        expect(await got.Body!.transformToString(), key).toBe(text);
        expect(got.ETag).toBe(`"${md5(text)}"`);
        expect(readFileSync(join(dataDir, 'share', 'old', key), 'utf8'), `share copy of ${key}`).toBe(text);
      }

      // replaced by a small body, by a large one (a file), and deleted
      await s3.send(new PutObjectCommand({ Bucket: 'old', Key: 'a.txt', Body: 'alpha 2' }));
      const large = randomBytes(300 * 1024);
      await s3.send(new PutObjectCommand({ Bucket: 'old', Key: 'dir/b.txt', Body: large }));
      await s3.send(new DeleteObjectCommand({ Bucket: 'old', Key: 'c.txt' }));
      expect(await (await s3.send(new GetObjectCommand({ Bucket: 'old', Key: 'a.txt' }))).Body!.transformToString()).toBe('alpha 2');
      expect(md5(Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'old', Key: 'dir/b.txt' }))).Body!.transformToByteArray()))).toBe(md5(large));
      await eventually(() => readFileSync(join(dataDir, 'share', 'old', 'a.txt'), 'utf8') === 'alpha 2');
      s3.destroy();

      const db = new Database(join(dataDir, 'outpost.db'), { readonly: true });
      try {
        expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'object_contents'").all()).toEqual([]);
        // one body: a.txt's second; the others' went with their object
        const bodies = db.prepare('SELECT object_bodies.content, objects.key FROM object_bodies LEFT JOIN objects ON objects.body = object_bodies.id').all() as Array<{ content: Buffer; key: string | null }>;
        expect(bodies.map(({ content, key }) => [content.toString(), key])).toEqual([['alpha 2', 'a.txt']]);
      } finally {
        db.close();
      }
    } finally {
      await daemon.cleanup();
    }
  }, 60_000);
});
