import type { Reading } from './parsers/reading.js';

/** Keys tracked per device; a device inventing ever new keys gets the first ones reported, not unbounded memory. */
const MAX_KEYS = 256;

/** Readings are merged into one without a prototype: a device's "__proto__" field is kept as a field, not taken for the object's prototype. */
const emptyReading = (): Reading => Object.create(null) as Reading;

/**
 * Decides when readings go to the shadow's `reported`: at most once per `minIntervalMs`, and only
 * values that changed (numbers by more than `changeThreshold`). Values held back by the interval
 * are merged and sent when it has passed, so the shadow ends at the newest reading. One update is
 * in flight at a time: what arrives meanwhile is merged into the next.
 */
export class ReportedThrottle {
  /** Every key admitted so far, reported or pending: the cap counts each key once. */
  private readonly keys = new Set<string>();
  private readonly lastReported = new Map<string, unknown>();
  private pending: Reading = emptyReading();
  /** performance.now(): a step of the wall clock must not hold readings back for as long as the step. */
  private lastSentAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  /** A confirmed value is waiting for the update in flight: it goes next, whatever the interval. */
  private urgent = false;
  private stopped = false;

  constructor(private readonly minIntervalMs: number, private readonly changeThreshold: number, private readonly send: (state: Reading) => Promise<void>) {}

  offer(reading: Reading): void {
    if (this.stopped) return;
    for (const [key, value] of Object.entries(reading)) {
      if (!this.keys.has(key)) {
        if (this.keys.size >= MAX_KEYS) continue;
        this.keys.add(key);
      }
      if (this.changed(key, value)) this.pending[key] = value;
      else delete this.pending[key];
    }
    this.flushWhenDue();
  }

  /** Values the device confirmed (a command's ack) are reported at once, whatever the interval. */
  confirm(state: Reading): void {
    if (this.stopped) return;
    Object.assign(this.pending, state);
    this.urgent = true;
    this.flush();
  }

  /** The shadow lost what was reported (deleted): every value of the next readings counts as changed. */
  forgetReported(): void {
    this.lastReported.clear();
  }

  /** Drops what is held back: nothing is sent after this. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = emptyReading();
    this.urgent = false;
  }

  private changed(key: string, value: unknown): boolean {
    if (!this.lastReported.has(key)) return true;
    const last = this.lastReported.get(key);
    if (typeof value === 'number' && typeof last === 'number') return Math.abs(value - last) > this.changeThreshold;
    return value !== last;
  }

  private flushWhenDue(): void {
    if (this.timer || this.sending || Object.keys(this.pending).length === 0) return;
    const wait = this.lastSentAt + this.minIntervalMs - performance.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sending || Object.keys(this.pending).length === 0) return;
    this.urgent = false;
    const state = this.pending;
    this.pending = emptyReading();
    for (const [key, value] of Object.entries(state)) this.lastReported.set(key, value);
    this.lastSentAt = performance.now();
    this.sending = true;
    void this.send(state).finally(() => {
      this.sending = false;
      if (this.urgent) this.flush();
      else this.flushWhenDue();
    });
  }
}
