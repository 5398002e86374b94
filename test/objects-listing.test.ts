import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateBucketCommand, ListObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { TestDaemon } from './helpers/daemon.js';
import { addKey, s3Client } from './helpers/objects.js';

/** A deterministic generator, so a failure names a reproducible case. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

/** S3's order of keys: by their UTF-8 bytes (JS's < compares UTF-16 units, another order past U+FFFF). */
const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** What S3 answers: entries (keys and common prefixes) after `startAfter`, in UTF-8 byte order. */
function expectedListing(keys: string[], prefix: string, delimiter: string, startAfter: string): string[] {
  const entries = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    const entry = cut >= 0 ? key.slice(0, cut + delimiter.length) : key;
    if (utf8Order(entry, startAfter) > 0) entries.add(entry);
  }
  return [...entries].sort(utf8Order);
}

describe('listings match a model of S3 listing', () => {
  let daemon: TestDaemon;
  let s3: S3Client;
  const keys = new Set<string>();

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    s3 = s3Client(daemon, await addKey(daemon));
    await s3.send(new CreateBucketCommand({ Bucket: 'model' }));
    const next = random(7);
    // 😀 (past U+FFFF) and ﬀ (U+FB00) sort one way in UTF-8 and the other in UTF-16
    const alphabet = ['a', 'b', '/', '-', 'é', 'z', '0', '😀', 'ﬀ'];
    while (keys.size < 250) {
      const length = 1 + Math.floor(next() * 7);
      let key = '';
      for (let i = 0; i < length; i++) key += alphabet[Math.floor(next() * alphabet.length)];
      if (key.split('/').includes('..')) continue;
      keys.add(key);
    }
    const all = [...keys];
    for (let i = 0; i < all.length; i += 25) {
      await Promise.all(all.slice(i, i + 25).map((Key) => s3.send(new PutObjectCommand({ Bucket: 'model', Key, Body: Key }))));
    }
  }, 60_000);
  afterAll(async () => {
    s3?.destroy();
    await daemon.cleanup();
    expect(daemon.logs.filter((line) => line.level >= 50)).toEqual([]);
  });

  it('pages through ListObjectsV2 and ListObjects exactly as the model lists', async () => {
    const next = random(11);
    const prefixes = ['', 'a', 'a/', 'b', '/', 'é', 'z/a', '😀', 'ﬀ'];
    // a delimiter past U+FFFF: a common prefix ending in a surrogate pair
    const delimiters = ['', '/', '-', 'a', '😀', 'ﬀ'];
    for (let round = 0; round < 40; round++) {
      const prefix = prefixes[Math.floor(next() * prefixes.length)];
      const delimiter = delimiters[Math.floor(next() * delimiters.length)];
      const maxKeys = 1 + Math.floor(next() * 9);
      const expected = expectedListing([...keys], prefix, delimiter, '');
      const v2: string[] = [];
      let token: string | undefined;
      for (let page = 0; page < 300; page++) {
        const answer = await s3.send(new ListObjectsV2Command({ Bucket: 'model', Prefix: prefix || undefined, Delimiter: delimiter || undefined, MaxKeys: maxKeys, ContinuationToken: token }));
        const entries = [...(answer.Contents ?? []).map((o) => o.Key!), ...(answer.CommonPrefixes ?? []).map((p) => p.Prefix!)];
        expect(entries.length).toBeLessThanOrEqual(maxKeys);
        expect(answer.KeyCount).toBe(entries.length);
        v2.push(...entries);
        token = answer.NextContinuationToken;
        if (!answer.IsTruncated) break;
      }
      const sort = (list: string[]) => [...list].sort(utf8Order);
      expect({ prefix, delimiter, maxKeys, entries: sort(v2) }).toEqual({ prefix, delimiter, maxKeys, entries: expected });
      expect(new Set(v2).size).toBe(v2.length);

      const v1: string[] = [];
      let marker: string | undefined;
      for (let page = 0; page < 300; page++) {
        const answer = await s3.send(new ListObjectsCommand({ Bucket: 'model', Prefix: prefix || undefined, Delimiter: delimiter || undefined, MaxKeys: maxKeys, Marker: marker }));
        const entries = [...(answer.Contents ?? []).map((o) => o.Key!), ...(answer.CommonPrefixes ?? []).map((p) => p.Prefix!)];
        v1.push(...entries);
        if (!answer.IsTruncated) break;
        // without a delimiter S3 sends no NextMarker: the last key is the marker
        marker = answer.NextMarker ?? sort(entries).at(-1);
      }
      expect({ prefix, delimiter, entries: sort(v1) }).toEqual({ prefix, delimiter, entries: expected });
    }
  }, 60_000);

  it('resumes after any start-after, a key or not', async () => {
    const next = random(13);
    for (let round = 0; round < 30; round++) {
      // whole code points: half a surrogate pair is no string a client can send
      const startAfter = [...[...keys][Math.floor(next() * keys.size)]].slice(0, 1 + Math.floor(next() * 3)).join('');
      const delimiter = next() < 0.5 ? '/' : '';
      const answer = await s3.send(new ListObjectsV2Command({ Bucket: 'model', StartAfter: startAfter, Delimiter: delimiter || undefined }));
      const entries = [...(answer.Contents ?? []).map((o) => o.Key!), ...(answer.CommonPrefixes ?? []).map((p) => p.Prefix!)].sort(utf8Order);
      expect({ startAfter, delimiter, entries }).toEqual({ startAfter, delimiter, entries: expectedListing([...keys], '', delimiter, startAfter) });
    }
  });

  it('lists keys holding U+FFFF with it as the delimiter (encoding-type=url), page by page', async () => {
    const odd = ['odd/a\uFFFFx', 'odd/a\uFFFFy', 'odd/b\uFFFF', 'odd/c'];
    for (const Key of odd) await s3.send(new PutObjectCommand({ Bucket: 'model', Key, Body: Key }));
    const listed: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 10; page++) {
      const answer = await s3.send(new ListObjectsV2Command({ Bucket: 'model', Prefix: 'odd/', Delimiter: '\uFFFF', EncodingType: 'url', MaxKeys: 1, ContinuationToken: token }));
      listed.push(...[...(answer.Contents ?? []).map((o) => o.Key!), ...(answer.CommonPrefixes ?? []).map((p) => p.Prefix!)].map(decodeURIComponent));
      token = answer.NextContinuationToken;
      if (!answer.IsTruncated) break;
    }
    expect(listed).toEqual(['odd/a\uFFFF', 'odd/b\uFFFF', 'odd/c']);
  });
});
