import type { ServerResponse } from 'node:http';

/** A request body refused because the bodies held whole in memory are at their shared bound. */
export class BodyMemoryFullError extends Error {
  override name = 'BodyMemoryFullError';
  constructor(maxBytes: number) {
    super(`request bodies held in memory are at http.maxBodyMemoryBytes (${maxBytes} bytes); retry later`);
  }
}

const serving = new WeakMap<ServerResponse, BodyMemory>();

/**
 * Takes room for `bytes` more held whole for `res` (of its request's body, or of its own until its
 * client has read it) in the memory its listener gave it (`serves`); true when it was given none.
 */
export function takeFor(res: ServerResponse, bytes: number): boolean {
  const memory = serving.get(res);
  return memory === undefined || memory.take(res, bytes);
}

/**
 * The bytes of request bodies held whole in memory (JSON and XML documents, invocation events),
 * and of S3's XML answers, across every listener: the HTTP port, the S3 port and the admin API. Each route bounds its own
 * body, but nothing bounded them together: 30 Invokes of 6 MB at once held 243 MB. A request takes
 * its share as its body arrives and gives it back when its response closes, since the body lives
 * until then (an invocation's event does). One that would pass the bound is refused, with each
 * protocol's "slow down" (S3 503 SlowDown, Lambda 429, IoT 503), which clients retry.
 */
export class BodyMemory {
  private held = 0;
  private readonly taken = new WeakMap<ServerResponse, number>();

  constructor(readonly maxBytes: number) {}

  /** Makes what is held for `res` where only it is at hand (`takeFor`) count in this memory. */
  serves(res: ServerResponse): void {
    serving.set(res, this);
  }

  /** Takes `bytes` more for the request `res` answers; false, taking nothing, when that would pass the bound. */
  take(res: ServerResponse, bytes: number): boolean {
    return this.held + bytes <= this.maxBytes && this.hold(res, bytes);
  }

  /**
   * Takes `bytes` for an answer that goes whatever memory is left (an invocation's result: the
   * function has run), so that the requests after it are refused until it has been read.
   */
  takeAnyway(res: ServerResponse, bytes: number): void {
    this.hold(res, bytes);
  }

  private hold(res: ServerResponse, bytes: number): boolean {
    const before = this.taken.get(res);
    if (before === undefined) {
      // an answer already closed gives nothing back again
      if (res.writableFinished || res.destroyed) return false;
      res.once('close', () => this.giveBack(res));
    }
    this.taken.set(res, (before ?? 0) + bytes);
    this.held += bytes;
    return true;
  }

  private giveBack(res: ServerResponse): void {
    this.held -= this.taken.get(res) ?? 0;
    this.taken.delete(res);
  }
}
