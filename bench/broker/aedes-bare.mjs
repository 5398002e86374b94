#!/usr/bin/env node
// A bare aedes broker (no auth, in-memory persistence) as a reference point:
//   node bench/broker/aedes-bare.mjs <port> [host]
import net from 'node:net';
import { Aedes } from 'aedes';

const port = Number(process.argv[2]);
const host = process.argv[3] ?? '127.0.0.1';
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: aedes-bare.mjs <port> [host]');
  process.exit(2);
}

const broker = await Aedes.createBroker();
const server = net.createServer(broker.handle);
server.listen(port, host, () => console.log(`aedes-bare listening on ${host}:${port}`));

const stop = () => {
  server.close();
  broker.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
