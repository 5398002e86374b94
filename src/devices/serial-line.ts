import { realpath } from 'node:fs/promises';
import type { Logger } from 'pino';
import { resolvePortPath } from './port.js';
import type { Profile } from './profile.js';
import type { SerialConnection, SerialDriver } from './serial.js';

/** A connection that lasted this long was a working one: after it, reconnecting starts again at retryInitialMs. */
const HELD_CONNECTION_MS = 5000;

/** A device on the line, told when the port comes and goes. */
export interface LineUser {
  /** The port is open (again). */
  connected(): void;
  /** The open port went away (unplugged, adapter reset): `reason` fails what was in flight. */
  lost(reason: string, error: Error): void;
  /** An attempt to open the port failed; another follows after the backoff. */
  unavailable(error: Error): void;
}

export interface SerialLineOptions {
  port: Profile['port'];
  /** The instance's `port`, over the profile's path or USB match. */
  override: string | undefined;
  driver: SerialDriver;
  log: Logger;
  retryInitialMs: number;
  retryMaxMs: number;
  /**
   * Why `device` (a tty, symlinks resolved) cannot be opened here because another line of the
   * daemon has it open under another name, else undefined.
   */
  openElsewhere: (device: string) => string | undefined;
}

/**
 * One serial port and the devices on it: a single device, or the Modbus units of one RS-485 line.
 * Finds and opens the port, retrying with backoff while it is missing, and tells every device when
 * it opens and when it is lost, once for the line: serialport locks the port it opens, so the
 * units of a bus cannot each open it.
 */
export class SerialLine {
  /** Bytes from the port: the device's framer, or the bus's Modbus master. */
  onData: (chunk: Buffer) => void = () => undefined;
  private readonly users: Array<{ name: string; user: LineUser }> = [];
  private connection: SerialConnection | undefined;
  /** The path the open port was found at (a USB match's listed path), and the device file behind it. */
  private portPath: string | undefined;
  private device: string | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  /** When the open port was opened; performance.now(): a step of the wall clock back is no shorter connection. */
  private connectedAt = 0;
  /** The first failed attempt of an outage is logged as a warning, the retries at debug level. */
  private missingLogged = false;

  constructor(private readonly options: SerialLineOptions) {
    this.retryDelayMs = options.retryInitialMs;
  }

  attach(name: string, user: LineUser): void {
    this.users.push({ name, user });
  }

  start(): void {
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const connection = this.connection;
    this.connection = undefined;
    connection?.close();
  }

  get connected(): boolean {
    return this.connection !== undefined;
  }

  /** The device file the port is open on, symlinks (/dev/serial/by-id/…) resolved; undefined while not connected. */
  get portDevice(): string | undefined {
    return this.connection ? this.device : undefined;
  }

  /** The path the port was opened at, and the devices on the line, while it is open. */
  get openAs(): { path: string; devices: string[] } | undefined {
    return this.connection && this.portPath !== undefined ? { path: this.portPath, devices: this.devices } : undefined;
  }

  /**
   * Writes once the port has taken the previous write, unless `wanted()` turned false meanwhile (the
   * request timed out or was aborted): a request given up is never written later.
   */
  async write(data: Buffer, wanted: () => boolean): Promise<void> {
    const connection = this.connection;
    if (!connection) throw new Error('device not connected');
    await connection.idle();
    if (!wanted()) return;
    if (connection !== this.connection) throw new Error('device not connected');
    connection.write(data);
  }

  private get devices(): string[] {
    return this.users.map(({ name }) => name);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const { driver, port, override, log } = this.options;
    try {
      const path = await resolvePortPath(port, override, () => driver.list());
      if (!path) throw new Error(`no serial port matches USB ${JSON.stringify(port.usb)}`);
      // Which tty a by-id or by-path link (or a udev rule's name) leads to; looked up before the open, which a lost port must not follow.
      const device = await realpath(path).catch(() => path);
      // serialport's lock would refuse it as "Cannot lock port", which does not say who holds it
      const elsewhere = this.options.openElsewhere(device);
      if (elsewhere) throw new Error(elsewhere);
      const connection = await driver.open(path, port, { data: (chunk) => this.onData(chunk), lost: (error) => this.onLost(error) });
      if (this.stopped) {
        connection.close();
        return;
      }
      this.connection = connection;
      this.portPath = path;
      this.device = device;
      this.connectedAt = performance.now();
      this.missingLogged = false;
      log.info({ devices: this.devices, port: path }, 'device connected');
      for (const { user } of this.users) user.connected();
    } catch (error) {
      const level = this.missingLogged ? 'debug' : 'warn';
      this.missingLogged = true;
      log[level]({ devices: this.devices, err: (error as Error).message, retryInMs: this.retryDelayMs }, 'device not available; retrying');
      for (const { user } of this.users) user.unavailable(error as Error);
      this.retryLater();
    }
  }

  private onLost(error: Error): void {
    const connection = this.connection;
    if (!connection) return;
    // the wait starts over only after a connection that held: a port that opens and fails at once
    // (a flaky adapter) is not reopened every retryInitialMs for ever
    if (performance.now() - this.connectedAt >= HELD_CONNECTION_MS) this.retryDelayMs = this.options.retryInitialMs;
    this.options.log.warn({ devices: this.devices, port: this.portPath, err: error.message }, 'device lost; retrying');
    this.missingLogged = true;
    this.connection = undefined;
    connection.close();
    for (const { user } of this.users) user.lost(`port lost: ${error.message}`, error);
    this.retryLater();
  }

  private retryLater(): void {
    if (this.stopped) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.options.retryMaxMs);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }
}
