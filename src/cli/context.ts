import type { Command } from 'commander';
import { callAdmin, type Connection } from './admin-client.js';

interface GlobalOptions {
  socket?: string;
  url?: string;
  token?: string;
  json?: boolean;
}

/** What every command needs: a way to call the daemon and to print a table or JSON. */
export interface CliContext {
  call<T = unknown>(command: Command, method: string, path: string, body?: unknown): Promise<T>;
  print(command: Command, data: unknown, asText: () => string): void;
}

export const cliContext: CliContext = {
  call(command, method, path, body) {
    const options = command.optsWithGlobals<GlobalOptions>();
    const connection: Connection = { socket: options.socket, url: options.url ?? process.env.OUTPOST_URL, token: options.token ?? process.env.OUTPOST_TOKEN };
    return callAdmin(connection, method, path, body);
  },
  print(command, data, asText) {
    const text = command.optsWithGlobals<GlobalOptions>().json ? `${JSON.stringify(data, null, 2)}\n` : asText();
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  },
};
