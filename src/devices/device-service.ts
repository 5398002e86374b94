import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { AdminError } from '../admin/router.js';
import { ConfigError } from '../config/load.js';
import type { Listener, Service, ServiceContext, ServiceHealth } from '../service.js';
import type { DeviceInstanceConfig, DevicesConfig } from './config.js';
import type { Device } from './device.js';
import { DisabledDevice } from './disabled-device.js';
import type { ModbusMaster } from './modbus-master.js';
import { configuredPort } from './port.js';
import { sharingRefusal, type PortHolder } from './port-sharing.js';
import type { Profile } from './profile.js';
import type { SerialLine } from './serial-line.js';

/** The profiles shipped with Outpost, next to dist/ (and src/) in the package. */
export const SHIPPED_PROFILES = fileURLToPath(new URL('../../firmware-configs/devices/', import.meta.url));

/**
 * Serial devices: each configured instance runs its profile (firmware-configs/devices) on a port,
 * publishing readings on the local bus and the thing's shadow and writing commands back. With no
 * instances nothing is loaded: the profile schema, the device runtime, serialport and its native
 * binding are imported only when a device is configured.
 */
export class DeviceService implements Service {
  readonly name = 'devices';
  private readonly config: DevicesConfig;
  private readonly log: Logger;
  private devices: Array<Device | DisabledDevice> = [];
  private lines: SerialLine[] = [];

  constructor(private readonly context: ServiceContext) {
    this.config = context.config.devices;
    this.log = context.log.child({ service: 'devices' });
    context.admin.add('GET', '/v1/devices', () => ({ body: { devices: this.devices.map((device) => device.status()) } }));
    context.admin.add('GET', '/v1/devices/:name', (request) => {
      const device = this.devices.find((candidate) => candidate.name === request.params.name);
      if (!device) throw new AdminError(404, `no device named ${request.params.name}`);
      return { body: device.status() };
    });
  }

  async start(): Promise<void> {
    const { instances } = this.config;
    if (!instances.length) return;
    const [{ loadProfile }, { Device }, { DeviceMetrics }, { loadSerialDriver }, { SerialLine }, { ModbusMaster, characterMs }] = await Promise.all([
      import('./profile.js'), import('./device.js'), import('./metrics.js'), import('./serial.js'), import('./serial-line.js'), import('./modbus-master.js'),
    ]);
    // serialport's native binding may fail to load (no prebuilt binary for the board's CPU, a
    // damaged install): then the devices cannot run, the rest of outpostd can.
    const driver = await loadSerialDriver().catch((error: Error) => error);
    const metrics = new DeviceMetrics(this.context.metrics, () => this.devices.map((device) => [device.name, Date.parse(device.status().lastFrameAt ?? '') || 0]));
    // One profile edited on an unattended gateway must not take the broker and shadows down either:
    // a device that cannot run is disabled, the reason in `outpost devices ls`, the log and the metrics.
    const disable = (instance: DeviceInstanceConfig, reason: string) => {
      this.log.error({ device: instance.name, err: reason }, 'device disabled');
      metrics.disabled(instance.name);
      return new DisabledDevice(instance, reason);
    };
    /** Each port (as configured), opened once for the devices on it: one device, or the Modbus units of one RS-485 line. */
    const lines = new Map<string, { line: SerialLine; modbus: ModbusMaster | undefined; holders: PortHolder[] }>();
    this.devices = instances.map((instance, index) => {
      let profile: Profile;
      try {
        profile = this.profileOf(instance, index, loadProfile);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        return disable(instance, error.message);
      }
      if (driver instanceof Error) return disable(instance, `serial ports unavailable: serialport cannot be loaded: ${driver.message}`);
      // serialport locks the port it opens: a second device opening it would retry for ever ("Cannot
      // lock port"), so the devices of one port share its line
      const port = configuredPort(profile.port, instance.port);
      const holder = { name: instance.name, profile };
      let shared = lines.get(port);
      const refusal = shared && sharingRefusal(port, holder, shared.holders);
      if (refusal) {
        return disable(instance, `devices.instances.${index}.port: expected a port no other device uses, or Modbus units at the same port settings with distinct unit ids (${refusal})`);
      }
      if (!shared) {
        const line: SerialLine = new SerialLine({
          port: profile.port, override: instance.port, driver, log: this.log, retryInitialMs: this.config.retryInitialMs, retryMaxMs: this.config.retryMaxMs,
          openElsewhere: (device) => {
            const other = [...lines.values()].find((candidate) => candidate.line !== line && candidate.line.portDevice === device)?.line.openAs;
            return other && `${device} is open as ${other.path} for device ${other.devices.join(', ')}: devices on one port must name it the same way (this one: ${port})`;
          },
        });
        const modbus = profile.framing.type === 'modbus' ? new ModbusMaster((frame, wanted) => line.write(frame, wanted), characterMs(profile.port), profile.port.localEcho) : undefined;
        if (modbus) line.onData = (chunk) => modbus.push(chunk);
        shared = { line, modbus, holders: [] };
        lines.set(port, shared);
      }
      shared.holders.push(holder);
      return new Device({
        instance, profile, line: shared.line, modbus: shared.modbus, bus: this.context.bus, log: this.log, metrics, commandQueueLength: this.config.commandQueueLength,
      });
    });
    this.lines = [...lines.values()].map(({ line }) => line);
    for (const device of this.devices) await device.start();
    for (const line of this.lines) line.start();
    const names = (disabled: boolean) => this.devices.filter((device) => (device instanceof DisabledDevice) === disabled).map((device) => device.name);
    this.log.info({ devices: names(false), disabled: names(true) }, 'devices started');
  }

  async stop(): Promise<void> {
    for (const device of this.devices) await device.stop();
    for (const line of this.lines) line.stop();
  }

  health(): ServiceHealth {
    // A missing device is normal (unplugged); it shows in `outpost devices ls`, not as an unhealthy daemon.
    return { ok: true };
  }

  listeners(): Listener[] {
    return [];
  }

  status(): Record<string, unknown> {
    return {
      configured: this.devices.length,
      connected: this.devices.filter((device) => device.connected).length,
      disabled: this.devices.filter((device) => device instanceof DisabledDevice).length,
    };
  }

  private profileOf(instance: DeviceInstanceConfig, index: number, loadProfile: (file: string) => Profile): Profile {
    const at = `devices.instances.${index}`;
    const file = profileFile(instance.profile, this.config.profilesDir);
    let profile: Profile;
    try {
      profile = loadProfile(file);
    } catch (error) {
      throw new ConfigError(`${at}.profile: ${(error as Error).message}`);
    }
    if (!instance.port && !profile.port.path && !profile.port.usb) {
      throw new ConfigError(`${at}.port: expected a port path (profile ${instance.profile} sets neither port.path nor port.usb)`);
    }
    if (instance.unitId !== undefined) {
      // Modbus over Serial Line §2.2: unit ids address the slaves of a Modbus line; a text device has none
      if (profile.framing.type !== 'modbus') throw new ConfigError(`${at}.unitId: expected no unit id (profile ${instance.profile} is not Modbus: its framing is ${profile.framing.type})`);
      profile = { ...profile, framing: { ...profile.framing, unitId: instance.unitId } };
    }
    if (!instance.thing) {
      const templates = [['telemetry.topic', profile.telemetry.topic], ['commands.topic', profile.commands?.topic], ['commands.replyTopic', profile.commands?.replyTopic]];
      const needsThing = templates.find(([, template]) => template?.includes('${thing}'));
      if (needsThing) throw new ConfigError(`${at}.thing: expected a thing name (profile ${instance.profile} uses \${thing} in ${needsThing[0]})`);
    }
    return profile;
  }
}

/**
 * A profile name is `<dir>/<name>.yaml` (devices.profilesDir), else the shipped profile of that name;
 * anything with a slash or a .yaml/.yml ending is a file path (relative to the directory).
 */
export function profileFile(profile: string, dir: string | undefined): string {
  if (profile.includes('/') || /\.ya?ml$/.test(profile)) return isAbsolute(profile) ? profile : resolve(dir ?? SHIPPED_PROFILES, profile);
  const shipped = join(SHIPPED_PROFILES, `${profile}.yaml`);
  if (dir === undefined) return shipped;
  // the user's profile of that name first; a shipped one still found by its name
  const own = join(dir, `${profile}.yaml`);
  return existsSync(own) || !existsSync(shipped) ? own : shipped;
}
