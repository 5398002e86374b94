import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';

interface DatagramSocket {
  send(buffer: Buffer, offset: number, length: number, path: string, callback?: (error?: Error) => void): void;
  close(): void;
}

/**
 * sd_notify(3) for Type=notify units. Node has no Unix datagram sockets, so the
 * optional unix-dgram addon sends them; without it, `systemd-notify` does
 * (which needs NotifyAccess=all in the unit). Outside systemd it does nothing.
 */
export class SystemdNotifier {
  private readonly socketPath = normalise(process.env.NOTIFY_SOCKET);
  private socket: DatagramSocket | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;

  constructor(private readonly log: Logger) {
    if (!this.socketPath) return;
    try {
      const unixDgram = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): DatagramSocket & { on(event: 'error', listener: (error: Error) => void): void } };
      const socket = unixDgram.createSocket('unix_dgram');
      socket.on('error', (error) => this.log.warn({ err: error }, 'systemd notify socket error'));
      this.socket = socket;
    } catch {
      this.log.debug('unix-dgram addon not available; using systemd-notify');
    }
  }

  get active(): boolean {
    return this.socketPath !== undefined;
  }

  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${status}\nMAINPID=${process.pid}`);
  }

  stopping(): void {
    this.send('STOPPING=1');
  }

  /** Pings at half the interval systemd expects (WATCHDOG_USEC), as sd_watchdog_enabled(3) advises. */
  startWatchdog(): void {
    const usec = Number(process.env.WATCHDOG_USEC);
    const forUs = !process.env.WATCHDOG_PID || Number(process.env.WATCHDOG_PID) === process.pid;
    if (!this.active || !usec || !forUs) return;
    this.watchdogTimer = setInterval(() => this.send('WATCHDOG=1'), Math.max(500, usec / 2000));
    this.watchdogTimer.unref();
  }

  close(): void {
    clearInterval(this.watchdogTimer);
    this.socket?.close();
  }

  private send(message: string): void {
    if (!this.socketPath) return;
    if (this.socket) {
      const buffer = Buffer.from(message);
      this.socket.send(buffer, 0, buffer.length, this.socketPath, (error) => {
        if (error) this.log.warn({ err: error }, 'systemd notify failed');
      });
      return;
    }
    execFile('systemd-notify', message.split('\n'), (error) => {
      if (error) this.log.warn({ err: error }, 'systemd-notify failed');
    });
  }
}

/** An abstract socket is given as "@name"; the kernel wants a leading NUL. */
function normalise(path: string | undefined): string | undefined {
  if (!path) return undefined;
  return path.startsWith('@') ? `\0${path.slice(1)}` : path;
}
