import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import mqttPacket from 'mqtt-packet';
import { TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/eventually.js';
import { makeTestPki, type TestPki } from './helpers/certs.js';
import { subscribeGranted, addThing, collectMessages, connectClient, mosquittoClient, outpost } from './helpers/mqtt.js';

describe('TLS and mutual TLS', () => {
  let pki: TestPki;
  let daemon: TestDaemon;
  let url: string;

  beforeAll(async () => {
    pki = makeTestPki('tls-dev');
    daemon = await TestDaemon.start({
      config: { mqtt: { tls: { enabled: true, cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert } } },
    });
    url = `mqtts://127.0.0.1:${daemon.port('mqtts')}`;
    await addThing(daemon.socket, 'pw-dev', 'pw');
    const registered = await outpost(daemon.socket, ['things', 'add', 'fp-dev', '--cert', pki.selfSignedCert]);
    expect(registered.code, registered.stderr).toBe(0);
  });

  afterAll(async () => {
    await daemon.cleanup();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  const ca = () => readFileSync(pki.caCert);

  /**
   * What the broker answers a CONNECT over TLS with this client certificate: its first bytes, or
   * nothing before it closed; and the serial number of the certificate the server showed.
   */
  const connectOverTls = (port: number, cert: string, key: string, clientId: string) => new Promise<{ answer?: Buffer; serverSerial?: string }>((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca(), cert: readFileSync(cert), key: readFileSync(key) });
    let serverSerial: string | undefined;
    const timer = setTimeout(() => { socket.destroy(); resolve({ serverSerial }); }, 5000);
    socket.once('secureConnect', () => {
      serverSerial = socket.getPeerCertificate().serialNumber;
      socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 30 }));
    });
    socket.once('data', (data: Buffer) => { clearTimeout(timer); socket.destroy(); resolve({ answer: data, serverSerial }); });
    socket.once('close', () => { clearTimeout(timer); resolve({ serverSerial }); });
    socket.on('error', () => undefined);
  });

  it('accepts a password over TLS', async () => {
    const client = await connectClient(url, { ca: ca(), clientId: 'pw-dev', username: 'pw-dev', password: 'pw' });
    await client.publishAsync('things/pw-dev/x', 'over tls', { qos: 1 });
    client.end(true);
  });

  it('names the thing by the CN of a certificate the CA signed', async () => {
    const client = await connectClient(url, {
      ca: ca(), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey), clientId: 'tls-dev',
    });
    const echo = collectMessages(client, 1);
    await client.subscribeAsync('things/tls-dev/#', { qos: 1 });
    await client.publishAsync('things/tls-dev/hello', 'mtls', { qos: 1 });
    expect((await echo)[0].payload).toBe('mtls');
    // The CN-named thing gets the default policy: another thing's topics are refused.
    expect(await subscribeGranted(client, ['things/pw-dev/#'])).toEqual([128]);
    client.end(true);
  });

  it('refuses a certificate the CA signed whose CN no thing can have', async () => {
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: pki.dir, stdio: 'pipe' });
    // as a thing name these would be substituted into its policy's ${thing} filters
    for (const [file, commonName] of [['plus', '+'], ['slash', 'a/b']]) {
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${file}.key`, '-out', `${file}.csr`, '-subj', `/CN=${commonName.replace('/', '\\/')}`]);
      openssl(['x509', '-req', '-in', `${file}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${file}.pem`, '-days', '2']);
      const { answer } = await connectOverTls(daemon.port('mqtts'), join(pki.dir, `${file}.pem`), join(pki.dir, `${file}.key`), commonName);
      expect([commonName, ...answer ?? []]).toEqual([commonName, 0x20, 2, 0, 5]);
    }
  });

  it('names the thing by a registered certificate fingerprint, whatever its CN', async () => {
    const client = await connectClient(url, {
      ca: ca(), cert: readFileSync(pki.selfSignedCert), key: readFileSync(pki.selfSignedKey), clientId: 'fp-dev',
    });
    const granted = await client.subscribeAsync('things/fp-dev/#', { qos: 1 });
    expect(granted[0].qos).toBe(1);
    client.end(true);
    const listed = await outpost(daemon.socket, ['clients', '--json']);
    expect(listed.code).toBe(0);
  });

  it('refuses an untrusted, unregistered client certificate', async () => {
    await daemon.stop();
    daemon = await TestDaemon.start({
      dataDir: daemon.dataDir,
      config: { mqtt: { tls: { enabled: true, cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert } } },
    });
    url = `mqtts://127.0.0.1:${daemon.port('mqtts')}`;
    await outpost(daemon.socket, ['things', 'rm', 'fp-dev']);
    await expect(connectClient(url, {
      ca: ca(), cert: readFileSync(pki.selfSignedCert), key: readFileSync(pki.selfSignedKey), clientId: 'unregistered-name',
    })).rejects.toMatchObject({ code: 5 });
  });

  it('works with mosquitto_pub over mutual TLS', async () => {
    const result = await mosquittoClient('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(daemon.port('mqtts')),
      '--cafile', pki.caCert, '--cert', pki.clientCert, '--key', pki.clientKey, '-i', 'tls-dev', '-t', 'things/tls-dev/m', '-m', 'hi', '-q', '1']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('without a ca, trusts no certificate authority: only registered fingerprints name a thing', async () => {
    // NODE_EXTRA_CA_CERTS stands for the public CAs Node trusts by default, any of which issue client certificates
    const fingerprintsOnly = await TestDaemon.start({
      config: { mqtt: { tls: { enabled: true, cert: pki.serverCert, key: pki.serverKey, requireClientCert: true } } },
      env: { NODE_EXTRA_CA_CERTS: pki.caCert },
    });
    try {
      const registered = await outpost(fingerprintsOnly.socket, ['things', 'add', 'fp-dev', '--cert', pki.selfSignedCert]);
      expect(registered.code, registered.stderr).toBe(0);
      const mqtts = `mqtts://127.0.0.1:${fingerprintsOnly.port('mqtts')}`;
      const client = await connectClient(mqtts, { ca: ca(), cert: readFileSync(pki.selfSignedCert), key: readFileSync(pki.selfSignedKey), clientId: 'fp-dev' });
      client.end(true);
      await expect(connectClient(mqtts, { ca: ca(), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey), clientId: 'tls-dev' }))
        .rejects.toMatchObject({ code: 5 });
    } finally {
      await fingerprintsOnly.cleanup();
    }
  });

  it('bounds the TLS port\'s sockets during their handshake by mqtt.maxConnections', async () => {
    const bounded = await TestDaemon.start({
      config: { mqtt: { maxConnections: 2, tls: { enabled: true, cert: pki.serverCert, key: pki.serverKey } } },
    });
    const sockets: Socket[] = [];
    try {
      // sockets that never send their ClientHello, as a client that only wants to hold the port does
      const open = () => new Promise<Socket & { ended: Promise<boolean> }>((resolve, reject) => {
        const socket = connect(bounded.port('mqtts'), '127.0.0.1');
        sockets.push(socket);
        const ended = new Promise<boolean>((done) => socket.once('close', () => done(true)));
        socket.on('error', () => undefined);
        socket.once('connect', () => resolve(Object.assign(socket, { ended })));
        socket.once('error', reject);
      });
      const closedWithin = (socket: { ended: Promise<boolean> }, ms: number) => Promise.race([socket.ended, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
      const held = [await open(), await open()];
      expect(await closedWithin(await open(), 2000)).toBe(true);
      for (const socket of held) expect(await closedWithin(socket, 50)).toBe(false);
      const metrics = await (await fetch(`http://127.0.0.1:${bounded.port('http')}/metrics`)).text();
      expect(metrics).toMatch(/outpost_mqtt_connections_refused_total\{reason="max_connections"\} 1\b/);
    } finally {
      for (const socket of sockets) socket.destroy();
      await bounded.cleanup();
    }
  });

  it('refuses at the handshake a certificate the CA revoked in mqtt.tls.crl, registered by fingerprint or not, and takes the others', async () => {
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: pki.dir, stdio: 'pipe' });
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'revoked.key', '-out', 'revoked.csr', '-subj', '/CN=revoked-dev']);
    openssl(['x509', '-req', '-in', 'revoked.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'revoked.pem', '-days', '2']);
    writeFileSync(join(pki.dir, 'index.txt'), '');
    writeFileSync(join(pki.dir, 'crlnumber'), '01\n');
    writeFileSync(join(pki.dir, 'ca.cnf'), '[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n');
    openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-revoke', 'revoked.pem']);
    openssl(['ca', '-config', 'ca.cnf', '-keyfile', 'ca.key', '-cert', 'ca.pem', '-gencrl', '-out', 'crl.pem']);
    const revoking = await TestDaemon.start({
      config: { mqtt: { tls: { enabled: true, cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert, crl: join(pki.dir, 'crl.pem') } } },
    });
    try {
      const registered = await outpost(revoking.socket, ['things', 'add', 'revoked-dev', '--cert', join(pki.dir, 'revoked.pem')]);
      expect(registered.code, registered.stderr).toBe(0);
      const port = revoking.port('mqtts');
      const answer = (cert: string, key: string, clientId: string) => connectOverTls(port, cert, key, clientId).then(({ answer }) => answer);
      expect(await answer(join(pki.dir, 'revoked.pem'), join(pki.dir, 'revoked.key'), 'revoked-dev')).toBeUndefined();
      // CONNACK 0: the CA's certificate it did not revoke, and a self-signed one registered by fingerprint
      expect([...await answer(pki.clientCert, pki.clientKey, 'tls-dev') ?? []]).toEqual([0x20, 2, 0, 0]);
      await outpost(revoking.socket, ['things', 'add', 'fp-dev', '--cert', pki.selfSignedCert]);
      expect([...await answer(pki.selfSignedCert, pki.selfSignedKey, 'fp-dev') ?? []]).toEqual([0x20, 2, 0, 0]);
    } finally {
      await revoking.cleanup();
    }
  });

  it('reads its certificate, key, CA and CRL files again on SIGHUP, for the handshakes after it, and keeps those in use when one does not load', async () => {
    const dir = join(pki.dir, 'reload');
    mkdirSync(dir);
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const signedByCa = ['-CA', pki.caCert, '-CAkey', join(pki.dir, 'ca.key'), '-CAcreateserial', '-days', '2'];
    // a device the CA revokes later, under a CRL that revokes nothing yet
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'lost.key', '-out', 'lost.csr', '-subj', '/CN=lost-dev']);
    openssl(['x509', '-req', '-in', 'lost.csr', ...signedByCa, '-out', 'lost.pem']);
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'crlnumber'), '01\n');
    writeFileSync(join(dir, 'ca.cnf'), '[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n');
    const caCommand = ['ca', '-config', 'ca.cnf', '-keyfile', join(pki.dir, 'ca.key'), '-cert', pki.caCert];
    openssl([...caCommand, '-gencrl', '-out', 'crl.pem']);
    const serverCert = join(dir, 'server.pem');
    copyFileSync(pki.serverCert, serverCert);
    const reloading = await TestDaemon.start({
      config: { mqtt: { tls: { enabled: true, cert: serverCert, key: pki.serverKey, ca: pki.caCert, crl: join(dir, 'crl.pem') } } },
    });
    try {
      const port = reloading.port('mqtts');
      const lost = () => connectOverTls(port, join(dir, 'lost.pem'), join(dir, 'lost.key'), 'lost-dev');
      const kept = () => connectOverTls(port, pki.clientCert, pki.clientKey, 'tls-dev');
      const connected = [0x20, 2, 0, 0];
      expect([...(await lost()).answer ?? []]).toEqual(connected);
      const { serverSerial: firstSerial } = await kept();
      // The CA revokes the lost device and the server's certificate is renewed; then SIGHUP (systemctl reload).
      openssl([...caCommand, '-revoke', 'lost.pem']);
      openssl([...caCommand, '-gencrl', '-out', 'crl.pem']);
      openssl(['x509', '-req', '-in', join(pki.dir, 'server.csr'), ...signedByCa, '-extfile', join(pki.dir, 'server.ext'), '-out', serverCert]);
      reloading.process.kill('SIGHUP');
      await eventually(() => reloading.logs.some((line) => line.msg === 'SIGHUP: reloaded TLS files'));
      expect((await lost()).answer).toBeUndefined();
      const renewed = await kept();
      expect([...renewed.answer ?? []]).toEqual(connected);
      expect(renewed.serverSerial).toBeDefined();
      expect(renewed.serverSerial).not.toBe(firstSerial);
      // A CRL that does not load: said, and the files in use kept.
      writeFileSync(join(dir, 'crl.pem'), 'not a CRL\n');
      reloading.process.kill('SIGHUP');
      await eventually(() => reloading.logs.some((line) => /^SIGHUP: kept the TLS files in use: mqtt\.tls\.crl: .*crl\.pem is not a PEM certificate revocation list/.test(line.msg)));
      expect((await lost()).answer).toBeUndefined();
      expect({ answer: [...(await kept()).answer ?? []] }).toEqual({ answer: connected });
    } finally {
      await reloading.cleanup();
    }
  });

  it('takes no mqtt.tls.crl without the ca it revokes for, nor one that is no CRL, and says so', async () => {
    await expect(TestDaemon.start({ config: { mqtt: { tls: { enabled: true, cert: pki.serverCert, key: pki.serverKey, crl: pki.caCert } } } }))
      .rejects.toThrow(/expected "ca" with "crl"/);
    await expect(TestDaemon.start({ config: { mqtt: { tls: { enabled: true, cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert, crl: pki.caCert } } } }))
      .rejects.toThrow(/mqtt\.tls\.crl: .*ca\.pem is not a PEM certificate revocation list/);
  });

  it('refuses clients without a certificate when requireClientCert is set', async () => {
    const strict = await TestDaemon.start({
      config: { mqtt: { tls: { enabled: true, cert: pki.serverCert, key: pki.serverKey, ca: pki.caCert, requireClientCert: true } } },
    });
    try {
      await addThing(strict.socket, 'pw-dev', 'pw');
      await expect(connectClient(`mqtts://127.0.0.1:${strict.port('mqtts')}`, { ca: ca(), clientId: 'pw-dev', username: 'pw-dev', password: 'pw' }))
        .rejects.toMatchObject({ code: 5 });
    } finally {
      await strict.cleanup();
    }
  });
});
