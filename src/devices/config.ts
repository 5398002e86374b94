import { z } from 'zod/v3';
import { integer, milliseconds, path, range, text } from '../config/fields.js';

/** Device names become topic levels (`devices/${device}/telemetry`): no wildcards, no slashes. */
export const deviceName = () => text('expected a device name of 1-64 letters, digits, "_" or "-"')
  .regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'expected a device name of 1-64 letters, digits, "_" or "-"' });

const instanceSchema = () => z.strictObject({
  /** The device's name: `${device}` in topic templates, the row in `outpost devices ls`, the `device` metrics label. */
  name: deviceName(),
  /** A profile name (`<profilesDir>/<name>.yaml`) or a path to a profile file. */
  profile: text('expected a profile name or file'),
  /** Overrides the profile's `port.path` (and its `port.usb` match): where this particular device is plugged in. */
  port: path().optional(),
  /** Overrides a Modbus profile's `framing.unitId`: one profile for the identical units of an RS-485 line. */
  unitId: range('expected a unit id 1-247', 1, 247).optional(),
  /** The thing whose classic shadow gets readings in `reported` and sends `desired` changes as commands; none: no shadow. */
  thing: text('expected a thing name').regex(/^[a-zA-Z0-9:_-]{1,128}$/, { message: 'expected a thing name of 1-128 [a-zA-Z0-9:_-]' }).optional(),
});

/** `devices.*`: serial devices and the profiles (firmware-configs/devices) they use. */
export const devicesSchema = () => z.strictObject({
  /** Where profile names are looked up; default: the profiles shipped with Outpost (firmware-configs/devices). */
  profilesDir: path().optional(),
  /** The serial devices to run, each bound to a profile; none: the service loads nothing (serialport stays unloaded). */
  instances: z.array(instanceSchema(), { invalid_type_error: 'expected a list of devices' }).default([])
    .superRefine((instances, context) => {
      const seen = new Set<string>();
      instances.forEach((instance, index) => {
        if (seen.has(instance.name)) context.addIssue({ code: 'custom', path: [index, 'name'], message: `expected a unique device name ("${instance.name}" is used twice)` });
        seen.add(instance.name);
      });
    }),
  /** First wait before reopening a device that vanished or failed to open; doubled on each failure. */
  retryInitialMs: milliseconds().default(500),
  /** The longest wait between two attempts to open a missing device. */
  retryMaxMs: milliseconds().default(30000),
  /** Commands one device may have waiting (each waits for the previous one's ack); more are refused with an error reply. */
  commandQueueLength: integer('expected a command count 1-1000').min(1, { message: 'expected a command count 1-1000' })
    .max(1000, { message: 'expected a command count 1-1000' }).default(16),
});

export type DevicesConfig = z.infer<ReturnType<typeof devicesSchema>>;
export type DeviceInstanceConfig = DevicesConfig['instances'][number];
