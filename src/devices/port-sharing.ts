import type { Profile } from './profile.js';

/** A device already configured on a port. */
export interface PortHolder {
  name: string;
  profile: Profile;
}

/** What every unit on one RS-485 line must agree on: the line's own settings. */
const LINE_SETTINGS = ['baudRate', 'dataBits', 'parity', 'stopBits', 'localEcho'] as const;

/**
 * Why `candidate` cannot join the devices already configured on `port`, or undefined when it can.
 * Only Modbus units share a port (a multi-drop RS-485 line: Modbus over Serial Line §2.1), at the
 * line's settings and each at its own address, which is how the master tells their answers apart;
 * any other device would read the others' bytes as its frames.
 */
export function sharingRefusal(port: string, candidate: PortHolder, holders: PortHolder[]): string | undefined {
  const [first] = holders;
  const notModbus = [candidate, first].find((device) => device.profile.framing.type !== 'modbus');
  if (notModbus) {
    return `${port} is device ${first.name}'s, and only Modbus units share a port: device ${notModbus.name}'s framing is ${notModbus.profile.framing.type}`;
  }
  const setting = LINE_SETTINGS.find((key) => candidate.profile.port[key] !== first.profile.port[key]);
  if (setting) {
    return `device ${candidate.name} sets port.${setting} ${candidate.profile.port[setting]}, device ${first.name} on the same port ${first.profile.port[setting]}`;
  }
  const unitId = (device: PortHolder) => (device.profile.framing.type === 'modbus' ? device.profile.framing.unitId : undefined);
  const sameUnit = holders.find((holder) => unitId(holder) === unitId(candidate));
  if (sameUnit) return `device ${candidate.name} has unit id ${unitId(candidate)}, as device ${sameUnit.name} on the same port does`;
  return undefined;
}
