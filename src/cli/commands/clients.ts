import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { formatTable } from '../table.js';

interface ClientsBody {
  clients: Array<{ id: string; thing: string | null; via: string; address: string; since: number; clean: boolean; subscriptions: string[]; queued: number }>;
}

export function registerClients(program: Command, cli: CliContext): void {
  program.command('clients')
    .description('connected MQTT clients: id, thing, how it logged in, address, since, session, queued messages, subscriptions')
    .action(async (_options, command: Command) => {
      const { clients } = await cli.call<ClientsBody>(command, 'GET', '/v1/clients');
      cli.print(command, { clients }, () => formatTable(['CLIENT ID', 'THING', 'AUTH', 'ADDRESS', 'SINCE', 'SESSION', 'QUEUED', 'SUBSCRIPTIONS'],
        clients.map((c) => [c.id, c.thing ?? '(anonymous)', c.via, c.address, new Date(c.since).toISOString(), c.clean ? 'clean' : 'persistent', c.queued, c.subscriptions.join(' ') || '-'])));
    });
}
