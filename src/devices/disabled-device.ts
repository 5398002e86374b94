import type { DeviceInstanceConfig } from './config.js';
import type { DeviceStatus } from './device.js';

/**
 * A configured device whose profile could not be used (missing, invalid, or not fitting its
 * instance): it stays listed with the reason, and the broker, shadows and other devices run on.
 */
export class DisabledDevice {
  readonly name: string;
  readonly connected = false;

  constructor(private readonly instance: DeviceInstanceConfig, readonly reason: string) {
    this.name = instance.name;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  status(): DeviceStatus {
    return {
      name: this.name,
      profile: this.instance.profile,
      description: null,
      thing: this.instance.thing ?? null,
      disabled: true,
      connected: false,
      // the profile's port is unknown: only the instance's own
      port: this.instance.port ?? null,
      portDevice: null,
      unitId: this.instance.unitId ?? null,
      lastFrameAt: null,
      framesPerSecond: 0,
      frames: 0,
      parseErrors: 0,
      oversizedFrames: 0,
      ignoredFrames: 0,
      droppedReadings: 0,
      commandsSent: 0,
      commandsFailed: 0,
      commandsQueued: 0,
      reconnects: 0,
      lastError: this.reason,
    };
  }
}
