import type { Profile } from './profile.js';
import { listingAvailable, type PortInfo } from './port.js';

/** An open serial port as the device needs it. */
export interface SerialConnection {
  /** Throws while an earlier write is still pending. */
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
          port.on('data', (chunk: Buffer) => events.data(chunk));
          port.on('error', (failure: Error) => {
            if (!closing) events.lost(failure);
          });
          port.on('close', (reason?: Error) => {
            if (!closing) events.lost(reason ?? new Error('port closed'));
            closing = true;
          });
          resolve({
            write: (data) => {
              // A device that stopped reading (hung firmware behind a USB CDC port) leaves writes
              // pending: one is kept, not one per command or poll in memory, delivered much later
              if (port.writableLength > 0) throw new Error('port not accepting data: the previous write is still pending');
              port.write(data);
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
