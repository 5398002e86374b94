import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { BodyMemoryFullError, type BodyMemory } from './body-memory.js';
import { collectBufferGarbage } from '../buffer-garbage.js';

/** Up to this much of a refused request's body is read and dropped rather than the connection closed. */
export const DISCARDED_BODY_BYTES = 1024 * 1024;

/** The response of each request on the port, and whether its client waits for 100 Continue before it sends the body. */
const exchanges = new WeakMap<IncomingMessage, { res: ServerResponse; held: boolean }>();

/**
 * Every request on the port, before its route: `held` for `Expect: 100-continue`, whose body is
 * asked for only when a route reads it (`readLimited`), so that a request refused before
 * (unknown route, bad signature, too large) is refused before its body is sent. Answered without
 * asking, the connection closes: the client may send the body anyway once it tires of waiting
 * (RFC 9110 §10.1.1), and that must not be read as the next request.
 */
export function trackBody(req: IncomingMessage, res: ServerResponse, held: boolean): void {
  exchanges.set(req, { res, held });
  if (held) res.setHeader('Connection', 'close');
}

function askForBody(req: IncomingMessage): void {
  const exchange = exchanges.get(req);
  if (!exchange?.held) return;
  exchange.held = false;
  if (exchange.res.headersSent) return;
  exchange.res.removeHeader('Connection');
  exchange.res.writeContinue();
}

/**
 * A body announced over the limit is refused unread when its client has not sent it (held) or
 * when it is large; the connection then closes, as what is left of it is not to be read as a request.
 */
function refusedUnread(req: IncomingMessage, limit: number): boolean {
  const announced = Number(req.headers['content-length']);
  if (!(announced > limit) || !(exchanges.get(req)?.held || announced > DISCARDED_BODY_BYTES)) return false;
  closeAfterAnswer(req);
  return true;
}

/**
 * A request refused before its body was read (its signer unknown): a body the client holds back
 * (100-continue) or a large one (or one of unknown length) closes the connection after the answer,
 * rather than being read to its end to keep it; a small one is read and dropped.
 */
export function refusingUnreadBody(req: IncomingMessage): void {
  if (req.complete) return;
  const announced = Number(req.headers['content-length']);
  if (exchanges.get(req)?.held || !(announced <= DISCARDED_BODY_BYTES)) closeAfterAnswer(req);
}

function closeAfterAnswer(req: IncomingMessage): void {
  const exchange = exchanges.get(req);
  if (exchange && !exchange.res.headersSent) exchange.res.setHeader('Connection', 'close');
}

/**
 * The body of `req` up to `limit` bytes, read from `body` (the request itself, or a stream that
 * verifies it). A larger one is refused with `tooLarge()`: unread if announced so (refusedUnread),
 * else read to its end (so the answer reaches the client) but not kept. It is held in `memory`,
 * its announced length at once, else as it arrives; past that bound it is refused with
 * BodyMemoryFullError, and its connection closes after the answer.
 */
export function readLimited(req: IncomingMessage, limit: number, tooLarge: () => Error, memory: BodyMemory, body: Readable = req): Promise<Buffer> {
  if (refusedUnread(req, limit)) return Promise.reject(tooLarge());
  const res = exchanges.get(req)!.res;
  const announced = Number(req.headers['content-length']);
  const lengthKnown = Number.isSafeInteger(announced);
  if (lengthKnown && !memory.take(res, announced)) return Promise.reject(memoryFull(req, memory));
  askForBody(req);
  return new Promise((resolve, reject) => {
    // Of an announced length: copied into one buffer, each read dropped at once for the next minor
    // GC (collectBufferGarbage). Kept till the end, a megabyte's sixteen reads of 64 KiB sat in
    // malloc's heap among longer-lived blocks (a flood of 1 MB Invokes left RSS 55 MB up after a full GC).
    const whole = lengthKnown && announced <= limit ? Buffer.allocUnsafe(announced) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      const at = size;
      size += chunk.length;
      if (size > limit) chunks.length = 0;
      else if (whole) {
        // a body longer than announced is the HTTP parser's to refuse; never past the buffer
        chunk.copy(whole, at);
        collectBufferGarbage(chunk.length);
      } else if (lengthKnown || memory.take(res, chunk.length)) chunks.push(chunk);
      else {
        body.off('data', onData);
        chunks.length = 0;
        reject(memoryFull(req, memory));
      }
    };
    // the request outlives its answer on a keep-alive connection: its listeners, and the body
    // they hold, go with the end
    const onEnd = () => {
      body.off('data', onData);
      if (size > limit) reject(tooLarge());
      else resolve(whole ? whole.subarray(0, size) : Buffer.concat(chunks));
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.on('error', reject);
  });
}

function memoryFull(req: IncomingMessage, memory: BodyMemory): BodyMemoryFullError {
  if (!req.complete) closeAfterAnswer(req);
  return new BodyMemoryFullError(memory.maxBytes);
}
