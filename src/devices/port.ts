import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Profile } from './profile.js';

/** What serialport's port list reports per port (the fields USB matching uses). */
export interface PortInfo {
  path: string;
  vendorId?: string;
  productId?: string;
  serialNumber?: string;
}

/** Where to open a device now: the instance's path, the profile's path, or the listed port whose USB identity matches; undefined when no listed port matches (unplugged). */
export async function resolvePortPath(port: Profile['port'], override: string | undefined, list: () => Promise<PortInfo[]>): Promise<string | undefined> {
  if (override) return override;
  if (port.path) return port.path;
  const usb = port.usb!;
  const same = (listed: string | undefined, wanted: string | undefined) => wanted === undefined || listed?.toLowerCase() === wanted.toLowerCase();
  const found = (await list()).find((info) => same(info.vendorId, usb.vendorId) && same(info.productId, usb.productId) && same(info.serialNumber, usb.serialNumber));
  return found?.path;
}

/** The port as configured, for `outpost devices ls`: a path, or the USB identity a port is matched by. */
export function configuredPort(port: Profile['port'], override: string | undefined): string {
  if (override) return override;
  if (port.path) return port.path;
  const { vendorId, productId, serialNumber } = port.usb!;
  return `usb ${vendorId}:${productId ?? '*'}${serialNumber !== undefined ? ` serial ${serialNumber}` : ''}`;
}

/**
 * serialport lists Linux ports by running `udevadm info -e` and crashes the process (an unhandled
 * 'error' event) when udevadm is missing, as in minimal containers: check first and fail this
 * lookup instead.
 */
export function listingAvailable(): boolean {
  if (process.platform !== 'linux') return true;
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, 'udevadm')));
}
