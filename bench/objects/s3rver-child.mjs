// s3rver (npm), the reference server, in its own process so it does not share the client's event loop.
import S3rver from 's3rver';

const [port, directory] = process.argv.slice(2);
const server = new S3rver({ port: Number(port), address: '127.0.0.1', directory, silent: true, configureBuckets: [{ name: 'bench' }] });
await server.run();
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  await server.close();
  process.exit(0);
});
