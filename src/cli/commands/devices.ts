import type { Command } from 'commander';
import { resolve } from 'node:path';
import { CliError } from '../admin-client.js';
import type { CliContext } from '../context.js';
import { formatTable } from '../table.js';
import type { DeviceStatus } from '../../devices/device.js';

function lastFrame(at: string | null): string {
  if (!at) return '-';
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(at)) / 1000));
  return `${seconds}s ago`;
}

/**
 * The configured port (`-` when none is known), the tty it is open on when that is another name (a
 * by-id link, a USB match), and which unit of a Modbus line the device is.
 */
function portOf(device: DeviceStatus): string {
  const configured = device.port ?? '-';
  const port = device.portDevice && device.portDevice !== configured ? `${configured} -> ${device.portDevice}` : configured;
  return device.unitId === null ? port : `${port} unit ${device.unitId}`;
}

/** outpost devices ls | check FILE… */
export function registerDevices(program: Command, cli: CliContext): void {
  const devices = program.command('devices').description('serial devices bridged by their profiles (firmware-configs/devices)');

  devices.command('ls')
    .description('configured devices: connection, port, last frame, frames/s, parse errors, commands')
    .action(async (_options, command: Command) => {
      const body = await cli.call<{ devices: DeviceStatus[] }>(command, 'GET', '/v1/devices');
      cli.print(command, body, () => body.devices.length === 0
        ? 'no devices configured (devices.instances)\n'
        : formatTable(['NAME', 'PROFILE', 'CONNECTED', 'PORT', 'LAST FRAME', 'FRAMES/S', 'FRAMES', 'PARSE ERRORS', 'COMMANDS SENT', 'FAILED', 'THING'],
          body.devices.map((d) => [d.name, d.profile, d.disabled ? 'disabled' : d.connected ? 'yes' : 'no', portOf(d), lastFrame(d.lastFrameAt), d.framesPerSecond,
            d.frames, d.parseErrors, d.commandsSent, d.commandsFailed, d.thing ?? '-']))
          + body.devices.filter((d) => d.disabled).map((d) => `${d.name} is disabled: ${d.lastError}\n`).join(''));
    });

  devices.command('check <files...>')
    .description('validate device profiles without a daemon: every error names the key and the reason')
    .action(async (files: string[], _options, command: Command) => {
      // Loaded here rather than at the top: other commands do not pay for the profile schema.
      const { loadProfile } = await import('../../devices/profile.js');
      const results = files.map((file) => {
        try {
          const profile = loadProfile(resolve(file));
          return { file, ok: true, framing: profile.framing.type, parser: profile.parser.type };
        } catch (error) {
          return { file, ok: false, error: (error as Error).message };
        }
      });
      cli.print(command, { profiles: results }, () => results.map((result) => result.ok
        ? `${result.file}: ok (${result.framing} framing, ${result.parser} parser)`
        : result.error!).join('\n'));
      if (results.some((result) => !result.ok)) throw new CliError(`${results.filter((result) => !result.ok).length} of ${results.length} profiles invalid`);
    });
}
