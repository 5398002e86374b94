import { Counter, Gauge, type Registry } from 'prom-client';

/** Per-device Prometheus figures; the `device` label is the instance name. */
export class DeviceMetrics {
  private readonly frames: Counter<'device'>;
  private readonly parseErrors: Counter<'device'>;
  private readonly commands: Counter<'device' | 'result'>;
  private readonly up: Gauge<'device'>;
  private readonly disabledDevices: Gauge<'device'>;

  constructor(registry: Registry, lastFrames: () => Array<[string, number]>) {
    const registers = [registry];
    this.frames = new Counter({ name: 'outpost_device_frames_total', help: 'Frames received from a serial device (Modbus: answers)', labelNames: ['device'], registers });
    this.parseErrors = new Counter({ name: 'outpost_device_parse_errors_total', help: 'Frames skipped as garbage: bad checksum or CRC, no match, too long, Modbus timeouts and noise', labelNames: ['device'], registers });
    this.commands = new Counter({ name: 'outpost_device_commands_total', help: 'Commands handled, by result (ok; error: refused, or failed on the device; timeout)', labelNames: ['device', 'result'], registers });
    this.up = new Gauge({ name: 'outpost_device_connected', help: '1 while the device port is open', labelNames: ['device'], registers });
    this.disabledDevices = new Gauge({ name: 'outpost_device_disabled', help: '1 for a device not run: its profile cannot be used, or serialport cannot be loaded', labelNames: ['device'], registers });
    new Gauge({
      name: 'outpost_device_last_frame_timestamp_seconds', help: 'When the device last sent a frame', labelNames: ['device'], registers,
      collect() {
        this.reset();
        for (const [device, at] of lastFrames()) if (at) this.set({ device }, at / 1000);
      },
    });
  }

  /**
   * A device's series from the start, at 0: a device missing since boot shows as not connected
   * (an alert on `outpost_device_connected == 0` sees it), and the first frame or error is an
   * increase rather than a series appearing at 1.
   */
  add(device: string, commands: boolean): void {
    this.up.set({ device }, 0);
    this.disabledDevices.set({ device }, 0);
    this.frames.inc({ device }, 0);
    this.parseErrors.inc({ device }, 0);
    if (commands) for (const result of ['ok', 'error', 'timeout']) this.commands.inc({ device, result }, 0);
  }

  /** A device that is not run: never connected, and counted as disabled. */
  disabled(device: string): void {
    this.up.set({ device }, 0);
    this.disabledDevices.set({ device }, 1);
  }

  frame(device: string): void {
    this.frames.inc({ device });
  }

  parseError(device: string): void {
    this.parseErrors.inc({ device });
  }

  command(device: string, result: string): void {
    this.commands.inc({ device, result });
  }

  connected(device: string, connected: boolean): void {
    this.up.set({ device }, connected ? 1 : 0);
  }
}
