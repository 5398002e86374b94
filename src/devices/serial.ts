import type { Profile } from './profile.js';
import { listingAvailable, type PortInfo } from './port.js';

/** An open serial port as the device needs it. */
export interface SerialConnection {
  /**
   * Resolves once the port has taken the last write (at once if it has). serialport reports a
   * write done on a later turn of the event loop than the bytes leave: the device's answer to
   * them can come first, so the next write waits for this rather than find the port busy.
   */
  idle(): Promise<void>;
  /** Throws while an earlier write is still pending: one write at most is held in memory. */
  write(data: Buffer): void;
  close(): void;
}

export interface SerialEvents {
  data(chunk: Buffer): void;
  /** The port went away (unplugged, pty closed) or failed; not called after `close()`. */
  lost(error: Error): void;
}

export interface SerialDriver {
  open(path: string, settings: Profile['port'], events: SerialEvents): Promise<SerialConnection>;
  list(): Promise<PortInfo[]>;
}

/** A write refused, or given up waiting for the port, while the port has not taken the previous one. */
export const PORT_BUSY = 'port not accepting data: the previous write is still pending';

/**
 * serialport, loaded on first use: a daemon without devices never loads it (nor its native
 * binding). One instance is shared by all devices.
 */
export async function loadSerialDriver(): Promise<SerialDriver> {
  const { SerialPort } = await import('serialport');
  return {
    async list() {
      if (!listingAvailable()) throw new Error('USB matching needs udevadm (udev) to list serial ports');
      return SerialPort.list();
    },
    open(path, settings, events) {
      const port = new SerialPort({
        path, autoOpen: false, baudRate: settings.baudRate, dataBits: settings.dataBits as 5 | 6 | 7 | 8,
        parity: settings.parity, stopBits: settings.stopBits,
      });
      return new Promise((resolve, reject) => {
        port.open((error) => {
          if (error) {
            reject(error);
            return;
          }
          let closing = false;
          let pending: Promise<void> | undefined;
          keepWatchingBoth(port);
          port.on('data', (chunk: Buffer) => events.data(chunk));
          port.on('error', (failure: Error) => {
            if (!closing) events.lost(failure);
          });
          port.on('close', (reason?: Error) => {
            if (!closing) events.lost(reason ?? new Error('port closed'));
            closing = true;
          });
          resolve({
            idle: () => pending ?? Promise.resolve(),
            write: (data) => {
              // A device that stopped reading (hung firmware behind a USB CDC port) leaves writes
              // pending: one is kept, not one per command or poll in memory, delivered much later
              if (pending) throw new Error(PORT_BUSY);
              // called on success, on failure and when the port is destroyed with the write pending
              const written: Promise<void> = new Promise((resolve) => port.write(data, () => {
                if (pending === written) pending = undefined;
                resolve();
              }));
              pending = written;
            },
            close: () => {
              closing = true;
              if (port.isOpen) port.close(() => undefined);
            },
          });
        });
      });
    },
  };
}

/** What @serialport/bindings-cpp's Poller (its private poller, Linux and macOS) is made of, as far as it is used here. */
interface BindingPoller {
  poll(events: number): void;
  listenerCount(event: string): number;
}

const UV_READABLE = 1;
const UV_WRITABLE = 2;

/**
 * @serialport/bindings-cpp 13 watches the port for one thing at a time: its native Poller::poll
 * restarts libuv's poll with only the events it is asked for, so a read waiting for data stops the
 * watch for room to write. A write longer than the tty's buffer (a long command line) then stalls
 * once the device sends anything during it, until the device sends more: for a device that waits
 * for the rest of the command, for ever. Whoever still waits is kept in the watch.
 */
function keepWatchingBoth(port: InstanceType<typeof import('serialport').SerialPort>): void {
  const poller = (port.port as { poller?: BindingPoller } | undefined)?.poller;
  if (!poller || typeof poller.poll !== 'function') return;
  const poll = poller.poll.bind(poller);
  poller.poll = (events: number) => poll(events
    | (poller.listenerCount('readable') ? UV_READABLE : 0)
    | (poller.listenerCount('writable') ? UV_WRITABLE : 0));
}
