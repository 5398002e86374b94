import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatBytes, formatDuration, formatTable } from '../table.js';

interface StatusBody {
  version: string;
  state: string;
  pid: number;
  uptimeSeconds: number;
  rssBytes: number;
  dataDir: string;
  config: string;
  dbSizeBytes: number;
  dataDirFreeBytes: number | null;
  services: Record<string, { ok: boolean; detail?: string; connectedClients?: number; queued?: { sessions: number; messages: number }; [counter: string]: unknown }>;
  listeners: Array<{ name: string; protocol: string; host: string; port: number }>;
}

export function registerStatus(program: Command, cli: CliContext): void {
  program.command('status')
    .description('version, uptime, memory, services, listeners and their ports, connected clients, database size and the space left on its disk')
    .action(async (_options, command: Command) => {
      const status = await cli.call<StatusBody>(command, 'GET', '/v1/status');
      cli.print(command, status, () => {
        const broker = status.services.broker;
        const lines = [
          `outpostd ${status.version} (pid ${status.pid}) ${status.state}, up ${formatDuration(status.uptimeSeconds)}`,
          `memory:    ${formatBytes(status.rssBytes)} RSS`,
          `database:  ${formatBytes(status.dbSizeBytes)} in ${status.dataDir}${status.dataDirFreeBytes === null ? '' : ` (${formatBytes(status.dataDirFreeBytes)} free)`}`,
          `config:    ${status.config}`,
          `clients:   ${broker?.connectedClients ?? 0} connected; ${broker?.queued?.messages ?? 0} messages queued for ${broker?.queued?.sessions ?? 0} persistent sessions`,
          '',
          formatTable(['SERVICE', 'STATE', 'DETAIL'], Object.entries(status.services).map(([name, s]) =>
            [name, s.ok ? 'ok' : 'down', s.detail ?? serviceFigures(s)])),
          formatTable(['LISTENER', 'PROTOCOL', 'ADDRESS'], status.listeners.map((l) =>
            [l.name, l.protocol, l.port ? `${l.host}:${l.port}` : l.host])),
        ];
        return lines.join('\n');
      });
    });
}

/**
 * A service's figures as `--json` has them, on one line: its own values, then each group of counts
 * (dropped, refused, environments, …) unless all its counts are zero, in which case it says nothing;
 * a group shown is shown whole, so that `warm 0` beside `max 16` is read, not guessed.
 */
function serviceFigures(service: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(service)) {
    if (key === 'ok') continue;
    if (value !== null && typeof value === 'object') {
      const counts = Object.entries(value);
      if (counts.some(([, count]) => count !== 0)) parts.push(`${key}: ${counts.map(([name, count]) => `${name} ${String(count)}`).join(', ')}`);
    } else {
      parts.push(`${key} ${String(value)}`);
    }
  }
  return parts.join('; ');
}
