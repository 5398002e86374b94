import { createWriteStream } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInflateRaw, crc32 } from 'node:zlib';
import { apiErrors, FunctionApiError } from './errors.js';

// ZIP (APPNOTE.TXT): the end-of-central-directory record is at most 22 + 65535 bytes from the end.
const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_MIN = 22;
const EOCD_MAX = EOCD_MIN + 0xffff;
const STORED = 0;
const DEFLATED = 8;

export interface UnzipLimits {
  /** Total uncompressed bytes (AWS: 250 MB unzipped). */
  maxBytes: number;
  maxEntries: number;
}

interface Entry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localOffset: number;
  /** Unix mode from the external attributes (0 when the archive was made elsewhere). */
  mode: number;
}

/**
 * Unpacks a .zip package into `target` (an empty directory), streaming each entry through
 * inflate so memory stays small. Refused with a clear error: ZIP64, encryption, methods other
 * than stored/deflate, names that leave `target`, a bad CRC, and anything over `limits`.
 * Directories are implied by the files; symbolic links are left out, as in directory deploys.
 */
export async function unzip(file: string, target: string, limits: UnzipLimits): Promise<void> {
  const zip = await open(file, 'r').catch((error: Error) => { throw apiErrors.invalidParameter(`${file}: cannot read: ${error.message}`); });
  try {
    const entries = await centralDirectory(zip, file, limits);
    let total = 0;
    for (const entry of entries) {
      if (entry.name.endsWith('/') || isSymlink(entry.mode)) continue;
      total += entry.size;
      if (total > limits.maxBytes) throw invalid(file, `more than ${limits.maxBytes} bytes unpacked`);
      const destination = join(target, safeName(file, entry.name));
      // Whatever goes wrong writing an entry (a file where a directory should be, …) is the archive's problem.
      await extract(zip, file, entry, destination).catch((error: Error) => {
        throw error instanceof FunctionApiError ? error : invalid(file, `${entry.name}: ${error.message}`);
      });
    }
  } finally {
    await zip.close();
  }
}

async function centralDirectory(zip: FileHandle, file: string, limits: UnzipLimits): Promise<Entry[]> {
  const { size } = await zip.stat();
  if (size < EOCD_MIN) throw invalid(file, 'not a zip archive');
  const tailLength = Math.min(size, EOCD_MAX);
  const tail = Buffer.alloc(tailLength);
  await zip.read(tail, 0, tailLength, size - tailLength);
  let eocd = -1;
  for (let i = tailLength - EOCD_MIN; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD_SIGNATURE) { eocd = i; break; }
  }
  if (eocd < 0) throw invalid(file, 'not a zip archive (no end of central directory)');
  const count = tail.readUInt16LE(eocd + 10);
  const directorySize = tail.readUInt32LE(eocd + 12);
  const directoryOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || directoryOffset === 0xffffffff) throw invalid(file, 'ZIP64 archives are not supported');
  if (count > limits.maxEntries) throw invalid(file, `more than ${limits.maxEntries} entries`);
  if (directoryOffset + directorySize > size) throw invalid(file, 'truncated central directory');
  const directory = Buffer.alloc(directorySize);
  await zip.read(directory, 0, directorySize, directoryOffset);
  const entries: Entry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > directory.length || directory.readUInt32LE(at) !== CENTRAL_SIGNATURE) throw invalid(file, 'corrupt central directory');
    const nameLength = directory.readUInt16LE(at + 28);
    const entry: Entry = {
      flags: directory.readUInt16LE(at + 8),
      method: directory.readUInt16LE(at + 10),
      crc: directory.readUInt32LE(at + 16),
      compressedSize: directory.readUInt32LE(at + 20),
      size: directory.readUInt32LE(at + 24),
      mode: directory.readUInt32LE(at + 38) >>> 16,
      localOffset: directory.readUInt32LE(at + 42),
      name: directory.toString('utf8', at + 46, at + 46 + nameLength),
    };
    if (entry.flags & 0x1) throw invalid(file, `${entry.name}: encrypted entries are not supported`);
    if (entry.method !== STORED && entry.method !== DEFLATED) throw invalid(file, `${entry.name}: compression method ${entry.method} is not supported (stored or deflate only)`);
    if (entry.size === 0xffffffff || entry.compressedSize === 0xffffffff || entry.localOffset === 0xffffffff) throw invalid(file, 'ZIP64 archives are not supported');
    entries.push(entry);
    at += 46 + nameLength + directory.readUInt16LE(at + 30) + directory.readUInt16LE(at + 32);
  }
  return entries;
}

async function extract(zip: FileHandle, file: string, entry: Entry, destination: string): Promise<void> {
  const local = Buffer.alloc(30);
  await zip.read(local, 0, 30, entry.localOffset);
  if (local.readUInt32LE(0) !== LOCAL_SIGNATURE) throw invalid(file, `${entry.name}: corrupt local header`);
  const dataStart = entry.localOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  await mkdir(dirname(destination), { recursive: true });
  const check = new CrcCheck(entry.size);
  const output = createWriteStream(destination, { mode: entry.mode & 0o111 ? 0o755 : 0o644 });
  if (entry.compressedSize === 0) {
    // An empty file: a read stream cannot express a zero-length range.
    output.end();
    await new Promise<void>((resolve, reject) => output.once('finish', () => resolve()).once('error', reject));
  } else {
    const raw = zip.createReadStream({ start: dataStart, end: dataStart + entry.compressedSize - 1, autoClose: false });
    const stages = entry.method === DEFLATED ? [raw, createInflateRaw(), check, output] : [raw, check, output];
    await (pipeline as (...streams: unknown[]) => Promise<void>)(...stages).catch((error: Error) => { throw invalid(file, `${entry.name}: ${error.message}`); });
  }
  if (check.bytes !== entry.size || (check.crc >>> 0) !== entry.crc) throw invalid(file, `${entry.name}: CRC or size mismatch (corrupt archive)`);
}

/** Counts and checksums what passes, and stops an entry that inflates beyond its declared size. */
class CrcCheck extends Transform {
  bytes = 0;
  crc = 0;

  constructor(private readonly declared: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.declared) return callback(new Error('larger than its declared size'));
    this.crc = crc32(chunk, this.crc);
    callback(null, chunk);
  }
}

/** A name inside the target: relative, no `..` out of it. */
function safeName(file: string, name: string): string {
  const normalized = normalize(name.replaceAll('\\', '/'));
  if (normalized.startsWith('/') || normalized === '..' || normalized.startsWith(`..${sep}`) || name.includes('\0')) throw invalid(file, `${name}: entry names must stay inside the package`);
  return normalized;
}

function isSymlink(mode: number): boolean {
  return (mode & 0o170000) === 0o120000;
}

function invalid(file: string, problem: string) {
  return apiErrors.invalidParameter(`${file}: ${problem}`);
}
