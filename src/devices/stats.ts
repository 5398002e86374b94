import type { DeviceMetrics } from './metrics.js';

/** frames/s is averaged over this many one-second buckets. */
const RATE_WINDOW_SECONDS = 10;

/** A device's counters for `outpost devices ls`, mirrored into the Prometheus metrics as they change. */
export class DeviceStats {
  frames = 0;
  parseErrors = 0;
  oversizedFrames = 0;
  ignoredFrames = 0;
  droppedReadings = 0;
  commandsSent = 0;
  commandsFailed = 0;
  reconnects = 0;
  lastFrameAt = 0;
  /** Why the last frame failed, or why the port cannot be opened or was lost (until it is open again). */
  lastError: string | null = null;
  /** Whether lastError is the port's (portError), which its opening again clears. */
  private lastErrorIsPort = false;
  private rateSecond = 0;
  private readonly rateBuckets = new Array<number>(RATE_WINDOW_SECONDS).fill(0);

  constructor(private readonly device: string, private readonly metrics: DeviceMetrics) {}

  frame(): void {
    const now = Date.now();
    this.frames++;
    this.lastFrameAt = now;
    this.advanceRate(now);
    this.rateBuckets[this.rateSecond % RATE_WINDOW_SECONDS]++;
    this.metrics.frame(this.device);
  }

  parseError(reason: string): void {
    this.parseErrors++;
    this.error(reason);
    this.metrics.parseError(this.device);
  }

  oversized(): void {
    this.oversizedFrames++;
    this.parseError('frame longer than maxFrameBytes');
  }

  commandDone(result: string): void {
    if (result !== 'ok') this.commandsFailed++;
    this.metrics.command(this.device, result);
  }

  /** Something went wrong that is not the port's (a frame, a shadow update). */
  error(reason: string): void {
    this.lastError = reason;
    this.lastErrorIsPort = false;
  }

  /** The port cannot be opened, or was lost. */
  portError(reason: string): void {
    this.lastError = reason;
    this.lastErrorIsPort = true;
  }

  connected(connected: boolean): void {
    // a port open again: "cannot open" or "lost" no longer says how the device is
    if (connected && this.lastErrorIsPort) {
      this.lastError = null;
      this.lastErrorIsPort = false;
    }
    this.metrics.connected(this.device, connected);
  }

  framesPerSecond(): number {
    this.advanceRate(Date.now());
    const total = this.rateBuckets.reduce((sum, count) => sum + count, 0);
    return Math.round((total / RATE_WINDOW_SECONDS) * 100) / 100;
  }

  /** Clears the buckets of the seconds that passed since the last frame. */
  private advanceRate(now: number): void {
    const second = Math.floor(now / 1000);
    const passed = Math.min(second - this.rateSecond, RATE_WINDOW_SECONDS);
    for (let step = 1; step <= passed; step++) this.rateBuckets[(this.rateSecond + step) % RATE_WINDOW_SECONDS] = 0;
    this.rateSecond = second;
  }
}
