import type { Command } from 'commander';
import { callAdmin, CliError, parseAdminUrl, resolveSocket, type CallOptions, type Connection } from './admin-client.js';

interface GlobalOptions {
  socket?: string;
  url?: URL;
  token?: string;
  json?: boolean;
}

/** What every command needs: a way to call the daemon and to print a table or JSON. */
export interface CliContext {
  call<T = unknown>(command: Command, method: string, path: string, body?: unknown, options?: CallOptions): Promise<T>;
  print(command: Command, data: unknown, asText: () => string): void;
}

export const cliContext: CliContext = {
  call(command, method, path, body, options) {
    return callAdmin(connectionOf(command), method, path, body, options);
  },
  print(command, data, asText) {
    const text = command.optsWithGlobals<GlobalOptions>().json ? `${JSON.stringify(data, null, 2)}\n` : asText();
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  },
};

/** Flags before the environment: a --socket given is used even with $OUTPOST_URL set (--url and --socket exclude each other). */
function connectionOf(command: Command): Connection {
  const options = command.optsWithGlobals<GlobalOptions>();
  const token = options.token ?? process.env.OUTPOST_TOKEN;
  if (options.url) return { url: options.url, token };
  if (options.socket === undefined && process.env.OUTPOST_URL) return { url: environmentUrl(process.env.OUTPOST_URL), token };
  return { socket: resolveSocket(options.socket) };
}

function environmentUrl(text: string): URL {
  try {
    return parseAdminUrl(text);
  } catch (error) {
    throw new CliError(`$OUTPOST_URL=${text}: ${(error as Error).message}`);
  }
}
