/**
 * A body that has had this much in its turn, or had it this long, gives way to a waiting one (and
 * waits for a turn again): one `aws s3 cp` part from a fast sender, a slow sender's share of time.
 * Each turn ends with its body paused, its last socket reads kept.
 */
const TURN_BYTES = 8 * 1024 * 1024;
const TURN_MS = 500;

/**
 * A body whose sender has sent nothing for this long loses its turn to a waiting one, and waits
 * for another once its data comes: slow or stalled senders do not hold the others back.
 */
const STALL_MS = 50;

/**
 * One body's turn, taken just before its reader awaits the first chunk. The reader calls `arrived`
 * with each chunk and awaits what it returns, if anything, before using the chunk (the body lost
 * its turn while its sender stalled, or had its TURN_BYTES or TURN_MS while others wait); `waiting` once done
 * with a chunk, just before awaiting the next; `leave` once the body has been read, failed or was
 * abandoned.
 */
export interface BodyTurn {
  arrived(bytes: number): Promise<void> | undefined;
  waiting(): void;
  leave(): void;
}

interface Place {
  holding: boolean;
  /** When it started waiting for its sender's next chunk, while it does. */
  waitingForDataSince: number | undefined;
  /** Bytes had in this turn, and when it began. */
  inTurn: number;
  turnSince: number;
  wake?: () => void;
}

/**
 * Turns at reading large request bodies: `atOnce` at a time; the others wait with their sockets
 * paused, so TCP holds their senders back. Every socket read of a body reaches JavaScript as a new
 * buffer (Node's HTTP parser copies it out), and bodies read all at once keep more of them alive
 * across collections, and malloc's heap keeps what they took: through rounds of `aws s3 cp` of 64
 * MiB (10 parts at once) it reached 27-30 MiB and the daemon's RSS 110-113 MiB, against 17-24 MiB
 * and 96-108 MiB in turns of two (bench/objects/aws-cli-rss.mjs), for the same upload time: one
 * thread hashes them all anyway.
 */
export class BodyTurns {
  private readonly holders = new Set<Place>();
  private readonly queue: Place[] = [];
  private stallWatch: NodeJS.Timeout | undefined;

  constructor(private readonly atOnce: number) {}

  /** Bodies waiting for a turn now (those whose sender stalled are not waiting on the gateway). */
  get waiting(): number {
    return this.queue.length;
  }

  /** Waits for a turn for one body. */
  async take(): Promise<BodyTurn> {
    const place: Place = { holding: false, waitingForDataSince: undefined, inTurn: 0, turnSince: 0 };
    await this.enter(place);
    // its first chunk is next: a sender that sends none stalls as much as one that stops
    place.waitingForDataSince = performance.now();
    return {
      arrived: (bytes) => {
        place.waitingForDataSince = undefined;
        if (!place.holding) return this.enter(place);
        if (this.queue.length === 0 || (place.inTurn < TURN_BYTES && performance.now() - place.turnSince < TURN_MS)) {
          place.inTurn += bytes;
          return undefined;
        }
        this.leave(place);
        return this.enter(place);
      },
      waiting: () => { place.waitingForDataSince = performance.now(); },
      leave: () => {
        place.waitingForDataSince = undefined;
        this.leave(place);
      },
    };
  }

  private enter(place: Place): Promise<void> {
    if (this.holders.size < this.atOnce && this.queue.length === 0) {
      this.hold(place);
      return Promise.resolve();
    }
    this.stallWatch ??= setInterval(() => this.passOnStalledTurns(), STALL_MS).unref();
    return new Promise((resolve) => {
      place.wake = resolve;
      this.queue.push(place);
    });
  }

  private leave(place: Place): void {
    if (!place.holding) return;
    place.holding = false;
    this.holders.delete(place);
    this.wakeWaiting();
  }

  private hold(place: Place): void {
    place.holding = true;
    place.inTurn = 0;
    place.turnSince = performance.now();
    this.holders.add(place);
  }

  private wakeWaiting(): void {
    while (this.holders.size < this.atOnce && this.queue.length > 0) {
      const place = this.queue.shift()!;
      this.hold(place);
      place.wake!();
    }
    if (this.queue.length === 0) {
      clearInterval(this.stallWatch);
      this.stallWatch = undefined;
    }
  }

  private passOnStalledTurns(): void {
    const stalledBefore = performance.now() - STALL_MS;
    for (const place of this.holders) {
      if (place.waitingForDataSince !== undefined && place.waitingForDataSince <= stalledBefore) this.leave(place);
    }
  }
}
