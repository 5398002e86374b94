import type { Server } from 'node:net';

export type ListenAddress = { host: string; port: number } | { path: string };

/**
 * Binds `server` to `where`. A failure names the configuration key that chose the address, as the
 * user fixes it ("mqtt.port: 127.0.0.1:1883 is in use …"), rather than Node's "listen EADDRINUSE".
 */
export function listenOn(server: Server, where: ListenAddress, key: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => reject(new Error(listenFailure(error, where, key), { cause: error }));
    server.once('error', failed);
    server.listen(where, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

function listenFailure(error: NodeJS.ErrnoException, where: ListenAddress, key: string): string {
  if ('path' in where) return `${key}: cannot listen on ${where.path}: ${error.message}`;
  const address = `${where.host}:${where.port}`;
  switch (error.code) {
    case 'EADDRINUSE': return `${key}.port: ${address} is in use by another program (a Mosquitto, another outpostd?): choose another port`;
    case 'EACCES': return `${key}.port: ${address} needs a privilege this process lacks (a port below 1024)`;
    case 'EADDRNOTAVAIL': return `${key}.host: ${where.host} is no address of this machine`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME': return `${key}.host: "${where.host}" is no address and no name this machine resolves (${error.code})`;
    default: return `${key}: cannot listen on ${address}: ${error.message}`;
  }
}
